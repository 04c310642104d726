"""Fixtures shared by the test modules: the one book build that test_book.py and test_browser.py use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def build_log() -> str:
    """Execute every page, build the HTML book with -W -n --keep-going, return the build's log.

    With ``DLOPT_REUSE_BUILD=1`` the book already in ``_build/html`` is used as it is, with the
    log its build left in ``_build/book-build.log`` (to rerun the browser test after `make book`).
    """
    log_file = ROOT / "_build" / "book-build.log"
    if os.environ.get("DLOPT_REUSE_BUILD") == "1":
        if not (log_file.exists() and (ROOT / "_build" / "html" / "index.html").exists()):
            pytest.fail("DLOPT_REUSE_BUILD=1 but there is no built book in _build/ (run `make book`)")
        return log_file.read_text()
    jb = Path(sys.executable).with_name("jupyter-book")
    # execute the pages on every core first (fills the cache the build reads); see tools/
    pre = subprocess.run([sys.executable, str(ROOT / "tools" / "execute_pages.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, check=False)
    assert pre.returncode == 0, pre.stdout + pre.stderr
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--builder", "html", "-W", "-n", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=900, check=False,
    )
    log = proc.stdout + proc.stderr
    print(pre.stdout)  # per-page execution times, shown by pytest -s or on failure
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "book-build.log").write_text(log)
    (ROOT / "_build" / "execute-pages.log").write_text(pre.stdout + pre.stderr)
    assert proc.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return log


