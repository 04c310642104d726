"""The cells ``release`` puts at the top of every student notebook.

A student opens a problem set in Binder, in Colab or in a local Jupyter. Where ``dlopt`` is
already importable (Binder, ``make lab``, the grader) the setup cell does nothing; where it is
missing (Colab, a bare Jupyter) it installs the package from the book's repository, quietly, and
says clearly what to do if that fails (no network, say). The repository URL comes from the one
place that names it, ``repository: url:`` (and ``branch:``) in the book's ``_config.yml``
(:func:`repository`); a fork changes that line and runs ``make release``. The Colab copies of the
book's pages (``tools/colab_notebooks.py``) start with the same cell.

The first markdown cell also gets a short paragraph on how to name and hand in the file: the
grader takes the file name as the student id.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["repository", "setup_source", "SUBMIT_NOTE", "SETUP_TAG"]

#: Tag of the generated setup cell (``release`` replaces a tagged cell instead of adding another).
SETUP_TAG = "dlopt-setup"

SUBMIT_NOTE = (
    "\n\n**Handing in.** Save this notebook under your student id as the file name "
    "(for example `s1234567.ipynb`) and hand in that one file: the grader takes the file name as "
    "your id. Keep the function names and the check cells as they are; run every cell from the "
    "top (*Run All*) before you hand it in."
)

_INSTALL = '''\
# Setup: makes `dlopt` importable. Does nothing where it is installed (Binder, JupyterLab from
# the book's repository); in Colab or a bare Jupyter it installs it from the book's repository.
try:
    import dlopt
except ImportError:
    import importlib
    import subprocess
    import sys

    _url = "git+{url}@{branch}"
    print(f"Installing dlopt from {{_url}} ...")
    _pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                           f"dlopt{extras} @ {{_url}}"], capture_output=True, text=True)
    if _pip.returncode != 0:
        raise RuntimeError(
            "Could not install dlopt (is this machine offline?). Connect to the internet and run "
            "this cell again, or install it yourself:\\n"
            f"    pip install 'dlopt{extras} @ {{_url}}'\\n"
            "pip said:\\n" + _pip.stderr[-1500:]) from None
    importlib.invalidate_caches()
    import dlopt
    print("dlopt", dlopt.__version__, "installed")
'''

_NO_URL = '''\
# Setup: this notebook needs the `dlopt` package.
try:
    import dlopt
except ImportError:
    raise ImportError("This notebook needs the dlopt package; ask your instructor how to install "
                      "it (pip install dlopt from the book's repository).") from None
'''


def setup_source(repository: tuple[str, str] | None, extras: tuple[str, ...] = ()) -> str:
    """The code of the setup cell for a book whose repository is ``(url, branch)`` (an https
    URL and a branch name; see :func:`repository`), installing ``dlopt`` with ``extras``; or a
    cell that only explains what is missing when no repository is known."""
    if repository is None:
        return _NO_URL.rstrip("\n")
    url, branch = repository
    if not re.fullmatch(r"https://[\w.:/~+-]+", url):
        raise ValueError(f"repository URL {url!r} is not a plain https:// URL")
    if not re.fullmatch(r"[\w.][\w./-]*", branch):
        raise ValueError(f"branch {branch!r} is not a plain branch name")
    if not all(re.fullmatch(r"[a-z]+", e) for e in extras):
        raise ValueError(f"extras {extras!r} are not plain names")
    spec = f"[{','.join(extras)}]" if extras else ""
    return _INSTALL.format(url=url.rstrip("/"), branch=branch, extras=spec).rstrip("\n")


def repository(start: str | Path) -> tuple[str, str] | None:
    """``(url, branch)`` from ``repository:`` in the nearest ``_config.yml`` at or above
    ``start`` (a file or a folder; the branch defaults to ``main``), or ``None`` when there is
    no such file (problem sets kept outside the book)."""
    start = Path(start).resolve()
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        config = folder / "_config.yml"
        if config.is_file():
            found = _read_repository(config)
            return None if "url" not in found else (found["url"], found.get("branch", "main"))
    return None


def _read_repository(config: Path) -> dict[str, str]:
    # a two-level lookup in a YAML file; PyYAML is not a dependency of dlopt[grading]
    found: dict[str, str] = {}
    in_repository = False
    for line in config.read_text(encoding="utf8").splitlines():
        if re.match(r"^repository:\s*(#.*)?$", line):
            in_repository = True
        elif in_repository and re.match(r"^\S", line):
            in_repository = False
        elif in_repository:
            m = re.match(r"^\s+(url|branch):\s*['\"]?([^'\"#\s]+)", line)
            if m:
                found[m.group(1)] = m.group(2)
    return found
