"""The students' environment, built from ``binder/`` alone as Binder builds it.

The environment is built in the background while the rest of the suite runs (see
``pytest_collection_finish`` in conftest.py; ``tools/binder_env.py`` does the work) from a copy
of the repository's files, as a fresh clone has them. Then:

- every student notebook (``exercises/*.ipynb``) runs there, and the only errors are the stubs'
  ``NotImplementedError`` -- no missing module, no ``NameError``;
- the environment holds no book-building or test tooling; its size and package list are written
  to ``_build/binder-environment.txt``;
- the notebooks' generated setup cell installs ``dlopt`` where it is missing, and says clearly
  what to do when it cannot.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import binder_env  # noqa: E402

from dlopt.grading.setup_cell import SETUP_TAG  # noqa: E402


@pytest.fixture(scope="module")
def binder(pytestconfig):
    started = getattr(pytestconfig, "_dlopt_binder", None)
    if started is None:
        pytest.skip("the students' environment was not started (conftest.py starts it when this "
                    "module is collected)")
    proc, work = started
    try:
        proc.wait(timeout=1200)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("building the students' environment took over 20 minutes")
    log = (work / "build.log").read_text()
    assert proc.returncode == 0, f"building the environment from binder/ failed:\n{log[-5000:]}"
    return work / "venv", work / "repo"


def test_student_notebooks_run_with_only_the_stubs_failing(binder):
    venv, repo = binder
    report = binder_env.run_notebooks(venv, repo)
    assert sorted(report) == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    for name, r in report.items():
        assert r["errors"], f"{name}: no cell failed, but every stub should raise"
        others = [e for e in r["errors"] if e != "NotImplementedError"]
        assert not others, f"{name}: errors other than the stubs' NotImplementedError: {others}"


def test_no_book_or_test_tooling_and_the_size_is_reported(binder):
    venv, _ = binder
    installed = binder_env.packages(venv)
    names = {line.split("==")[0].lower().replace("_", "-") for line in installed}
    leaked = sorted(n for n in names if n.startswith(binder_env.FORBIDDEN))
    assert not leaked, f"book or test tooling in the students' environment: {leaked}"
    for needed in ("dlopt", "torch", "jupyterlab", "jupytext", "ipywidgets", "ipykernel"):
        assert needed in names, f"{needed} is missing from the students' environment"
    torch_version = next(line for line in installed if line.lower().startswith("torch=="))
    assert torch_version.endswith("+cpu"), f"not PyTorch's CPU build: {torch_version}"
    size = binder_env.size_bytes(venv)
    out = ROOT / "_build" / "binder-environment.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"{size / 2**20:.0f} MiB, {len(installed)} distributions\n"
                   + "\n".join(installed) + "\n")
    print(f"students' environment: {size / 2**20:.0f} MiB, {len(installed)} distributions")


def test_markdown_pages_open_as_notebooks(binder):
    venv, _ = binder
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    viewers = json.loads(overrides.read_text())["@jupyterlab/docmanager-extension:plugin"]
    assert viewers["defaultViewers"]["markdown"] == "Jupytext Notebook"
    assert (venv / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext").is_dir()


def _setup_cell() -> str:
    nb = nbformat.read(ROOT / "exercises" / "gradient-descent.ipynb", as_version=4)
    return next(c.source for c in nb.cells if SETUP_TAG in c.metadata.get("tags", []))


def _with_url(cell: str, url: str) -> str:
    """The setup cell, installing from ``url`` instead of the book's repository."""
    changed, n = re.subn(r'^(\s*_url = )"[^"]*"$', lambda m: f'{m[1]}"{url}"', cell, flags=re.M)
    assert n == 1, "the setup cell has no `_url = ...` line"
    return changed


def _run_cell(venv: Path, source: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-c", source], capture_output=True,
                          text=True, timeout=600, env=binder_env._venv_env(venv))


def test_setup_cell_installs_dlopt_where_it_is_missing(binder):
    venv, repo = binder
    cell = _setup_cell()
    assert "git+https://" in cell, "the setup cell should install from the repository URL"
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--quiet", "-y",
                    "dlopt"], check=True, capture_output=True)
    # no network: a clear error that says what to do
    offline = _run_cell(venv, _with_url(cell, "git+https://nowhere.invalid/dlopt"))
    assert offline.returncode != 0
    assert "Could not install dlopt" in offline.stderr and "pip install" in offline.stderr
    # the same cell, pointed at the local copy of the repository, installs the package
    local = _with_url(cell, f"file://{repo}")
    done = _run_cell(venv, local + "\nimport dlopt.grading\nprint('imported', dlopt.__file__)")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed" in done.stdout and "imported" in done.stdout
    # where dlopt is importable the cell prints nothing and installs nothing
    again = _run_cell(venv, cell)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
