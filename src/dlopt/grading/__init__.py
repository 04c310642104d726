"""Graded problem sets: release student notebooks, grade submissions securely (``dlopt-grade``).

**Format** of a source notebook ``exercises/source/<set>.ipynb``:

- reference solutions sit in code cells between the lines ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``; the student copy replaces each region with a ``raise NotImplementedError``
  at the same indentation; markdown between ``<!-- BEGIN SOLUTION -->`` and
  ``<!-- END SOLUTION -->`` is removed;
- check cells are code cells tagged ``check`` with metadata
  ``{"dlopt": {"id": ..., "points": ..., "timeout": seconds (optional)}}``; those also tagged
  ``hidden`` are dropped from the student copy. A check cell calls only ``expect.close``,
  ``expect.equal``, ``expect.holds`` and ``expect.raises`` (see :mod:`dlopt.grading.expect`),
  possibly in loops and after setup statements; no ``assert``. Compute expected values inside the
  ``expected`` argument (a setup statement that calls the student's functions gets the student's
  answers); draw random inputs
  from a generator made in the check cell (``rng = np.random.default_rng(7)``);
- a free-text question is a markdown cell tagged ``manual`` with ``{"dlopt": {"id", "points"}}``,
  followed by a markdown cell tagged ``answer`` (graded by hand: ``dlopt-grade grade --manual``);
- the student copy ``exercises/<set>.ipynb`` has no outputs and is committed.

**Commands** (``dlopt-grade`` or ``python -m dlopt.grading``): ``release``, ``grade``, ``check``,
``gradescope``, ``isolation``; see :mod:`dlopt.grading.cli`. ``grade`` writes ``grades.csv``
(student id, file, the roster's columns, one column per check and per manual question, lateness,
total, max, status: ``ok``, ``timeout``, ``exited``, ``killed``, ``invalid``, ``refused``, and the
grading round), ``feedback/<student>.md`` (``.html`` too on request), ``report.txt`` (what was not
graded, roster mismatches) and, with manual questions, ``answers/<id>.md``; the course workflow
(roster, deadlines, grades and comments given by hand, LMS export) is :mod:`dlopt.grading.course`,
the Gradescope autograder :mod:`dlopt.grading.gradescope`.

**Grading** (:mod:`dlopt.grading.grader`): each check cell of the *source* is split by
:mod:`dlopt.grading.instrument` into a student variant (records only the ``actual`` arguments)
and a reference variant (records only the ``expected`` values). The submission is parsed and its
code cells run in a sandboxed interpreter (:mod:`dlopt.grading.sandbox`, :mod:`dlopt.grading._child`,
:mod:`dlopt.grading.submission`) that then only answers calls of its functions; the student
variants run in a second sandboxed process, the *check driver*, which ran the source's cells and
forwards each call of a student's function over :mod:`dlopt.grading.channel` (names and
arguments out, bounded validated data back). The reference is computed from the source's
solution, once per set; the grader compares and scores. The book's page *For
instructors* explains the format, the commands and the security model with its limits.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from . import expect

__all__ = ["release_notebook", "release", "STUB", "expect", "grade", "check"]

STUB = 'raise NotImplementedError("Exercise: replace this line with your solution")'
_CODE_REGION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
    re.DOTALL | re.MULTILINE,
)
_MD_REGION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)


def _strip_code(source: str) -> str:
    if source.count("### BEGIN SOLUTION") != source.count("### END SOLUTION"):
        raise ValueError("unbalanced ### BEGIN SOLUTION / ### END SOLUTION markers")
    return _CODE_REGION.sub(lambda m: f"{m['indent']}{STUB}\n", source)


def release_notebook(nb, repository: tuple[str, str] | None = None):
    """Return the student version of a source notebook (the input is not modified).

    Besides stubbing the solutions and dropping hidden checks, the first markdown cell gets a
    note on how to hand the file in, and a setup cell that installs ``dlopt`` where it is missing
    (from ``repository``, the book's ``(url, branch)``; see :mod:`dlopt.grading.setup_cell`) is put
    before the first code cell.
    """
    import nbformat

    from .setup_cell import SETUP_TAG, SUBMIT_NOTE, setup_source

    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "hidden" in tags or SETUP_TAG in tags:  # a setup cell is made anew below
            continue
        if cell.cell_type == "code":
            cell.source = _strip_code(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _MD_REGION.sub("", cell.source)
        cells.append(cell)
    first_md = next((c for c in cells if c.cell_type == "markdown"), None)
    if first_md is not None and SUBMIT_NOTE.strip() not in first_md.source:
        first_md.source = first_md.source.rstrip("\n") + SUBMIT_NOTE
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    setup = nbformat.v4.new_code_cell(setup_source(repository), metadata={"tags": [SETUP_TAG]})
    setup["id"] = SETUP_TAG  # a fixed id: the committed student copy must be reproducible
    cells.insert(first_code, setup)
    out.cells = cells
    return out


def release(source: str | Path, out_dir: str | Path) -> Path:
    """Write the student version of ``source`` into ``out_dir`` under the same file name."""
    import nbformat

    from .setup_cell import repository as book_repository

    source = Path(source)
    nb = nbformat.read(source, as_version=4)
    target = Path(out_dir) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(release_notebook(nb, book_repository(source)), target)
    return target


def grade(*args, **kwargs):
    """See :func:`dlopt.grading.grader.grade`."""
    from .grader import grade as _grade

    return _grade(*args, **kwargs)


def check(*args, **kwargs):
    """See :func:`dlopt.grading.cli.check_problem_set`."""
    from .cli import check_problem_set

    return check_problem_set(*args, **kwargs)
