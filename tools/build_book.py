"""Build the HTML book as ``make book`` and the test suite do: execute the pages, then Sphinx.

1. ``tools/execute_pages.py`` executes every page not yet in the jupyter-cache, on every core;
2. ``jupyter-book build . --builder html -W -n --keep-going`` renders them (finding each page
   already executed).

Writes ``_build/execute-pages.log`` and ``_build/book-build.log``. Exit status: 0 built without a
warning, 1 built but logged warnings or errors, 2 the build itself failed (or, non-zero, the page
executor did). The test suite starts this in the
background as soon as it has collected the book tests (see ``pytest_collection_finish`` in
conftest.py), at low CPU priority, so the pages execute on the cores the unit tests leave idle.

Usage::

    python tools/build_book.py [--nice N] [--quiet]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
EXECUTE_LOG = BUILD / "execute-pages.log"
BUILD_LOG = BUILD / "book-build.log"

# the one message of the build that is not the book's fault (ipykernel's notice when a kernel is
# started over TCP by a myst-nb fallback); every other warning, error or traceback fails it
_PROBLEM = re.compile(r"WARNING|ERROR|Traceback")
_HARMLESS = "Kernel is running over TCP without encryption"


def bad_lines(log: str) -> list[str]:
    """The build log's warning, error and traceback lines (``make book`` and tests/test_book.py)."""
    return [line for line in log.splitlines() if _PROBLEM.search(line) and _HARMLESS not in line]


def _run(cmd: list[str], log_path: Path, show: bool, env: dict) -> int:
    """Run ``cmd`` in the book root, its output into ``log_path`` (and onto stdout with ``show``)."""
    with open(log_path, "w") as log, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, env=env, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if show:
                print(line, end="", flush=True)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    parser.add_argument("--quiet", action="store_true", help="write the output to the logs only")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    BUILD.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    show = not args.quiet
    pre = _run([sys.executable, str(ROOT / "tools" / "execute_pages.py")], EXECUTE_LOG, show, env)
    if pre != 0:
        return pre
    jb = Path(sys.executable).with_name("jupyter-book")
    ret = _run([str(jb), "build", str(ROOT), "--builder", "html", "-W", "-n", "--keep-going"], BUILD_LOG, show, env)
    bad = bad_lines(BUILD_LOG.read_text())
    code = 2 if ret else (1 if bad else 0)
    if code == 0:
        print(f"Book: {BUILD / 'html' / 'index.html'}")
    else:
        print(f"the book build failed or logged warnings (see {BUILD_LOG}):", *bad[:20], sep="\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
