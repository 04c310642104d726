"""Grade submissions against a problem set: reference once, each submission sandboxed, scores here.

The grader process never runs student code. It sends each submission's code cells and the
*student variant* of every check (expected values and predicates removed, see
:mod:`dlopt.grading.instrument`) to a sandboxed interpreter (:mod:`dlopt.grading.sandbox`),
receives JSON data, and compares it with the reference data (computed the same way, from the
source notebook's solutions) using :func:`dlopt.grading.expect.compare_close` and friends.
"""

from __future__ import annotations

import builtins
import csv
import json
import math
import os
import queue
import re
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import expect
from .problemset import InvalidSubmission, ProblemSet, load_problem_set, read_submission
from .sandbox import Limits, RunResult, default_isolation, run_job

__all__ = ["grade", "grade_one", "reference_data", "Result", "ReferenceFailure", "SEED",
           "write_grades", "write_feedback"]

SEED = 0
RESUMES = 2
_CACHE_VERSION = 1


class ReferenceFailure(RuntimeError):
    """The source notebook's own solution does not run through its checks."""


@dataclass
class Result:
    student: str
    points: dict = field(default_factory=dict)      # check id -> points earned
    reasons: dict = field(default_factory=dict)     # check id -> why it failed (None: passed)
    manual: dict = field(default_factory=dict)      # manual id -> points given (missing: pending)
    answers: dict = field(default_factory=dict)     # manual id -> the student's answer text
    status: str = "ok"
    detail: str = ""                                # why the status is not ok
    cell_errors: list = field(default_factory=list)  # (notebook cell number, error)
    output: str = ""
    last_cell: int | None = None                    # the notebook cell running when the process ended

    def total(self) -> float:
        return sum(self.points.values()) + sum(self.manual.values())


# ----------------------------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------------------------
def _job(ps: ProblemSet, cells: list, side: str, limits: Limits, only=None) -> dict:
    checks = [{"index": k, "code": c.plan.student_code if side == "student" else c.plan.reference_code,
               "timeout": float(c.timeout or limits.check_timeout)}
              for k, c in enumerate(ps.checks) if only is None or k in only]
    return {"side": side, "seed": SEED, "cells": cells, "checks": checks}


def _cache_key(ps: ProblemSet) -> str:
    """The source notebook and the dlopt package it may call: a change to either redoes the reference."""
    import hashlib

    import dlopt

    h = hashlib.sha256(ps.digest.encode())
    for path in sorted(Path(dlopt.__file__).parent.rglob("*.py")):
        h.update(str(path.relative_to(Path(dlopt.__file__).parent)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def reference_data(ps: ProblemSet, *, limits: Limits, workdir, isolation=None, cache: Path | None = None,
                   hide=()) -> dict:
    """``{check index: {site index: [data, ...]}}`` from the source's solutions (cached as JSON)."""
    digest = _cache_key(ps)
    if cache is not None and cache.exists():
        try:
            stored = json.loads(cache.read_text())
            if stored.get("digest") == digest and stored.get("version") == _CACHE_VERSION:
                return {int(k): {int(s): v for s, v in sites.items()} for k, sites in stored["data"].items()}
        except (ValueError, KeyError, AttributeError):
            pass
    run = run_job(_job(ps, ps.cells, "reference", limits), limits=limits, workdir=workdir,
                  isolation=isolation, slot=0, hide=hide)
    problems = [f"cell {r['i']}: {r['error']}" for r in run.records if r["t"] == "cell"]
    problems += [f"check {ps.checks[r['c']].id}: {r['error']}" for r in run.records
                 if r["t"] == "check" and "error" in r]
    problems += [f"check {ps.checks[r['c']].id}, expect call {r['s']}: {r['e']}" for r in run.records
                 if r["t"] == "rec" and "e" in r]
    if not run.ended_normally():
        problems.append(f"the reference run did not finish ({_ended(run, limits)})\n{run.output[-2000:]}")
    if problems:
        raise ReferenceFailure(f"{ps.path.name}: the reference solution fails:\n  " + "\n  ".join(problems))
    data: dict = {k: {s: [] for s in range(len(c.plan.sites))} for k, c in enumerate(ps.checks)}
    for r in run.records:
        if r["t"] == "rec":
            data[r["c"]][r["s"]].append(r["d"])
    if cache is not None:
        cache.write_text(json.dumps({"digest": digest, "version": _CACHE_VERSION, "data": data}))
    return data


# ----------------------------------------------------------------------------------------------
# Judging one submission's data
# ----------------------------------------------------------------------------------------------
def _ended(run: RunResult, limits: Limits) -> str:
    if run.timed_out:
        return f"it ran past the time limit of {limits.timeout:g} s"
    rc = run.returncode
    if rc is not None and (rc < 0 or rc > 128):
        sig = -rc if rc < 0 else rc - 128
        return f"the process was killed by signal {sig}" + (" (CPU time limit)" if sig == 24 else "")
    return f"the process exited with code {rc} before the end"


def _status(run: RunResult) -> str:
    if run.ended_normally():
        return "ok"
    if run.timed_out:
        return "timeout"
    rc = run.returncode
    return "killed" if rc is not None and (rc < 0 or rc > 128) else "exited"


def _short(text, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _judge_site(site, got, expected) -> str | None:
    """None if the student's record ``got`` passes against the reference's ``expected``."""
    if "e" in got:
        return f"your value is not data: {_short(got['e'])}" if isinstance(got["e"], str) else "malformed record"
    if "d" not in got:
        return "malformed record"
    data = got["d"]
    opts = site.options
    if site.kind == "close":
        return expect.compare_close(data, expected, opts.get("rtol", 1e-7), opts.get("atol", 1e-12))
    if site.kind == "equal":
        return expect.compare_equal(data, expected)
    if site.kind == "holds":
        env = {"np": np, "numpy": np, "math": math, "__builtins__": builtins}
        for name, value in (expected or {}).items():
            env[name] = expect.as_array_if_numeric(value)
        predicate = eval(compile(site.predicate, "<predicate>", "eval"), env)  # noqa: S307 - instructor code
        try:
            ok = bool(predicate(expect.as_array_if_numeric(data)))
        except Exception as exc:  # noqa: BLE001
            return f"the property could not be evaluated on your value ({type(exc).__name__}: {_short(exc, 120)})"
        return None if ok else f"the property does not hold for {expect._describe(data)}"
    if site.kind == "raises":
        names = " or ".join(site.exceptions)
        if not isinstance(data, dict) or "raised" not in data:
            return "malformed record"
        if data["raised"] is None:
            return f"expected {names} to be raised, nothing was"
        mro = data.get("mro") if isinstance(data.get("mro"), list) else [data["raised"]]
        if any(n in mro for n in site.exceptions):
            return None
        return f"expected {names}, got {_short(data.get('message', data['raised']), 200)}"
    return f"unknown check kind {site.kind}"  # pragma: no cover


def score(ps: ProblemSet, reference: dict, run: RunResult, limits: Limits, student: str) -> Result:
    """Compare a student run with the reference and award points."""
    res = Result(student=student, status=_status(run), output=run.output)
    if res.status != "ok":
        res.detail = _ended(run, limits)
    if run.results_truncated:
        res.detail = (res.detail + "; " if res.detail else "") + "the returned data exceeded the size limit"
    got: dict = {}
    finished: dict = {}
    ncheck = len(ps.checks)
    for r in run.records:
        t, c = r.get("t"), r.get("c")
        if t == "at":
            res.last_cell = r["i"] if isinstance(r.get("i"), int) else None
        if t == "cell" and isinstance(r.get("i"), int) and isinstance(r.get("error"), str):
            res.cell_errors.append((r["i"], _short(r["error"])))
        if not (isinstance(c, int) and 0 <= c < ncheck) or c in finished:
            continue
        if t == "rec" and isinstance(r.get("s"), int):
            lst = got.setdefault(c, {}).setdefault(r["s"], [])
            if len(lst) <= len(reference[c].get(r["s"], [])):
                lst.append(r)
        elif t == "check":
            if isinstance(r.get("died"), str):
                finished[c] = ("died", r["died"])
            else:
                finished[c] = r.get("error") if isinstance(r.get("error"), str) else None
    for k, check in enumerate(ps.checks):
        reason = None
        if k not in finished:
            reason = f"not finished: {res.detail or 'the notebook stopped'}"
        elif isinstance(finished[k], tuple):
            reason = f"{finished[k][1]} during this check (the later checks ran in a fresh process)"
        elif finished[k] is not None:
            reason = f"raised {_short(finished[k])}"
        else:
            for site in check.plan.sites:
                expected = reference[k][site.index]
                mine = got.get(k, {}).get(site.index, [])
                for n, (g, e) in enumerate(zip(mine, expected)):
                    try:
                        why = _judge_site(site, g, e)
                    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
                        why = f"your value could not be compared ({type(exc).__name__})"
                    if why:
                        call = f" (call {n + 1} of {len(expected)})" if len(expected) > 1 else ""
                        msg = site.options.get("msg")
                        reason = f"{site.label()}{call}: " + (f"{msg}: " if msg else "") + _short(why)
                        break
                if reason is None and len(mine) != len(expected):
                    reason = (f"{site.label()} was reached {len(mine)} times, "
                              f"the reference reaches it {len(expected)} times")
                if reason:
                    break
        res.points[check.id] = 0 if reason else check.points
        res.reasons[check.id] = reason
    return res


# ----------------------------------------------------------------------------------------------
# Grading a class
# ----------------------------------------------------------------------------------------------
def _student_id(path: Path, taken: set) -> str:
    sid = path.stem if path.suffix == ".ipynb" else path.name
    sid = re.sub(r"[^A-Za-z0-9._@+-]", "_", sid) or "_"
    if sid in taken:
        sid = re.sub(r"[^A-Za-z0-9._@+-]", "_", path.name)
    taken.add(sid)
    return sid


def run_submission(ps: ProblemSet, path: Path, *, limits: Limits, workdir, isolation=None, slot: int = 1,
                   hide=(), max_mb: float = 20):
    """Run one submission in the sandbox: ``(submission, run)``, or ``(reason, None)`` if unreadable."""
    try:
        sub = read_submission(path, ps.manuals, max_mb=max_mb)
    except (InvalidSubmission, OSError) as exc:
        return str(exc), None
    cells = [code for _, code in sub.cells]
    run = run_job(_job(ps, cells, "student", limits), limits=limits, workdir=workdir,
                  isolation=isolation, slot=slot, hide=hide)
    # a process that dies *inside* a check (a crash, os._exit, a kill -- not a time-out) loses that
    # check only: the remaining checks run again in a fresh process, at most RESUMES times
    for _ in range(RESUMES):
        at = [r for r in run.records if r.get("t") == "at"]
        if run.ended_normally() or run.timed_out or not at or not isinstance(at[-1].get("c"), int):
            break
        dead = at[-1]["c"]
        rest = [k for k in range(dead + 1, len(ps.checks))]
        rc = run.returncode
        died = (f"the process was killed by signal {-rc if rc < 0 else rc - 128}"
                if rc is not None and (rc < 0 or rc > 128) else f"the process exited (code {rc})")
        run.records.append({"t": "check", "c": dead, "died": died})
        if not rest:
            break
        again = run_job(_job(ps, cells, "student", limits, only=set(rest)), limits=limits, workdir=workdir,
                        isolation=isolation, slot=slot, hide=hide)
        again.records = run.records + [r for r in again.records if r.get("t") != "cell"]
        again.output = run.output + again.output[-limits.output_kb * 512:]
        run = again
    return sub, run


def finish(ps: ProblemSet, reference: dict, student: str, sub, run, limits: Limits) -> Result:
    """Score what :func:`run_submission` returned."""
    if run is None:
        res = Result(student=student, status="invalid", detail=sub)
        for c in ps.checks:
            res.points[c.id], res.reasons[c.id] = 0, f"not graded: {sub}"
        return res
    res = score(ps, reference, run, limits, student)
    res.answers = sub.answers
    number = lambda i: sub.cells[i][0] if 0 <= i < len(sub.cells) else i  # noqa: E731
    res.cell_errors = [(number(i), e) for i, e in res.cell_errors]
    if res.status != "ok" and res.last_cell is not None:
        res.detail += f", while running cell {number(res.last_cell)} of the notebook"
        for c in ps.checks:
            if res.reasons[c.id] and res.reasons[c.id].startswith("not finished"):
                res.reasons[c.id] = f"not finished: {res.detail}"
    return res


def grade_one(ps: ProblemSet, reference: dict, path: Path, *, limits: Limits, workdir, isolation=None,
              slot: int = 1, student: str | None = None, hide=(), max_mb: float = 20) -> Result:
    """Grade one file against the reference data."""
    sub, run = run_submission(ps, path, limits=limits, workdir=workdir, isolation=isolation, slot=slot,
                              hide=hide, max_mb=max_mb)
    return finish(ps, reference, student or path.stem, sub, run, limits)


def _read_manual(path: Path | None, ps: ProblemSet) -> dict:
    if path is None:
        return {}
    points = {m.id: m.points for m in ps.manuals}
    out: dict = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            student = row.get("student")
            for mid, value in row.items():
                if mid in points and value not in (None, ""):
                    v = float(value)
                    if not 0 <= v <= points[mid]:
                        raise ValueError(f"{path}: {student}, {mid}: {v:g} is outside [0, {points[mid]:g}]")
                    out.setdefault(student, {})[mid] = v
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_grades(ps: ProblemSet, results: list, path: Path) -> None:
    """``grades.csv``: student, one column per check and manual question, total, max, status."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student"] + [c.id for c in ps.checks] + [m.id for m in ps.manuals]
                   + ["total", "max", "status"])
        for r in sorted(results, key=lambda r: r.student):
            w.writerow([_cell(r.student)] + [_fmt(r.points[c.id]) for c in ps.checks]
                       + [_fmt(r.manual[m.id]) if m.id in r.manual else "" for m in ps.manuals]
                       + [_fmt(r.total()), _fmt(ps.max_points()), r.status])


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", _short(text, 400))


def feedback_text(ps: ProblemSet, r: Result) -> str:
    auto = sum(c.points for c in ps.checks)
    lines = [f"# Feedback on {ps.name}: {_md(r.student)}", "",
             f"**Score: {_fmt(r.total())} / {_fmt(ps.max_points())}** "
             f"(automatic checks {_fmt(sum(r.points.values()))} / {_fmt(auto)}"
             + (f"; questions graded by hand {_fmt(sum(r.manual.values()))} / "
                f"{_fmt(sum(m.points for m in ps.manuals))}" if ps.manuals else "") + ")", ""]
    if r.status != "ok":
        lines += [f"Grading status: **{r.status}** — {_md(r.detail)}", ""]
    lines += ["| check | points | result |", "| --- | --- | --- |"]
    for c in ps.checks:
        why = r.reasons.get(c.id)
        kind = " (hidden)" if c.hidden else ""
        lines.append(f"| {c.id}{kind} | {_fmt(r.points.get(c.id, 0))} / {_fmt(c.points)} | "
                     + ("passed" if why is None else "failed") + " |")
    failed = [(c, r.reasons[c.id]) for c in ps.checks if r.reasons.get(c.id)]
    if failed:
        lines += ["", "## Why checks failed", ""]
        lines += [f"- **{c.id}**: {_md(why)}" for c, why in failed]
    for m in ps.manuals:
        if m is ps.manuals[0]:
            lines += ["", "## Questions graded by hand", ""]
        given = f"{_fmt(r.manual[m.id])} / {_fmt(m.points)}" if m.id in r.manual else f"pending / {_fmt(m.points)}"
        lines.append(f"- **{m.id}**: {given}" + ("" if m.id in r.answers else " (no answer found)"))
    if r.cell_errors:
        lines += ["", "## Cells of your notebook that raised an error", ""]
        lines += [f"- cell {n}: {_md(e)}" for n, e in r.cell_errors[:20]]
    if r.status != "ok" and r.output.strip():
        tail = r.output[-1500:].replace("~~~", "~ ~ ~")
        lines += ["", "## The end of your notebook's output", "", "~~~text", tail, "~~~"]
    return "\n".join(lines) + "\n"


def write_feedback(ps: ProblemSet, results: list, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        (folder / f"{r.student}.md").write_text(feedback_text(ps, r), encoding="utf-8")


def write_answers(ps: ProblemSet, results: list, folder: Path) -> None:
    """``answers/<question id>.md``: every student's answer to a free-text question, for grading by hand."""
    if not ps.manuals:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for m in ps.manuals:
        lines = [f"# Answers to {m.id} ({_fmt(m.points)} points)", "", m.prompt.strip(), ""]
        for r in results:
            text = r.answers.get(m.id)
            lines += [f"## {r.student}", "", "~~~text", (text or "(no answer)").replace("~~~", "~ ~ ~")[:20000],
                      "~~~", ""]
        (folder / f"{m.id}.md").write_text("\n".join(lines), encoding="utf-8")


def grade(source, submissions, out, *, jobs: int = 2, limits: Limits | None = None, isolation=None,
          manual: str | Path | None = None, progress: bool = True, max_mb: float = 20) -> list:
    """Grade every file in ``submissions`` against ``source``; write ``grades.csv``, ``feedback/``
    and, when the set has free-text questions, ``answers/<question id>.md`` (all answers to grade by hand).

    Returns the list of :class:`Result` (sorted by student id).
    """
    from tqdm.auto import tqdm

    limits = limits or Limits()
    isolation = isolation or default_isolation()
    jobs = max(1, min(int(jobs), 32))  # one uid per slot, 64 per grader process
    ps = load_problem_set(source)
    submissions, out = Path(submissions), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    manual_scores = _read_manual(Path(manual) if manual else None, ps)
    hide = [str(Path(source).resolve().parent), str(submissions.resolve()), str(out.resolve())]
    workdir = Path(tempfile.mkdtemp(prefix="dlopt-grade-"))
    try:
        reference = reference_data(ps, limits=limits, workdir=workdir, isolation=isolation,
                                   cache=out / ".reference.json", hide=hide)
        taken: set = set()
        files = [(p, _student_id(p, taken)) for p in sorted(submissions.iterdir())
                 if p.is_file() and not p.name.startswith(".")]
        slots: queue.Queue = queue.Queue()
        for s in range(1, max(1, jobs) + 1):
            slots.put(s)
        bar = tqdm(total=len(files), desc=f"grading {ps.name}", unit="notebook", disable=not progress)
        lock = threading.Lock()

        def work(item):
            path, sid = item
            slot = slots.get()
            try:
                res = grade_one(ps, reference, path, limits=limits, workdir=workdir, isolation=isolation,
                                slot=slot, student=sid, hide=hide, max_mb=max_mb)
            except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
                res = Result(student=sid, status="error", detail=f"grader error: {type(exc).__name__}: {exc}")
                for c in ps.checks:
                    res.points[c.id], res.reasons[c.id] = 0, "not graded: the grader failed on this file"
            finally:
                slots.put(slot)
            res.manual = {k: v for k, v in manual_scores.get(sid, {}).items()}
            with lock:
                bar.update(1)
            return res

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(work, files))
        bar.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.sort(key=lambda r: r.student)
    write_grades(ps, results, out / "grades.csv")
    write_feedback(ps, results, out / "feedback")
    write_answers(ps, results, out / "answers")
    return results
