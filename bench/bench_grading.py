"""Grade 100 submissions of the gradient-descent problem set with ``--jobs 2`` (``make bench``);
``--scale 10`` grades a class of 1000.

The class: 60 correct notebooks, 25 partially correct ones, 15 hostile ones (an infinite loop, a
fork bomb, a memory hog, 100 MB of printing, ``os._exit``; three of each). Prints the wall time,
the time per submission, and the sandbox's overhead per submission: the wall time of grading an
empty notebook (start the sandbox, run the checks on nothing) against executing the solution
notebook's cells directly in this process. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from dlopt.grading import release_notebook
from dlopt.grading.grader import grade
from dlopt.grading.problemset import load_problem_set
from dlopt.grading.sandbox import Limits, describe_isolation

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "exercises" / "source" / "gradient-descent.ipynb"
LIMITS = Limits(timeout=60, cell_timeout=5, check_timeout=5)
HOSTILE = {
    "loop": "def gd_rate(eigenvalues, eta):\n    while True:\n        pass\n",
    "forkbomb": "import os\nwhile True:\n    os.fork()\n",
    "memory": "hog = []\nwhile True:\n    hog.append(bytearray(2**28))\n",
    "print": "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)\n",
    "exit": "import os\nos._exit(0)\n",
}


def make_class(folder: Path, scale: int = 1) -> None:
    """60 correct, 25 partial and 15 hostile notebooks, each ``scale`` times."""
    solved = nbformat.read(SOURCE, as_version=4)
    solved.cells = [c for c in solved.cells if "hidden" not in c.metadata.get("tags", [])]
    for i in range(60 * scale):
        nbformat.write(solved, folder / f"correct-{i:03d}.ipynb")
    partial = release_notebook(nbformat.read(SOURCE, as_version=4))
    solution = next(c.source for c in solved.cells if c.cell_type == "code" and "def gd_rate" in c.source)
    for cell in partial.cells:
        if cell.cell_type == "code" and "def gd_rate" in cell.source:
            cell.source = solution  # problem 1 solved, the rest left as stubs
    for i in range(25 * scale):
        nbformat.write(partial, folder / f"partial-{i:03d}.ipynb")
    for name, code in HOSTILE.items():
        nb = nbformat.read(SOURCE, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(code))
        for i in range(3 * scale):
            nbformat.write(nb, folder / f"hostile-{name}-{i:03d}.ipynb")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="grade 100 x SCALE submissions (10: a class of 1000)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        subs = tmp / "subs"
        subs.mkdir()
        make_class(subs, args.scale)
        n = len(list(subs.iterdir()))
        print(f"isolation: {describe_isolation()}\n{n} submissions of {SOURCE.name}; --jobs 2", flush=True)
        start = time.perf_counter()
        results = grade(SOURCE, subs, tmp / "out", jobs=2, limits=LIMITS, progress=False)
        wall = time.perf_counter() - start
        by_kind: dict = {}
        for r in results:
            kind = r.student.split("-")[0] if not r.student.startswith("hostile") else "-".join(r.student.split("-")[:2])
            by_kind.setdefault(kind, set()).add((r.total(), r.status))
        print(f"wall time for {n} submissions: {wall:.1f} s  ({wall / n:.2f} s per submission, 2 jobs)")
        for kind, outcomes in sorted(by_kind.items()):
            print(f"  {kind:18s} total/status: {sorted(outcomes)}")

        # overhead: an empty notebook graded (sandbox start + checks on nothing) vs direct execution
        empty = tmp / "empty"
        empty.mkdir()
        for i in range(10):
            nbformat.write(nbformat.v4.new_notebook(), empty / f"e{i}.ipynb")
        start = time.perf_counter()
        grade(SOURCE, empty, tmp / "out-empty", jobs=1, limits=LIMITS, progress=False)
        per_empty = (time.perf_counter() - start) / 10
        ps = load_problem_set(SOURCE)
        start = time.perf_counter()
        ns: dict = {}
        for code in ps.cells:
            exec(compile(code, "<cell>", "exec"), ns)  # noqa: S102 - the instructor's own solution
        direct = time.perf_counter() - start
        print(f"sandbox overhead per submission (empty notebook, 1 job): {per_empty:.2f} s; "
              f"the solution's cells run directly in-process: {direct:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
