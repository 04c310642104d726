"""Every problem set passes ``dlopt-grade check``: its source follows the format and scores full
marks through the grader, the released student version scores zero, and the committed student
notebook ``exercises/<set>.ipynb`` is up to date.

New problem sets under ``exercises/source/`` are picked up automatically. (nbval, through
``--nbval-lax`` in pytest's addopts, separately runs every source notebook in a Jupyter kernel.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlopt.grading.cli import check_problem_set

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))


def test_there_are_problem_sets():
    assert SOURCES, "no exercise notebooks under exercises/source"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_dlopt_grade_check(source):
    problems = check_problem_set(source)
    assert not problems, "\n".join(problems)


def test_the_command_line_check_runs():
    """``dlopt-grade check`` (as ``python -m dlopt.grading``) exits 0 on a good problem set."""
    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "check",
                           str(ROOT / "tests" / "grading" / "grading_cases" / "battery.ipynb"),
                           "--student-dir", str(ROOT / "tests" / "grading" / "grading_cases" / "student")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout
