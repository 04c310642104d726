"""Export a problem set as a Gradescope autograder, and the run inside Gradescope's container.

``dlopt-grade gradescope SOURCE --out autograder.zip`` writes the zip Gradescope asks for when an
assignment is a "programming assignment" with an autograder: at its root ``setup.sh`` (run once
when Gradescope builds the image: installs ``dlopt[grading]``), ``run_autograder`` (run for each
submission) and the source notebook. Gradescope unpacks the zip into ``/autograder/source``, puts
the student's files in ``/autograder/submission`` and reads ``/autograder/results/results.json``:
``{"score", "execution_time", "output", "tests": [{"name", "score", "max_score", "status",
"output", "visibility"}, ...]}``, one test per check; hidden checks are ``after_published``
(students see them once the grades are published). Questions graded by hand are left to
Gradescope's own manual grading.

``run_autograder`` calls ``python3 -m dlopt.grading gradescope-run`` with the same grader, sandbox
and limits as ``dlopt-grade grade`` (so the score is the same); ``AUTOGRADER_ROOT`` and
``AUTOGRADER_PYTHON`` change ``/autograder`` and ``python3`` (for testing the bundle elsewhere).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

__all__ = ["write_bundle", "run_in_gradescope", "results_json", "DEFAULT_INSTALL"]

DEFAULT_INSTALL = "dlopt[grading] @ git+https://github.com/dlopt/optimization-for-deep-learning"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu, as root).
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-pip python3-venv git
python3 -m venv /opt/dlopt
/opt/dlopt/bin/pip install --quiet {install}
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes results/results.json.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-/opt/dlopt/bin/python}}"
mkdir -p "$ROOT/results"
exec "$PYTHON" -m dlopt.grading gradescope-run "$ROOT/source/{source}" "$ROOT/submission" \\
    "$ROOT/results/results.json" --timeout {timeout:g} --memory {memory}
"""


def write_bundle(source, out, *, install: str = DEFAULT_INSTALL, timeout: float = 60, memory: int = 2048) -> Path:
    """Write the autograder zip for ``source``; returns its path."""
    from .problemset import load_problem_set

    source, out = Path(source), Path(out)
    load_problem_set(source)  # the format must be right before it goes anywhere
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP.format(install=install)),
                           ("run_autograder", RUN.format(source=source.name, timeout=timeout, memory=memory))):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            zf.writestr(info, text)
        info = zipfile.ZipInfo(source.name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        zf.writestr(info, source.read_bytes())
    return out


def results_json(ps, result, elapsed: float) -> dict:
    """Gradescope's results.json for one graded submission."""
    from .grader import _fmt

    tests = []
    for n, c in enumerate(ps.checks, start=1):
        why = result.reasons.get(c.id)
        tests.append({"name": c.id + (" (hidden)" if c.hidden else ""), "number": str(n),
                      "score": float(result.points.get(c.id, 0)), "max_score": float(c.points),
                      "status": "passed" if why is None else "failed",
                      "output": "passed" if why is None else why,
                      "visibility": "after_published" if c.hidden else "visible"})
    output = f"Automatic checks: {_fmt(sum(result.points.values()))} / {_fmt(sum(c.points for c in ps.checks))}"
    if result.status != "ok":
        output += f"\nGrading status: {result.status}: {result.detail}"
    if result.cell_errors:
        output += "\nCells that raised an error:\n" + "\n".join(f"- cell {n}: {e}" for n, e in result.cell_errors[:20])
    return {"score": float(sum(result.points.values())), "execution_time": round(elapsed, 3),
            "output": output, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def run_in_gradescope(source, submission_dir, results_path, *, limits=None) -> dict:
    """Grade the notebook in ``submission_dir`` (the one named like the source, else the only
    ``.ipynb``) and write ``results_path``."""
    from .grader import grade
    from .problemset import load_problem_set
    from .sandbox import safe_text

    start = time.monotonic()
    source, submission_dir, results_path = Path(source), Path(submission_dir), Path(results_path)
    ps = load_problem_set(source)
    notebooks = sorted(p for p in submission_dir.iterdir() if p.name.lower().endswith(".ipynb"))
    chosen = next((p for p in notebooks if p.name == source.name), notebooks[0] if len(notebooks) == 1 else None)
    if chosen is None:
        found = ", ".join(p.name for p in submission_dir.iterdir()) or "nothing"
        data = {"score": 0.0, "execution_time": 0.0, "visibility": "visible",
                "output": f"No notebook to grade: submit {source.name} (found: {found}).", "tests": []}
    else:
        work = Path(tempfile.mkdtemp(prefix="dlopt-gradescope-"))
        try:
            (work / "submissions").mkdir()
            shutil.copyfile(chosen, work / "submissions" / "submission.ipynb", follow_symlinks=False)
            results = grade(source, work / "submissions", work / "out", jobs=1, limits=limits, progress=False)
            data = results_json(ps, results[0], time.monotonic() - start)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(safe_text(json.dumps(data, indent=1)), encoding="utf-8")
    return data
