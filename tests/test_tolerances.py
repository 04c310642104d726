"""No check in a chapter relies on a default tolerance.

Every code cell of every chapter page (the ``{code-cell}`` blocks of ``chapters/**/*.md``) is
parsed with :mod:`ast`. A call of ``allclose``, ``isclose``, ``assert_allclose`` or
``assert_close`` (numpy, ``numpy.testing``, torch, ``torch.testing``) must give both ``rtol`` and
``atol`` (by keyword or by position); ``math.isclose`` must give ``rel_tol`` and ``abs_tol``.
``dlopt.checks.close`` requires both by its signature.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "chapters").rglob("*.md"))
NEEDS = {  # function name -> (keywords required, number of positional arguments that cover them)
    "allclose": (("rtol", "atol"), 4),
    "isclose": (("rtol", "atol"), 4),
    "assert_allclose": (("rtol", "atol"), 4),
    "assert_close": (("rtol", "atol"), 4),
}
MATH_ISCLOSE = (("rel_tol", "abs_tol"), 99)  # keyword-only in math.isclose


def code_cells(page: Path):
    """(index, source) of each code cell; IPython magics and shell lines are blanked."""
    nb = jupytext.read(page)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        src = "\n".join("" if re.match(r"\s*[%!]", line) and not line.startswith(" ") else line
                        for line in cell.source.splitlines())
        yield i, src


def _name(func: ast.expr) -> tuple[str, str]:
    """(owner, attribute) of a called function: ``np.testing.assert_allclose`` -> ('np.testing', 'assert_allclose')."""
    if isinstance(func, ast.Attribute):
        return ast.unparse(func.value), func.attr
    if isinstance(func, ast.Name):
        return "", func.id
    return "", ""


def missing_tolerances(source: str) -> list[str]:
    """Calls in ``source`` that leave a tolerance at its default, as 'line N: call'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        owner, attr = _name(node.func)
        if owner == "math" and attr == "isclose":
            need, npos = MATH_ISCLOSE
        elif attr in NEEDS:
            need, npos = NEEDS[attr]
        else:
            continue
        if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:90]} (tolerances hidden in */**)")
            continue
        given = {k.arg for k in node.keywords}
        # positional arguments after (actual, expected) fill the tolerances in signature order
        given |= set(need[: max(0, min(len(node.args), npos) - 2)])
        absent = [k for k in need if k not in given]
        if absent:
            found.append(f"line {node.lineno}: {ast.unparse(node)[:90]} (no {', '.join(absent)})")
    return found


def test_detector_catches_default_tolerances():
    assert missing_tolerances("np.allclose(a, b)")
    assert missing_tolerances("np.isclose(a, b, rtol=1e-6)")
    assert missing_tolerances("np.testing.assert_allclose(a, b, atol=0)")
    assert missing_tolerances("torch.allclose(a, b, rtol=1e-5)")
    assert missing_tolerances("math.isclose(a, b)")
    assert missing_tolerances("np.allclose(a, b, **tol)")
    assert not missing_tolerances("np.allclose(a, b, rtol=1e-6, atol=0)")
    assert not missing_tolerances("np.allclose(a, b, 1e-6, 0)")
    assert not missing_tolerances("np.isclose(a, b, 1e-6, atol=1e-12)")
    assert not missing_tolerances("math.isclose(a, b, rel_tol=1e-9, abs_tol=0)")
    assert not missing_tolerances("dlopt.checks.close(a, b, rtol=0, atol=0)")


def test_pages_found():
    assert len(PAGES) > 50


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "chapters")))
def test_every_check_states_its_tolerances(page):
    problems = [f"cell {i}, {p}" for i, src in code_cells(page) for p in missing_tolerances(src)]
    assert not problems, f"{page.relative_to(ROOT)}: checks without stated rtol and atol:\n" + "\n".join(problems)
