"""Exercise notebooks: the committed student copies are generated from the sources and score zero.

nbval (``--nbval-lax`` in pytest's addopts) separately executes every source notebook under
``exercises/source``, so the reference solutions pass all their checks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dlopt.grading import STUB, release_notebook

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))


def strip(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def test_there_are_problem_sets():
    assert SOURCES, "no exercise notebooks under exercises/source"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_copy_is_up_to_date(source):
    student = ROOT / "exercises" / source.name
    assert student.exists(), f"missing student notebook {student.relative_to(ROOT)}"
    expected = release_notebook(nbformat.read(source, as_version=4))
    assert strip(nbformat.read(student, as_version=4)) == strip(expected), (
        f"{student.name} is stale: regenerate it with dlopt.grading.release"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_copy_hides_solutions_and_scores_zero(source):
    nb = nbformat.read(ROOT / "exercises" / source.name, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "hidden" not in str([c.metadata for c in nb.cells])
    assert STUB in text
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(source.parent.parent)}})
    client.execute()
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert checks
    for cell in checks:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"check {cell.metadata['dlopt']['id']} passes on the unsolved notebook"
        assert errors[0].ename == "NotImplementedError"
