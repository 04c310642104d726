"""The grader's pieces: check instrumentation, the format, comparisons, the CLI, determinism."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlopt.grading import STUB, expect, release, release_notebook
from dlopt.grading.grader import grade, _judge_site
from dlopt.grading.instrument import FormatError, instrument
from dlopt.grading.problemset import load_problem_set, read_submission, InvalidSubmission
from dlopt.grading.sandbox import Limits, parse_records

ROOT = Path(__file__).resolve().parents[1]
BATTERY = ROOT / "tests" / "grading_cases" / "battery.ipynb"
FAST = Limits(timeout=20, cell_timeout=5, check_timeout=5, memory_mb=1024, nproc=64)

CELL = '''rng = np.random.default_rng(1)
for _ in range(3):
    lam = rng.uniform(0.01, 10.0, 5)
    expect.close(gd_rate(lam, 0.1),
                 np.max(np.abs(1 - 0.1 * lam)) + SECRET_OFFSET, rtol=1e-9, msg="rate")
expect.holds(losses(f, x0), lambda v: np.all(np.diff(v) <= tol), "decreasing")
expect.raises(ValueError, lambda: backtracking(f, g, x, c=2.0))
expect.equal(best([1, 2]), 31415926)
'''


# ---------------------------------------------------------------- instrumentation
def test_student_variant_never_contains_the_expected_side():
    plan = instrument(CELL)
    student = plan.student_code
    for secret in ("SECRET_OFFSET", "31415926", "np.diff", "ValueError", "rtol", "decreasing", "tol"):
        assert secret not in student, secret
    for needed in ("gd_rate(lam, 0.1)", "losses(f, x0)", "lambda: backtracking(f, g, x, c=2.0)", "best([1, 2])"):
        assert needed in student
    assert "gd_rate" not in plan.reference_code and "SECRET_OFFSET" in plan.reference_code
    assert "31415926" in plan.reference_code and "'tol': tol" in plan.reference_code


def test_sites_options_and_line_numbers():
    plan = instrument(CELL)
    kinds = [(s.index, s.kind, s.line) for s in plan.sites]
    assert kinds == [(0, "close", 4), (1, "holds", 6), (2, "raises", 7), (3, "equal", 8)]
    assert plan.sites[0].options == {"rtol": 1e-9, "msg": "rate"}
    assert plan.sites[1].predicate == "lambda v: np.all(np.diff(v) <= tol)"
    assert plan.sites[1].free_names == ["tol"]
    assert plan.sites[2].exceptions == ["ValueError"]
    # every line of the cell stays on its line in the student variant (tracebacks point right)
    lines = plan.student_code.splitlines()
    assert lines[2].strip() == "lam = rng.uniform(0.01, 10.0, 5)" and "__dlopt_rec__(1" in lines[5]
    ast.parse(plan.student_code)
    ast.parse(plan.reference_code)


@pytest.mark.parametrize("bad, why", [
    ("x = 1", "must call expect"),
    ("assert f(1) == 2\nexpect.equal(f(1), 2)", "instead of assert"),
    ("expect.close(f(1), 2, rtol=tol)", "must be a literal"),
    ("expect.close(f(1), 2, tolerance=1)", "unknown option"),
    ("expect.equal(expect.equal(1, 1), None)", "nested"),
    ("expect.raises(make_error(), lambda: f(1))", "class name"),
    ("expect.close(f(1)", "syntax error"),
])
def test_format_errors(bad, why):
    with pytest.raises(FormatError, match=why):
        instrument(bad)


def _nb(*cells):
    return new_notebook(cells=list(cells))


def _check(src, cid="a", points=1, tags=("check",)):
    c = new_code_cell(src)
    c.metadata = {"tags": list(tags), "dlopt": {"id": cid, "points": points}}
    return c


@pytest.mark.parametrize("cells, why", [
    ([_check("expect.equal(f(), 1)"), _check("expect.equal(f(), 2)")], "duplicate id"),
    ([_check("expect.equal(f(), 1)", points="two")], "points"),
    ([_check("expect.equal(f(), 1)", cid="a b")], "dlopt.id"),
    ([new_code_cell("x = 1")], "no check cells"),
    ([_check("expect.equal(f(), 1)"), new_markdown_cell("Why?")], None),
])
def test_problem_set_format(tmp_path, cells, why):
    nb = _nb(*cells)
    if why is None:  # a manual question without an answer cell
        nb.cells[-1].metadata = {"tags": ["manual"], "dlopt": {"id": "why", "points": 1}}
        why = "followed by a markdown cell tagged 'answer'"
    nbformat.write(nb, tmp_path / "s.ipynb")
    with pytest.raises(FormatError, match=why):
        load_problem_set(tmp_path / "s.ipynb")


def test_battery_problem_set_loads():
    ps = load_problem_set(BATTERY)
    assert [c.id for c in ps.checks] == ["sq", "sq-hidden", "log", "count", "order"]
    assert [c.hidden for c in ps.checks] == [False, True, False, True, False]
    assert ps.checks[-1].timeout == 3 and [m.id for m in ps.manuals] == ["why-nlogn"]
    assert ps.max_points() == 7


# ---------------------------------------------------------------- release
def test_release_stubs_solutions_and_drops_hidden_checks(tmp_path):
    out = release(BATTERY, tmp_path)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert STUB in text and "BEGIN SOLUTION" not in text and "math.log(x)" not in text
    assert not any("hidden" in c.metadata.get("tags", []) for c in nb.cells)
    assert any(c.metadata.get("dlopt", {}).get("id") == "sq" for c in nb.cells)
    assert release_notebook(nbformat.read(BATTERY, as_version=4)).cells == nb.cells


# ---------------------------------------------------------------- judging data
def test_comparisons_handle_nan_inf_and_shapes():
    plan = instrument("expect.close(f(), 1.0)\nexpect.equal(g(), [1, 2])\n"
                      "expect.holds(h(), lambda v: np.all(v > 0))\nexpect.raises(KeyError, lambda: k())")
    close, equal, holds, raises = plan.sites
    nan = expect.to_data(float("nan"))
    assert _judge_site(close, {"d": nan}, nan) is None
    assert "nan" in _judge_site(close, {"d": nan}, 1.0)
    assert _judge_site(close, {"d": expect.to_data(np.inf)}, expect.to_data(np.inf)) is None
    assert _judge_site(close, {"d": expect.to_data(-np.inf)}, expect.to_data(np.inf))
    assert "length" in _judge_site(equal, {"d": [1, 2, 3]}, [1, 2])
    assert _judge_site(equal, {"d": [[1, 2]]}, [1, 2])
    assert _judge_site(equal, {"d": "2"}, 2)
    assert _judge_site(holds, {"d": [1, 2]}, {}) is None
    assert "does not hold" in _judge_site(holds, {"d": [1, -2]}, {})
    assert "could not be evaluated" in _judge_site(holds, {"d": ["1", "2"]}, {})
    assert _judge_site(raises, {"d": {"raised": "KeyError", "mro": ["KeyError", "LookupError"]}}, None) is None
    assert "nothing was" in _judge_site(raises, {"d": {"raised": None}}, None)
    assert "expected KeyError" in _judge_site(raises, {"d": {"raised": "TypeError", "mro": ["TypeError"]}}, None)
    assert "not data" in _judge_site(close, {"e": "TypeError: a check needs data"}, 1.0)


def test_as_array_only_for_numbers():
    assert isinstance(expect.as_array_if_numeric([1, 2.5]), np.ndarray)
    assert expect.as_array_if_numeric(["1", "2"]) == ["1", "2"]
    assert expect.as_array_if_numeric([[1], [2, 3]]) == [[1], [2, 3]]


def test_results_channel_is_json_lines_only():
    raw = (b'{"t": "rec", "c": 0, "s": 0, "d": 1}\n'
           b'\x80\x04\x95pickle\n[1, 2]\n{"no_t": 1}\n{"t": "rec", "d": NaN}\n' + b"[" * 100000 + b"\n"
           b'{"t": "end"}\n{"t": "partial')
    recs = parse_records(raw)
    assert recs[0] == {"t": "rec", "c": 0, "s": 0, "d": 1} and recs[-1] == {"t": "end"}
    assert len(recs) == 3 and np.isnan(recs[1]["d"])


def test_invalid_submissions_are_reported(tmp_path):
    (tmp_path / "a.ipynb").write_bytes(b"\xff\xfe{}")
    (tmp_path / "b.ipynb").write_text("{")
    (tmp_path / "c.ipynb").write_text('{"cells": 3}')
    for name, why in [("a", "UTF-8"), ("b", "not valid JSON"), ("c", "not a Jupyter notebook")]:
        with pytest.raises(InvalidSubmission, match=why):
            read_submission(tmp_path / f"{name}.ipynb")


# ---------------------------------------------------------------- whole runs
def _submissions(folder: Path) -> None:
    folder.mkdir()
    student = release_notebook(nbformat.read(BATTERY, as_version=4))
    solved = nbformat.read(BATTERY, as_version=4)
    nbformat.write(solved, folder / "ada.ipynb")
    nbformat.write(student, folder / "bob.ipynb")
    half = release_notebook(nbformat.read(BATTERY, as_version=4))
    half.cells[2].source = "def square(x):\n    return np.asarray(x, float) ** 2 + np.random.rand() * 1e-3\n"
    half.cells[-1].source = "Because a comparison sort must tell n! orderings apart."
    nbformat.write(half, folder / "cy.ipynb")


def test_grading_is_deterministic_and_writes_csv_and_feedback(tmp_path):
    _submissions(tmp_path / "subs")
    (tmp_path / "manual.csv").write_text("student,why-nlogn\ncy,1\n")
    outs = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        grade(BATTERY, tmp_path / "subs", out, jobs=2, limits=FAST, manual=tmp_path / "manual.csv",
              progress=False)
        outs.append(out)
    csv0 = (outs[0] / "grades.csv").read_text()
    assert csv0 == (outs[1] / "grades.csv").read_text()
    assert csv0.splitlines() == [
        "student,file,sq,sq-hidden,log,count,order,why-nlogn,total,max,status,round",
        "ada,ada.ipynb,1,2,1,1,1,,6,7,ok,0",
        "bob,bob.ipynb,0,0,0,0,0,,0,7,ok,0",
        "cy,cy.ipynb,0,0,0,0,0,1,1,7,ok,0",
    ]
    for name in ("ada", "bob", "cy"):
        assert (outs[0] / "feedback" / f"{name}.md").read_text() == (outs[1] / "feedback" / f"{name}.md").read_text()
    bob = (outs[0] / "feedback" / "bob.md").read_text()
    assert "NotImplementedError" in bob and "sq-hidden (hidden)" in bob
    cy = (outs[0] / "feedback" / "cy.md").read_text()
    assert "why-nlogn**: 1 / 1" in cy and "got" in cy
    answers = (outs[0] / "answers" / "why-nlogn.md").read_text()
    assert "## cy" in answers and "n! orderings" in answers and "## bob" in answers


def test_manual_scores_are_validated(tmp_path):
    _submissions(tmp_path / "subs")
    (tmp_path / "manual.csv").write_text("student,why-nlogn\nada,5\n")
    with pytest.raises(ValueError, match="outside"):
        grade(BATTERY, tmp_path / "subs", tmp_path / "out", limits=FAST, manual=tmp_path / "manual.csv",
              progress=False)


def test_cli_help_and_release(tmp_path):
    for args in ([], ["release"], ["grade"], ["check"]):
        done = subprocess.run([sys.executable, "-m", "dlopt.grading", *args, "--help"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "usage: dlopt-grade" in done.stdout
    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "release", str(BATTERY), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (tmp_path / "battery.ipynb").exists()


def test_cli_grade(tmp_path):
    _submissions(tmp_path / "subs")
    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "grade", str(BATTERY), str(tmp_path / "subs"),
                           "--out", str(tmp_path / "out"), "--jobs", "2", "--timeout", "20", "--memory", "1024",
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ada,ada.ipynb,1,2,1,1,1,,6,7,ok,0" in (tmp_path / "out" / "grades.csv").read_text()


def test_reference_is_computed_once_and_cached(tmp_path):
    import json

    _submissions(tmp_path / "subs")
    out = tmp_path / "out"
    grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)
    cache = out / ".reference-0.json"
    stored = json.loads(cache.read_text())
    stored["data"]["0"]["0"] = [[0.0, 0.0, 0.0]]          # tamper: the cached data is what is used
    cache.write_text(json.dumps(stored))
    results = {r.student: r for r in grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)}
    assert results["ada"].points["sq"] == 0
    stored["digest"] = "another source"                    # a changed source or dlopt: recomputed
    cache.write_text(json.dumps(stored))
    results = {r.student: r for r in grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)}
    assert results["ada"].points["sq"] == 1
