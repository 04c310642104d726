"""Build the students' environment from ``binder/`` alone, and run the student notebooks in it.

This is what Binder (repo2docker) does with the repository, done in a local virtual environment:
``pip install -r binder/requirements.txt`` from the repository root, then ``binder/postBuild``.
``make lab`` uses the same steps for a student's local JupyterLab, and ``tests/test_binder.py``
checks the result: the student notebooks run with only the stubs' ``NotImplementedError``, the
environment holds no book-building or test tooling, and the notebooks' setup cell installs
``dlopt`` where it is missing.

Usage::

    python tools/binder_env.py build VENV [--copy DIR]   # build from a copy of the repository
    python tools/binder_env.py run VENV DIR              # run DIR/exercises/*.ipynb in VENV

Without ``--copy`` the environment is built from the repository itself (``make lab``). The copy
holds the files git tracks (and untracked files it does not ignore), as a fresh clone would.
Where PyTorch's CPU index is out of reach, pip takes ``torch==2.13.0+cpu`` from the indexes this
machine is configured with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Packages a student environment must not contain (book building and test tooling).
FORBIDDEN = ("jupyter-book", "sphinx", "pytest", "nbval", "selenium", "myst-nb", "ruff", "mypy")


def copy_tree(dest: Path) -> Path:
    """Copy the repository's files (tracked, and untracked-but-not-ignored) to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _log(msg: str) -> None:
    print(f"[binder_env {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _venv_env(venv: Path) -> dict:
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)  # nothing of the developer environment leaks in
    return env


def build(venv: Path, repo: Path) -> None:
    """Create ``venv`` and install into it what Binder installs, from the repository ``repo``."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-r", "binder/requirements.txt"],
                   cwd=repo, env=_venv_env(venv), check=True)
    _log("installed binder/requirements.txt")
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=_venv_env(venv), check=True)
    _log("ran binder/postBuild")


_DRIVER = r"""
import json, os, sys
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, os.path.join(os.getcwd(), "tools"))  # the copy's tools/: the book's own executor
from execute_pages import ipc_kernel_manager  # Unix-domain sockets: no TCP port to race for

report = {}
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3",
                            kernel_manager_class=ipc_kernel_manager(),
                            resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()
    errors = [o.get("ename") for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    report[os.path.basename(path)] = {"errors": errors,
                                      "code_cells": sum(c.cell_type == "code" for c in nb.cells)}
print(json.dumps(report))
"""


def run_notebooks(venv: Path, copy: Path) -> dict:
    """Execute every student notebook of the copy in ``venv``; return, per notebook, the names of
    the errors its cells raised."""
    notebooks = sorted(str(p) for p in (copy / "exercises").glob("*.ipynb"))
    done = subprocess.run([str(venv / "bin" / "python"), "-c", _DRIVER, *notebooks], cwd=copy,
                          env=_venv_env(venv), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"running the student notebooks failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def packages(venv: Path) -> list[str]:
    """``name==version`` of every distribution in ``venv``."""
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
                          "--disable-pip-version-check"], capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def size_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("venv", type=Path)
    p.add_argument("--copy", type=Path, help="where to copy the repository (default: VENV.repo)")
    p = sub.add_parser("run")
    p.add_argument("venv", type=Path)
    p.add_argument("copy", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        repo = ROOT
        if args.copy is not None:
            repo = copy_tree(args.copy.resolve())
            _log(f"copied the repository to {repo}")
        build(args.venv.resolve(), repo)
        print(f"{size_bytes(args.venv) / 2**20:.0f} MiB in {args.venv}")
    else:
        print(json.dumps(run_notebooks(args.venv.resolve(), args.copy.resolve()), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
