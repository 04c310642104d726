"""Each problem of a problem set is graded on its own.

A problem set is split into problems by its numbered headings (``## 3.``; ``### 3b.`` stays in
problem 3). For every problem set under ``exercises/source/``:

- static: no check cell of problem *k* calls a function that a student writes in problem *j ≠ k*;
  every check cell that draws random numbers makes its own generator (``rng = ...`` in the cell),
  so that what ran before it -- or a crash that restarts the grader's process -- cannot change its
  inputs; every ``expect.close`` (and every ``np.allclose``/``np.isclose`` in a predicate) states both
  ``rtol`` and ``atol``; every question that asks for a comparison has an answer cell;
- graded: the reference solution with the functions of one problem replaced, in turn, by versions
  that raise or that return lists instead of arrays, keeps full points on every other problem (and
  loses points on the broken one when it raises). The submissions of one set are graded in one
  batch through :func:`dlopt.grading.grader.grade`.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import pytest

from dlopt.grading.grader import grade
from dlopt.grading.problemset import load_problem_set
from dlopt.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))
HEADING = re.compile(r"^#{2,3} (\d+)[a-z]?\.", re.MULTILINE)
LIMITS = Limits(timeout=120, cell_timeout=60, check_timeout=60)

BREAK = {
    "raises": "def {name}(*args, **kwargs):\n    raise RuntimeError('this answer is broken on purpose')\n",
    "lists": ("_wrapped_{name} = {name}\n\n\n"
              "def {name}(*args, **kwargs):\n"
              "    def as_lists(v):\n"
              "        if hasattr(v, 'tolist'):\n"
              "            return v.tolist()\n"
              "        if isinstance(v, (list, tuple)):\n"
              "            return [as_lists(u) for u in v]\n"
              "        if isinstance(v, dict):\n"
              "            return {{k: as_lists(u) for k, u in v.items()}}\n"
              "        return v\n"
              "    return as_lists(_wrapped_{name}(*args, **kwargs))\n"),
}


def problems(nb):
    """``[(problem, cell), ...]`` for the cells after the first numbered heading."""
    out, current = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = HEADING.search(cell.source)
            if m:
                current = m.group(1)
        if current is not None:
            out.append((current, cell))
    return out


def student_functions(source: str) -> list[str]:
    """Top-level functions of a cell whose body holds a solution region."""
    tree = ast.parse(source)
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and "### BEGIN SOLUTION" in (ast.get_source_segment(source, node) or "")]


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _functions_by_problem(nb) -> dict:
    owner: dict = {}
    for prob, cell in problems(nb):
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            for name in student_functions(cell.source):
                owner.setdefault(prob, []).append(name)
    return owner


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_checks_use_only_their_own_problem(source):
    nb = nbformat.read(source, as_version=4)
    owner = _functions_by_problem(nb)
    assert len(owner) >= 2, f"{source.name}: could not find the problems' functions"
    name_to_problem = {n: p for p, names in owner.items() for n in names}
    bad = []
    for prob, cell in problems(nb):
        if cell.cell_type != "code" or "check" not in _tags(cell):
            continue
        cid = cell.metadata["dlopt"]["id"]
        tree = ast.parse(cell.source)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for name in sorted(used):
            if name_to_problem.get(name, prob) != prob:
                bad.append(f"{cid} (problem {prob}) calls {name} of problem {name_to_problem[name]}")
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}
        if "rng" in used and "rng" not in assigned:
            bad.append(f"{cid} draws from a generator it did not make (rng = np.random.default_rng(...))")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "close"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "expect"):
                missing = {"rtol", "atol"} - {k.arg for k in node.keywords}
                if missing:
                    bad.append(f"{cid}, line {node.lineno}: expect.close without {' and '.join(sorted(missing))}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("allclose", "isclose", "assert_allclose")):
                missing = {"rtol", "atol"} - {k.arg for k in node.keywords}
                if missing:
                    bad.append(f"{cid}, line {node.lineno}: {node.func.attr} without {' and '.join(sorted(missing))}")
    assert not bad, f"{source.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_comparison_questions_have_answer_cells(source):
    """A markdown question that asks to compare or explain is a manual question with an answer cell."""
    nb = nbformat.read(source, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or "manual" in _tags(cell):
            continue
        if re.search(r"\b(compare|explain|why)\b[^.]*[.?]", cell.source, re.IGNORECASE) and "?" in cell.source:
            bad.append(f"cell {i}: {cell.source[:80]!r} asks a question but is not a manual question")
    for i, cell in enumerate(nb.cells):
        if "manual" in _tags(cell):
            following = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if following is None or "answer" not in _tags(following):
                bad.append(f"cell {i}: a manual question without an answer cell after it")
    assert not bad, f"{source.name}:\n" + "\n".join(bad)


def _broken(nb, prob: str, names: list[str], kind: str):
    out = copy.deepcopy(nb)
    for p, cell in problems(out):
        if p == prob and cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            mine = [n for n in student_functions(cell.source) if n in names]
            cell.source += "\n\n\n" + "\n\n".join(BREAK[kind].format(name=n) for n in mine)
    return out


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_broken_problem_costs_only_its_own_points(source, tmp_path):
    nb = nbformat.read(source, as_version=4)
    ps = load_problem_set(source)
    check_problem = {cell.metadata["dlopt"]["id"]: prob for prob, cell in problems(nb)
                     if cell.cell_type == "code" and "check" in _tags(cell)}
    owner = _functions_by_problem(nb)
    subs = tmp_path / "subs"
    subs.mkdir()
    cases = {}
    for prob, names in owner.items():
        for kind in BREAK:
            student = f"p{prob}-{kind}"
            nbformat.write(_broken(nb, prob, names, kind), subs / f"{student}.ipynb")
            cases[student] = (prob, kind)
    results = grade(source, subs, tmp_path / "out", jobs=2, limits=LIMITS, progress=False)
    full = {c.id: c.points for c in ps.checks}
    bad = []
    for r in results:
        prob, kind = cases[r.student]
        for cid, pts in full.items():
            if check_problem[cid] != prob and r.points[cid] != pts:
                bad.append(f"problem {prob} {kind}: check {cid} of problem {check_problem[cid]} got "
                           f"{r.points[cid]} of {pts}: {r.reasons.get(cid)}")
        if kind == "raises":
            own = [cid for cid in full if check_problem[cid] == prob]
            if own and all(r.points[cid] == full[cid] for cid in own):
                bad.append(f"problem {prob} raises but keeps all its points: the checks do not call it")
    assert len(results) == len(cases)
    assert not bad, f"{source.name}:\n" + "\n".join(bad)
