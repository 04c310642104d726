"""``dlopt-grade``: release student notebooks, grade a class, check a problem set.

::

    dlopt-grade release SOURCE... --out DIR
    dlopt-grade grade SOURCE SUBMISSIONS_DIR --out RESULTS_DIR [--jobs N] [--timeout S] [--memory MB]
                      [--check-timeout S] [--manual SCORES.csv] [--roster ROSTER.csv]
                      [--deadline ISO] [--late-policy none|zero|P%/day] [--round N]
                      [--show-hidden-values] [--only STUDENT_OR_CHECK]... [--html] [--lms canvas|moodle]
                      [--isolation auto|namespaces|bwrap|basic] [--trust-submissions]
    dlopt-grade check SOURCE... [--student-dir DIR]
    dlopt-grade gradescope SOURCE --out autograder.zip [--install PIP_SPEC]
    dlopt-grade isolation
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
from .sandbox import Limits, default_isolation, describe_isolation, isolation_is_safe

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
    with tempfile.TemporaryDirectory(prefix="dlopt-check-") as tmp_name:
        tmp = Path(tmp_name)
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


ISOLATIONS = ["auto", "namespaces", "bwrap", "basic"]


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
                   help="one notebook per student; the file name gives the student id")
    p.add_argument("--out", required=True, type=Path, help="results folder (created with mode 0700)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded in parallel (default 2)")
    p.add_argument("--timeout", type=float, default=60,
                   help="wall-clock seconds per submission, reruns included (default 60)")
    p.add_argument("--check-timeout", type=float, default=20,
                   help="seconds per notebook cell and per check, unless a check sets its own (default 20)")
    p.add_argument("--memory", type=int, default=2048,
                   help="MB per submission: its cgroup (all its processes) and each process's address space")
    p.add_argument("--manual", type=Path, help="CSV of grades given by hand: 'student', one column per "
                   "free-text question id (points) and '<id> comment' columns")
    p.add_argument("--roster", type=Path, help="CSV: file or student, name, email, lms_id, extension_days")
    p.add_argument("--deadline", help="ISO 8601 date-time, e.g. 2026-03-01T23:59+01:00 (file modification times)")
    p.add_argument("--late-policy", default="none", help="none (report only), zero, or e.g. 10%%/day")
    p.add_argument("--round", type=int, default=0, dest="rounds",
                   help="grading round: a new number gives hidden checks fresh inputs (recorded in the CSV)")
    p.add_argument("--show-hidden-values", action="store_true",
                   help="feedback on hidden checks may quote the reference values (default: words only)")
    p.add_argument("--only", action="append", default=[], metavar="STUDENT_OR_CHECK",
                   help="regrade only this student (id or file name) or check id; repeatable; the other "
                        "rows and columns of an existing grades.csv are kept")
    p.add_argument("--html", action="store_true", help="also write feedback/<student>.html")
    p.add_argument("--lms", choices=["canvas", "moodle"], help="also write lms-<format>.csv to import")
    p.add_argument("--isolation", choices=ISOLATIONS, default="auto",
                   help="namespaces (root + unshare), bwrap (bubblewrap, works without root), basic")
    p.add_argument("--trust-submissions", action="store_true",
                   help="allow basic isolation without root (student code runs as you: NOT for untrusted code)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("check", help="the source scores full marks, the student version zero, "
                       "the committed student notebook is up to date")
    p.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    p.add_argument("--student-dir", type=Path, help="folder of the committed student notebooks "
                   "(default: the parent of the source folder)")
    p.add_argument("--isolation", choices=ISOLATIONS, default="auto")

    p = sub.add_parser("gradescope", help="write a Gradescope autograder zip (setup.sh, run_autograder, source)")
    p.add_argument("source", type=Path, metavar="SOURCE")
    p.add_argument("--out", required=True, type=Path, help="the zip to write, e.g. autograder.zip")
    p.add_argument("--install", help="what setup.sh installs with pip (default: dlopt[grading] from the repository)")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--memory", type=int, default=2048)

    p = sub.add_parser("gradescope-run", help="(inside Gradescope) grade one submission, write results.json")
    p.add_argument("source", type=Path)
    p.add_argument("submission_dir", type=Path)
    p.add_argument("results", type=Path)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--memory", type=int, default=2048)

    p = sub.add_parser("isolation", help="say which isolation and limits grading would use here")

    args = parser.parse_args(argv)
    isolation = None if getattr(args, "isolation", "auto") == "auto" else args.isolation
    if args.command == "release":
        for s in args.sources:
            print(release(s, args.out))
        return 0
    if args.command == "isolation":
        print(f"isolation: {describe_isolation()}")
        return 0
    if args.command == "gradescope":
        from .gradescope import DEFAULT_INSTALL, write_bundle

        try:
            out = write_bundle(args.source, args.out, install=args.install or f'"{DEFAULT_INSTALL}"',
                               timeout=args.timeout, memory=args.memory)
        except (FormatError, OSError) as exc:
            print(f"dlopt-grade: {exc}", file=sys.stderr)
            return 2
        print(out)
        return 0
    if args.command == "gradescope-run":
        from .gradescope import run_in_gradescope

        data = run_in_gradescope(args.source, args.submission_dir, args.results,
                                 limits=Limits(timeout=args.timeout, memory_mb=args.memory))
        print(f"score {data['score']:g}: {args.results}")
        return 0
    if args.command == "grade":
        from .grader import ReferenceFailure, grade
        from .problemset import load_problem_set

        chosen = isolation or default_isolation()
        print(f"dlopt-grade: isolation: {describe_isolation(chosen)}", file=sys.stderr)
        if not isolation_is_safe(chosen) and not args.trust_submissions:
            print("dlopt-grade: refusing to run untrusted notebooks with basic isolation as an ordinary "
                  "user (they would run as you, able to read your files). Install bubblewrap "
                  "(apt-get install bubblewrap) or run as root; or pass --trust-submissions if you "
                  "trust every file in the folder.", file=sys.stderr)
            return 2
        for path, kind in ((args.source, "file"), (args.submissions, "folder")):
            if not (path.is_file() if kind == "file" else path.is_dir()):
                print(f"dlopt-grade: {path} is not a {kind}", file=sys.stderr)
                return 2
        try:
            checks = [c.id for c in load_problem_set(args.source).checks]
            only_checks = [o for o in args.only if o in checks]
            only_students = [o for o in args.only if o not in checks]
            results = grade(args.source, args.submissions, args.out, jobs=args.jobs, limits=_limits(args),
                            isolation=isolation, manual=args.manual, progress=not args.no_progress,
                            roster=args.roster, deadline=args.deadline, late_policy=args.late_policy,
                            rounds=args.rounds, reveal_hidden=args.show_hidden_values,
                            only_students=only_students or None, only_checks=only_checks or None, html=args.html)
            if args.lms:
                from .course import write_lms_csv

                ps = load_problem_set(args.source)
                write_lms_csv(results, ps.max_points(), args.out / f"lms-{args.lms}.csv", assignment=ps.name,
                              flavor=args.lms)
        except (FormatError, ReferenceFailure, ValueError) as exc:
            print(f"dlopt-grade: {exc}", file=sys.stderr)
            return 2
        report = (args.out / "report.txt").read_text(encoding="utf-8").strip()
        print(f"graded {len(results)} submissions: {args.out / 'grades.csv'}, {args.out / 'feedback'}"
              + (f", {args.out / 'answers'} (free-text answers to grade by hand)"
                 if (args.out / "answers").exists() else ""))
        if report:
            print(f"not graded or to look at ({args.out / 'report.txt'}):\n  " + report.replace("\n", "\n  "))
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
