"""``dlopt-grade``: release student notebooks, grade a class, check a problem set.

::

    dlopt-grade release SOURCE... --out DIR
    dlopt-grade grade SOURCE SUBMISSIONS_DIR --out RESULTS_DIR [--jobs N] [--timeout S] [--memory MB]
                      [--check-timeout S] [--manual SCORES.csv] [--isolation auto|namespaces|basic]
    dlopt-grade check SOURCE... [--student-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import release, release_notebook
from .setup_cell import repository
from .instrument import FormatError
from .sandbox import Limits, default_isolation

__all__ = ["main", "check_problem_set"]


def _strip(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def check_problem_set(source, student_dir=None, *, limits: Limits | None = None, isolation=None) -> list[str]:
    """Problems with a source notebook (empty list: all good).

    The source must follow the format, its solution must score full marks, the released student
    version must score zero on every check, and the committed student notebook
    (``student_dir/<set>.ipynb``, by default the source's parent's parent) must be up to date.
    """
    import nbformat

    from .grader import ReferenceFailure, finish, reference_data, run_submission
    from .problemset import load_problem_set

    source = Path(source)
    limits = limits or Limits(timeout=120)
    student = Path(student_dir or source.parent.parent) / source.name
    problems = []
    try:
        ps = load_problem_set(source)
    except (FormatError, ValueError, OSError) as exc:
        return [f"{source.name}: {exc}"]
    released = release_notebook(nbformat.read(source, as_version=4), repository(source))
    if not student.exists():
        problems.append(f"{source.name}: the student notebook {student} is missing "
                        f"(run: dlopt-grade release {source} --out {student.parent})")
    elif _strip(nbformat.read(student, as_version=4)) != _strip(released):
        problems.append(f"{source.name}: {student} is not up to date "
                        f"(run: dlopt-grade release {source} --out {student.parent})")
    with tempfile.TemporaryDirectory(prefix="dlopt-check-") as tmp:
        tmp = Path(tmp)
        hide = [str(source.resolve().parent), str(tmp)]
        stub = tmp / "released.ipynb"
        nbformat.write(released, stub)
        # the reference and the two submissions run at the same time; scoring waits for all three
        with ThreadPoolExecutor(max_workers=3) as pool:
            ref_future = pool.submit(reference_data, ps, limits=limits, workdir=tmp, isolation=isolation,
                                     hide=hide)
            runs = [pool.submit(run_submission, ps, path, limits=limits, workdir=tmp, isolation=isolation,
                                slot=slot, hide=hide) for path, slot in ((source, 1), (stub, 2))]
            try:
                ref = ref_future.result()
            except ReferenceFailure as exc:
                return problems + [str(exc)]
            full, zero = (finish(ps, ref, name, *f.result(), limits)
                          for name, f in zip(("solution", "student"), runs))
    for c in ps.checks:
        if full.reasons[c.id] is not None:
            problems.append(f"{source.name}: check {c.id} fails on the solution: {full.reasons[c.id]}")
        if zero.points[c.id]:
            problems.append(f"{source.name}: check {c.id} passes on the unsolved student version")
    if full.status != "ok":
        problems.append(f"{source.name}: the solution notebook did not run to the end ({full.detail})")
    return problems


def _limits(args) -> Limits:
    return Limits(timeout=args.timeout, memory_mb=args.memory, check_timeout=args.check_timeout,
                  cell_timeout=args.check_timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="dlopt-grade",
        description="Release, grade and check the problem sets of 'Optimization for Deep Learning'. "
                    "Student code runs in a sandboxed interpreter; scores are computed by the grader.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="write student notebooks (solutions stubbed, hidden checks removed)")
    p.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    p.add_argument("--out", required=True, type=Path, help="folder for the student notebooks")

    p = sub.add_parser("grade", help="grade every submission in a folder; write grades.csv and feedback/")
    p.add_argument("source", type=Path, metavar="SOURCE", help="the instructor notebook")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR",
                   help="one notebook per student; the file name is the student id")
    p.add_argument("--out", required=True, type=Path, help="results folder (created with mode 0700)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded in parallel (default 2)")
    p.add_argument("--timeout", type=float, default=60, help="wall-clock seconds per submission (default 60)")
    p.add_argument("--check-timeout", type=float, default=20,
                   help="seconds per notebook cell and per check, unless a check sets its own (default 20)")
    p.add_argument("--memory", type=int, default=2048, help="address-space limit in MB (default 2048)")
    p.add_argument("--manual", type=Path, help="CSV with a 'student' column and one column per "
                   "manual question id: points given by hand, copied into grades.csv")
    p.add_argument("--isolation", choices=["auto", "namespaces", "basic"], default="auto",
                   help="namespaces (root + unshare; the default when available) or basic")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("check", help="the source scores full marks, the student version zero, "
                       "the committed student notebook is up to date")
    p.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    p.add_argument("--student-dir", type=Path, help="folder of the committed student notebooks "
                   "(default: the parent of the source folder)")
    p.add_argument("--isolation", choices=["auto", "namespaces", "basic"], default="auto")

    args = parser.parse_args(argv)
    isolation = None if getattr(args, "isolation", "auto") == "auto" else args.isolation
    if args.command == "release":
        for s in args.sources:
            print(release(s, args.out))
        return 0
    if args.command == "grade":
        from .grader import ReferenceFailure, grade

        if (isolation or default_isolation()) == "basic":
            print("dlopt-grade: warning: basic isolation (not root, or no working unshare): student "
                  "code runs as your user and can read what you can read; grade a copy of the "
                  "submissions kept apart from your sources (see the 'For instructors' page)",
                  file=sys.stderr)
        for path, kind in ((args.source, "file"), (args.submissions, "folder")):
            if not (path.is_file() if kind == "file" else path.is_dir()):
                print(f"dlopt-grade: {path} is not a {kind}", file=sys.stderr)
                return 2
        try:
            results = grade(args.source, args.submissions, args.out, jobs=args.jobs, limits=_limits(args),
                            isolation=isolation, manual=args.manual, progress=not args.no_progress)
        except (FormatError, ReferenceFailure, ValueError) as exc:
            print(f"dlopt-grade: {exc}", file=sys.stderr)
            return 2
        print(f"graded {len(results)} submissions with isolation "
              f"'{isolation or default_isolation()}': {args.out / 'grades.csv'}, {args.out / 'feedback'}"
              + (f", {args.out / 'answers'} (free-text answers to grade by hand)"
                 if (args.out / "answers").exists() else ""))
        return 0
    if args.command == "check":
        failed = False
        for s in args.sources:
            problems = check_problem_set(s, args.student_dir, isolation=isolation)
            print(f"{s}: " + ("ok" if not problems else "FAILED"))
            for line in problems:
                print(f"  - {line}")
            failed |= bool(problems)
        return 1 if failed else 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
