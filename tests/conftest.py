"""Fixtures shared by the test modules: the one book build that test_book.py and test_browser.py use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def build_log(pytestconfig) -> str:
    """The HTML book built with -W -n --keep-going (every page executed); returns the build's log.

    The build (``tools/build_book.py``) was started in the background when the suite was collected
    (conftest.py at the root); this waits for it. With ``DLOPT_REUSE_BUILD=1`` the book already in
    ``_build/html`` is used as it is, with the log its build left in ``_build/book-build.log`` (to
    rerun the browser test after `make book`).
    """
    log_file = ROOT / "_build" / "book-build.log"
    if os.environ.get("DLOPT_REUSE_BUILD") == "1":
        if not (log_file.exists() and (ROOT / "_build" / "html" / "index.html").exists()):
            pytest.fail("DLOPT_REUSE_BUILD=1 but there is no built book in _build/ (run `make book`)")
        return log_file.read_text()
    proc = getattr(pytestconfig, "_dlopt_book", None)
    if proc is None:  # not started at collection (e.g. a test selected by -k after collection)
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "build_book.py"), "--quiet"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=1500)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the build, its page executor and their kernels
        pytest.fail("the book build took over 25 minutes")
    pre = (ROOT / "_build" / "execute-pages.log")
    print(pre.read_text() if pre.exists() else "")  # per-page execution times, shown by pytest -s or on failure
    log = log_file.read_text() if log_file.exists() else ""
    # 1: built, with warnings -- test_book.py names them
    assert proc.returncode in (0, 1), f"the book build failed:\n{out[-3000:]}\n{log[-6000:]}"
    return log
