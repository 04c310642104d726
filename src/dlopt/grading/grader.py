"""Grade submissions against a problem set: reference once, each submission sandboxed, scores here.

The grader process never runs student code. It hands each submission to a sandboxed interpreter
(:mod:`dlopt.grading.sandbox`) that runs its cells and then answers calls; a second sandboxed
process, the check driver, runs the *student variant* of every check (expected values and
predicates removed, see :mod:`dlopt.grading.instrument`), calling the student's functions through
:mod:`dlopt.grading.channel`, and returns JSON records, which the grader compares with the
reference data (computed from the source notebook's solutions) using
:func:`dlopt.grading.expect.compare_close` and friends.
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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import expect
from .problemset import ProblemSet, load_problem_set
from .sandbox import Limits, RunResult, default_isolation, run_job, safe_text, set_parallel_runs
from .submission import MAX_ANSWER, MAX_CELLS, InvalidSubmission

__all__ = ["grade", "grade_one", "reference_data", "Result", "ReferenceFailure", "SEED",
           "write_grades", "write_feedback", "student_id", "file_name_of", "collect"]

SEED = 0
RESUMES = 2
_CACHE_VERSION = 2
MAX_CELL_ERRORS = 50


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
    file: str = ""                                  # the submitted file's name
    comments: dict = field(default_factory=dict)    # manual id -> the grader's comment
    info: dict = field(default_factory=dict)        # roster columns (name, email, lms_id)
    late_days: int = 0                              # whole days after the (extended) deadline
    penalty: float = 0.0                            # fraction of the points taken for lateness
    round: int = 0
    elapsed: float = 0.0                            # wall-clock seconds in the sandbox, reruns included
    kept: bool = False                              # a row of the previous gradebook (--only)

    def raw_total(self) -> float:
        return sum(self.points.values()) + sum(self.manual.values())

    def total(self) -> float:
        return self.raw_total() * (1.0 - self.penalty)


# ----------------------------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------------------------
def _job(ps: ProblemSet, cells: list, side: str, limits: Limits, only=None, rounds: int = 0) -> dict:
    """A job for the sandbox: ``side`` is ``reference`` (the source's solution records the expected
    side of each check) or ``driver`` (the source's cells, then each check's student side with the
    student's names fetched from the student's process, see :mod:`dlopt.grading.channel`)."""
    checks = [{"index": k, "code": c.plan.reference_code if side == "reference" else c.plan.student_code,
               "timeout": float(c.timeout or limits.check_timeout), "fetch": list(c.fetch)}
              for k, c in enumerate(ps.checks) if only is None or k in only]
    return {"side": side, "seed": SEED, "round": int(rounds), "cells": cells, "checks": checks}


DRIVER_SLOTS = 32  # the driver of slot s runs as the uid of slot DRIVER_SLOTS + s


def _combine(student: RunResult, driver: RunResult) -> RunResult:
    """One run of a submission from its two processes: the notebook's bookkeeping from the
    student's process (the parse, cell errors, where it stopped, its output, how it ended), every
    check record from the driver (the student's process can write none of them)."""
    run = RunResult()
    run.records = [r for r in student.records
                   if r.get("t") in ("sub", "invalid", "start", "cell") or (r.get("t") == "at" and "c" not in r)]
    run.records += [r for r in driver.records
                    if (r.get("t") in ("at", "rec", "check", "gone") and "c" in r) or r.get("t") == "end"]
    if student.stopped:  # ended by the grader once the driver was done: it did not die by itself
        student.returncode = driver.returncode
    student_ended = any(r.get("t") == "end" for r in student.records)
    run.returncode = driver.returncode if student_ended else student.returncode
    run.timed_out = student.timed_out or driver.timed_out
    run.output, run.output_bytes = student.output, student.output_bytes
    run.results_truncated = student.results_truncated or driver.results_truncated
    run.memory_exceeded = student.memory_exceeded
    run.elapsed = max(student.elapsed, driver.elapsed)
    failed = [r for r in driver.records if r.get("t") == "cell" and isinstance(r.get("error"), str)]
    if failed:  # the instructor's cells ran in the reference run: here the machine failed them
        run.grader_error = (f"the check driver could not run cell {failed[0].get('i')} of the source "
                            f"({_short(failed[0]['error'], 200)}); grade this file again")
    return run


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
                   hide=(), rounds: int = 0) -> dict:
    """``{check index: {site index: [data, ...]}}`` from the source's solutions (cached as JSON)."""
    digest = _cache_key(ps) + f":round={int(rounds)}"
    if cache is not None and cache.exists():
        try:
            stored = json.loads(cache.read_text())
            if stored.get("digest") == digest and stored.get("version") == _CACHE_VERSION:
                return {int(k): {int(s): v for s, v in sites.items()} for k, sites in stored["data"].items()}
        except (ValueError, KeyError, AttributeError):
            pass
    run = run_job(_job(ps, ps.cells, "reference", limits, rounds=rounds), limits=limits, workdir=workdir,
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
        return (f"the process was killed by signal {sig}" + (" (CPU time limit)" if sig == 24 else "")
                + (f" (the submission's memory limit of {limits.memory_mb} MB was reached)"
                   if run.memory_exceeded and sig == 9 else ""))
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


def _judge_site(site, got, expected, reveal: bool = True) -> str | None:
    """None if the student's record ``got`` passes against the reference's ``expected``; with
    ``reveal=False`` (hidden checks) the reason never quotes reference data."""
    if "e" in got:
        return f"your value is not data: {_short(got['e'])}" if isinstance(got["e"], str) else "malformed record"
    if "d" not in got:
        return "malformed record"
    data = got["d"]
    opts = site.options
    if site.kind == "close":
        return expect.compare_close(data, expected, opts.get("rtol", 1e-7), opts.get("atol", 1e-12), reveal=reveal)
    if site.kind == "equal":
        return expect.compare_equal(data, expected, reveal=reveal)
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
        mro = data["mro"] if isinstance(data.get("mro"), list) else [data["raised"]]
        if any(n in mro for n in site.exceptions):
            return None
        return f"expected {names}, got {_short(data.get('message', data['raised']), 200)}"
    return f"unknown check kind {site.kind}"  # pragma: no cover


def _site_reason(check, site, mine: list, expected: list, reveal: bool) -> str | None:
    for n, (g, e) in enumerate(zip(mine, expected)):
        try:
            why = _judge_site(site, g, e, reveal)
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            why = f"your value could not be compared ({type(exc).__name__})"
        if why:
            call = f" (call {n + 1} of {len(expected)})" if len(expected) > 1 else ""
            msg = site.options.get("msg")
            return f"{site.label()}{call}: " + (f"{msg}: " if msg else "") + _short(why)
    if len(mine) != len(expected):
        return f"{site.label()} was reached {len(mine)} times, the reference reaches it {len(expected)} times"
    return None


def score(ps: ProblemSet, reference: dict, run: RunResult, limits: Limits, student: str, *,
          reveal_hidden: bool = False, only=None) -> Result:
    """Compare a student run with the reference and award points.

    The records come from a process that ran student code: each is validated (types, check and
    site indices of this problem set, at most as many values per call site as the reference has)
    and anything else is ignored; a forged record can only stand for the student's own answer.
    """
    res = Result(student=student, status=_status(run), output=run.output, elapsed=run.elapsed)
    if res.status != "ok":
        res.detail = _ended(run, limits)
    if run.grader_error:
        res.status, res.detail = "error", run.grader_error
    if run.results_truncated:
        res.detail = (res.detail + "; " if res.detail else "") + "the returned data exceeded the size limit"
    got: dict = {}
    finished: dict = {}
    ncheck = len(ps.checks)
    for r in run.records:
        t, c = r.get("t"), r.get("c")
        if t == "at" and "c" not in r:
            res.last_cell = r["i"] if type(r.get("i")) is int else None
        if (t == "cell" and type(r.get("i")) is int and isinstance(r.get("error"), str)
                and len(res.cell_errors) < MAX_CELL_ERRORS):
            res.cell_errors.append((r["i"], _short(r["error"])))
        if not (type(c) is int and 0 <= c < ncheck) or c in finished:
            continue
        if t == "rec" and type(r.get("s")) is int:
            lst = got.setdefault(c, {}).setdefault(r["s"], [])
            if len(lst) <= len(reference[c].get(r["s"], [])):
                lst.append(r)
        elif t == "check":
            if isinstance(r.get("died"), str):
                finished[c] = ("died", r["died"])
            else:
                finished[c] = r.get("error") if isinstance(r.get("error"), str) else None
    for k, check in enumerate(ps.checks):
        if only is not None and k not in only:
            continue
        reveal = reveal_hidden or not check.hidden
        reason = None
        part_reasons: dict = {}
        if k not in finished:
            reason = f"not finished: {res.detail or 'the notebook stopped'}"
        elif isinstance(finished[k], tuple):
            reason = f"{finished[k][1]} during this check (the later checks ran in a fresh process)"
        elif finished[k] is not None and not check.parts:
            reason = f"raised {_short(finished[k])}"
        else:
            for site in check.plan.sites:
                mine = got.get(k, {}).get(site.index, [])
                why = _site_reason(check, site, mine, reference[k][site.index], reveal)
                if why and finished[k] is not None and len(mine) < len(reference[k][site.index]):
                    why = f"raised {_short(finished[k])} ({site.label()} not reached as often as in the reference)"
                group = site.options.get("group")
                if why and check.parts:
                    part_reasons.setdefault(group, why)
                elif why:
                    reason = why
                    break
        if check.parts and reason is None:
            earned = sum(p for g, p in check.parts.items() if g not in part_reasons)
            res.points[check.id] = earned
            res.reasons[check.id] = ("; ".join(f"part {g} ({_fmt(check.parts[g])} points): {w}"
                                               for g, w in part_reasons.items()) or None)
        else:
            res.points[check.id] = 0 if reason else check.points
            res.reasons[check.id] = reason
    return res


# ----------------------------------------------------------------------------------------------
# Grading a class
# ----------------------------------------------------------------------------------------------
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+@")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
MAX_ID = 120


def student_id(file_name: str) -> str:
    """The student id of a submitted file: its name without ``.ipynb``, every byte outside
    ``A-Za-z0-9._-+@`` written ``%XX`` (as in a URL), safe as a file name everywhere.

    Distinct names give distinct ids; :func:`file_name_of` turns an id back into the name. A name
    longer than :data:`MAX_ID` characters once escaped is cut and ends in ``~`` and 16 hex digits of
    its SHA-256 (the gradebook's ``file`` column keeps the full name)."""
    stem = file_name[:-6] if file_name.lower().endswith(".ipynb") else file_name
    raw = os.fsencode(stem)
    sid = "".join(chr(b) if chr(b) in _SAFE_CHARS else f"%{b:02X}" for b in raw) or "%"
    if sid[0] == ".":
        sid = "%2E" + sid[1:]
    if sid.endswith("."):
        sid = sid[:-1] + "%2E"
    if sid.split(".")[0].upper() in _RESERVED:
        sid = f"%{ord(sid[0]):02X}" + sid[1:]
    if len(sid) > MAX_ID:
        import hashlib

        sid = sid[: MAX_ID - 17].rstrip("%0123456789ABCDEF") + "~" + hashlib.sha256(raw).hexdigest()[:16]
    return sid


def file_name_of(sid: str) -> str:
    """The file name (without ``.ipynb``) an id was made from (ids cut with ``~`` are not reversible)."""
    from urllib.parse import unquote_to_bytes

    return os.fsdecode(unquote_to_bytes(sid))


@dataclass
class Entry:
    """One thing found in the submissions folder."""

    path: Path
    student: str
    kind: str            # "notebook", "refused", "not a submission"
    reason: str = ""
    mtime: float = 0.0


def collect(folder: Path) -> tuple[list, list]:
    """``(entries to grade or report in the gradebook, things that are not submissions)``.

    Notebooks are regular ``*.ipynb`` files. A symbolic link, a hard link to another file, a device,
    a named pipe or a socket is *refused* (a row with status ``refused`` when its name ends in
    ``.ipynb``); any other file or folder is listed as "not a submission". Nothing is followed.
    """
    import stat

    graded, others = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            st = os.lstat(path)
        except OSError as exc:
            others.append(Entry(path, "", "not a submission", f"could not be read ({exc.strerror})"))
            continue
        notebook = name.lower().endswith(".ipynb")
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            reason = "a symbolic link, refused: submit the notebook file itself"
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            reason = "a device, named pipe or socket, refused: submit the notebook file itself"
        elif stat.S_ISREG(mode) and st.st_nlink > 1:
            reason = "a hard link to another file, refused: submit a copy of the notebook"
        elif stat.S_ISDIR(mode):
            others.append(Entry(path, "", "not a submission", "a folder"))
            continue
        elif not notebook:
            others.append(Entry(path, "", "not a submission", "not a .ipynb file"))
            continue
        else:
            graded.append(Entry(path, student_id(name), "notebook", mtime=st.st_mtime))
            continue
        if notebook:
            graded.append(Entry(path, student_id(name), "refused", reason, st.st_mtime))
        else:
            others.append(Entry(path, "", "not a submission", reason))
    # ids differ, but two may differ only in case (one file on macOS or Windows): never merged
    by_fold: dict = {}
    for e in graded:
        by_fold.setdefault(e.student.casefold(), []).append(e)
    for group in by_fold.values():
        if len(group) > 1:
            import hashlib

            names = ", ".join(g.path.name for g in group)
            for e in group:
                e.student += "~" + hashlib.sha256(os.fsencode(e.path.name)).hexdigest()[:8]
                e.reason = f"file names that differ only in case ({names}): graded separately"
    return graded, others


def read_notebook_bytes(path: Path, max_mb: float) -> bytes:
    """The bytes of a regular file, opened without following links or blocking on a pipe."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidSubmission(f"the file could not be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSubmission("not a regular file, refused")
        if st.st_size > max_mb * 2**20:
            raise InvalidSubmission(f"the file is {st.st_size / 2**20:.1f} MB, larger than the {max_mb:g} MB limit")
        chunks, left = [], int(max_mb * 2**20) + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_mb * 2**20:
            raise InvalidSubmission(f"the file is larger than the {max_mb:g} MB limit")
        return data
    finally:
        os.close(fd)


@dataclass
class Parsed:
    """What the sandbox read from a submitted notebook (untrusted data, validated here)."""

    numbers: list = field(default_factory=list)   # notebook cell number of each code cell run
    answers: dict = field(default_factory=dict)


def _parsed(records: list, manual_ids) -> Parsed | str:
    """The first record of a student run: the parse of the notebook, or why it is not one."""
    first = records[0] if records else None
    if not isinstance(first, dict):
        return ""
    if first.get("t") == "invalid" and isinstance(first.get("why"), str):
        return _short(first["why"])
    if first.get("t") != "sub":
        return ""
    numbers = first.get("numbers")
    numbers = [n for n in numbers if isinstance(n, int)][:MAX_CELLS] if isinstance(numbers, list) else []
    given = first["answers"] if isinstance(first.get("answers"), dict) else {}
    answers = {k: v[:MAX_ANSWER] for k, v in given.items() if k in manual_ids and isinstance(v, str)}
    return Parsed(numbers, answers)


def run_submission(ps: ProblemSet, path: Path, *, limits: Limits, workdir, isolation=None, slot: int = 1,
                   hide=(), max_mb: float = 20, rounds: int = 0,
                   only=None) -> tuple[Parsed | str, RunResult | None]:
    """Run one submission in the sandbox: ``(parsed, run)``, or ``(reason, None)`` if it is not a
    notebook. The notebook is parsed inside the sandbox; the wall-clock limit covers the reruns."""
    try:
        raw = read_notebook_bytes(Path(path), max_mb)
    except InvalidSubmission as exc:
        return str(exc), None
    manual_ids = [m.id for m in ps.manuals]
    allowed = sorted(only) if only is not None else list(range(len(ps.checks)))
    start = time.monotonic()

    def launch(which):
        left = limits.timeout - (time.monotonic() - start)
        student = {"side": "student", "seed": SEED, "round": int(rounds), "cells": [],
                   "serve": True, "manual_ids": manual_ids, "check_timeout": limits.check_timeout}
        driver = _job(ps, ps.cells, "driver", limits, only=set(which), rounds=rounds)
        to_driver, to_student = os.pipe(), os.pipe()
        done = threading.Event()  # the driver has ended: the student's process has nothing left to do

        def drive():
            try:
                return run_job(driver, limits=limits, workdir=workdir, isolation=isolation,
                               slot=DRIVER_SLOTS + slot, hide=hide, timeout=left,
                               channel=(to_driver[0], to_student[1]))
            finally:
                done.set()

        with ThreadPoolExecutor(max_workers=1) as pool:
            checks = pool.submit(drive)
            try:
                notebook = run_job(student, limits=limits, workdir=workdir, isolation=isolation, slot=slot,
                                   hide=hide, notebook=raw, timeout=left, channel=(to_student[0], to_driver[1]),
                                   stop=done)
            finally:
                driven = checks.result()
        return _combine(notebook, driven)

    run = launch(allowed)
    parsed = _parsed(run.records, manual_ids)
    if isinstance(parsed, str):
        if parsed:
            return parsed, None
        return f"the notebook could not be read: {_ended(run, limits)}", None
    run.records = run.records[1:]
    # a process that dies *inside* a check (a crash, os._exit, a kill -- not a time-out) loses that
    # check only: the checks after it run again in a fresh process, at most RESUMES times, all
    # within the submission's one wall-clock limit. Which check was running is taken from the
    # records, which the student's code can write too: only an index of this job is believed.
    for _ in range(RESUMES):
        at = [r["c"] for r in run.records if r.get("t") == "at" and type(r.get("c")) is int and r["c"] in allowed]
        if run.ended_normally() or run.timed_out or not at:
            break
        dead = at[-1]
        rest = [k for k in allowed if k > dead]
        rc = run.returncode
        why = [r.get("why") for r in run.records if r.get("t") == "gone" and r.get("c") == dead]
        died = (why[-1] if why and isinstance(why[-1], str) else
                f"the process was killed by signal {-rc if rc < 0 else rc - 128}"
                if rc is not None and (rc < 0 or rc > 128) else f"the process exited (code {rc})")
        if run.memory_exceeded:
            died += f" (the submission's memory limit of {limits.memory_mb} MB was reached)"
        run.records.append({"t": "check", "c": dead, "died": died})
        if not rest or limits.timeout - (time.monotonic() - start) < 1.0:
            break
        again = launch(rest)
        again.records = run.records + [r for r in again.records[1:] if r.get("t") not in ("cell", "sub", "invalid")]
        again.output = run.output + again.output[-limits.output_kb * 512:]
        again.elapsed += run.elapsed
        run = again
    return parsed, run


def finish(ps: ProblemSet, reference: dict, student: str, sub, run, limits: Limits, *,
           reveal_hidden: bool = False, only=None) -> Result:
    """Score what :func:`run_submission` returned."""
    if run is None:
        res = Result(student=student, status="invalid", detail=sub)
        for c in ps.checks:
            res.points[c.id], res.reasons[c.id] = 0, f"not graded: {sub}"
        return res
    res = score(ps, reference, run, limits, student, reveal_hidden=reveal_hidden, only=only)
    res.answers = dict(sub.answers)
    number = lambda i: sub.numbers[i] if 0 <= i < len(sub.numbers) else i  # noqa: E731
    res.cell_errors = [(number(i), e) for i, e in res.cell_errors]
    if res.status != "ok" and res.last_cell is not None:
        res.detail += f", while running cell {number(res.last_cell)} of the notebook"
        for c in ps.checks:
            if res.reasons.get(c.id) and res.reasons[c.id].startswith("not finished"):
                res.reasons[c.id] = f"not finished: {res.detail}"
    return res


def grade_one(ps: ProblemSet, reference: dict, path: Path, *, limits: Limits, workdir, isolation=None,
              slot: int = 1, student: str | None = None, hide=(), max_mb: float = 20, rounds: int = 0,
              reveal_hidden: bool = False, only=None) -> Result:
    """Grade one file against the reference data."""
    sub, run = run_submission(ps, path, limits=limits, workdir=workdir, isolation=isolation, slot=slot,
                              hide=hide, max_mb=max_mb, rounds=rounds, only=only)
    return finish(ps, reference, student or student_id(Path(path).name), sub, run, limits,
                  reveal_hidden=reveal_hidden, only=only)


def _fmt(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet never runs as a formula."""
    text = safe_text(str(text))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write(path: Path, text: str) -> None:
    path.write_text(safe_text(text), encoding="utf-8", errors="replace")


def write_grades(ps: ProblemSet, results: list, path: Path, *, roster: bool = False, deadline: bool = False) -> None:
    """``grades.csv``: student, file, [roster columns], one column per check and manual question,
    [lateness], total, max, status, round."""
    with open(path, "w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "file"] + (["name", "email", "lms_id"] if roster else [])
                   + [c.id for c in ps.checks] + [m.id for m in ps.manuals]
                   + (["days_late", "penalty"] if deadline else []) + ["total", "max", "status", "round"])
        for r in sorted(results, key=lambda r: r.student):
            w.writerow([_cell(r.student), _cell(r.file)]
                       + ([_cell(r.info.get(k, "")) for k in ("name", "email", "lms_id")] if roster else [])
                       + [_fmt(r.points[c.id]) if c.id in r.points else "" for c in ps.checks]
                       + [_fmt(r.manual[m.id]) if m.id in r.manual else "" for m in ps.manuals]
                       + ([str(r.late_days), f"{r.penalty * 100:g}%"] if deadline else [])
                       + [_fmt(r.total()), _fmt(ps.max_points()), r.status, str(r.round)])


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", _short(text, 400))


def feedback_text(ps: ProblemSet, r: Result) -> str:
    """The student's feedback as Markdown."""
    auto = sum(c.points for c in ps.checks)
    lines = [f"# Feedback on {ps.name}: {_md(r.info.get('name') or r.student)}", "",
             f"**Score: {_fmt(r.total())} / {_fmt(ps.max_points())}** "
             f"(automatic checks {_fmt(sum(r.points.values()))} / {_fmt(auto)}"
             + (f"; questions graded by hand {_fmt(sum(r.manual.values()))} / "
                f"{_fmt(sum(m.points for m in ps.manuals))}" if ps.manuals else "")
             + (f"; {r.late_days} day(s) late: {r.penalty * 100:g}% of the points taken" if r.late_days else "")
             + ")", ""]
    if r.status != "ok":
        lines += [f"Grading status: **{r.status}** — {_md(r.detail)}", ""]
    lines += ["| check | points | result |", "| --- | --- | --- |"]
    for c in ps.checks:
        why = r.reasons.get(c.id)
        kind = " (hidden)" if c.hidden else ""
        earned = r.points.get(c.id, 0)
        result = "passed" if why is None else ("partly passed" if earned else "failed")
        lines.append(f"| {c.id}{kind} | {_fmt(earned)} / {_fmt(c.points)} | {result} |")
    failed = [(c, r.reasons[c.id]) for c in ps.checks if r.reasons.get(c.id)]
    if failed:
        lines += ["", "## Why checks failed", ""]
        lines += [f"- **{c.id}**: {_md(why)}" for c, why in failed]
    for m in ps.manuals:
        if m is ps.manuals[0]:
            lines += ["", "## Questions graded by hand", ""]
        given = f"{_fmt(r.manual[m.id])} / {_fmt(m.points)}" if m.id in r.manual else f"pending / {_fmt(m.points)}"
        lines.append(f"- **{m.id}**: {given}" + ("" if m.id in r.answers else " (no answer found)")
                     + (f" — {_md(r.comments[m.id])}" if r.comments.get(m.id) else ""))
    if r.cell_errors:
        lines += ["", "## Cells of your notebook that raised an error", ""]
        lines += [f"- cell {n}: {_md(e)}" for n, e in r.cell_errors[:20]]
    if r.status != "ok" and r.output.strip():
        tail = r.output[-1500:].replace("~~~", "~ ~ ~")
        lines += ["", "## The end of your notebook's output", "", "~~~text", tail, "~~~"]
    return safe_text("\n".join(lines) + "\n")


def feedback_html(ps: ProblemSet, r: Result) -> str:
    """The same feedback as a standalone HTML page (text escaped, no Markdown escapes)."""
    import html

    e = lambda t: html.escape(safe_text(str(t)))  # noqa: E731
    auto = sum(c.points for c in ps.checks)
    rows = "".join(
        f"<tr><td>{e(c.id)}{' (hidden)' if c.hidden else ''}</td><td>{_fmt(r.points.get(c.id, 0))} / "
        f"{_fmt(c.points)}</td><td>{'passed' if r.reasons.get(c.id) is None else 'failed'}</td>"
        f"<td>{e(r.reasons.get(c.id) or '')}</td></tr>" for c in ps.checks)
    manual = "".join(
        f"<li><b>{e(m.id)}</b>: {_fmt(r.manual[m.id]) if m.id in r.manual else 'pending'} / {_fmt(m.points)}"
        + (f" — {e(r.comments[m.id])}" if r.comments.get(m.id) else "") + "</li>" for m in ps.manuals)
    errors = "".join(f"<li>cell {n}: {e(msg)}</li>" for n, msg in r.cell_errors[:20])
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback on {e(ps.name)}</title></head><body>",
             f"<h1>Feedback on {e(ps.name)}: {e(r.info.get('name') or r.student)}</h1>",
             f"<p><b>Score: {_fmt(r.total())} / {_fmt(ps.max_points())}</b> (automatic checks "
             f"{_fmt(sum(r.points.values()))} / {_fmt(auto)}"
             + (f"; {r.late_days} day(s) late: {r.penalty * 100:g}% of the points taken" if r.late_days else "")
             + ")</p>"]
    if r.status != "ok":
        parts.append(f"<p>Grading status: <b>{e(r.status)}</b> — {e(r.detail)}</p>")
    parts.append(f"<table><tr><th>check</th><th>points</th><th>result</th><th>why</th></tr>{rows}</table>")
    if manual:
        parts.append(f"<h2>Questions graded by hand</h2><ul>{manual}</ul>")
    if errors:
        parts.append(f"<h2>Cells of your notebook that raised an error</h2><ul>{errors}</ul>")
    if r.status != "ok" and r.output.strip():
        parts.append(f"<h2>The end of your notebook's output</h2><pre>{e(r.output[-1500:])}</pre>")
    return "".join(parts) + "</body></html>\n"


def write_feedback(ps: ProblemSet, results: list, folder: Path, *, html: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        _write(folder / f"{r.student}.md", feedback_text(ps, r))
        if html:
            _write(folder / f"{r.student}.html", feedback_html(ps, r))


def write_answers(ps: ProblemSet, results: list, folder: Path) -> None:
    """``answers/<question id>.md``: every student's answer to a free-text question, for grading by hand."""
    if not ps.manuals:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for m in ps.manuals:
        lines = [f"# Answers to {m.id} ({_fmt(m.points)} points)", "", m.prompt.strip(), ""]
        for r in results:
            text = r.answers.get(m.id)
            lines += [f"## {r.student}", "", "~~~text", (text or "(no answer)").replace("~~~", "~ ~ ~")[:MAX_ANSWER],
                      "~~~", ""]
        _write(folder / f"{m.id}.md", "\n".join(lines))


def grade(source, submissions, out, *, jobs: int = 2, limits: Limits | None = None, isolation=None,
          manual: str | Path | None = None, progress: bool = True, max_mb: float = 20, roster=None,
          deadline=None, late_policy: str = "none", rounds: int = 0, reveal_hidden: bool = False,
          only_students=None, only_checks=None, html: bool = False) -> list:
    """Grade every notebook in ``submissions`` against ``source``; write ``grades.csv``,
    ``feedback/``, ``report.txt`` (what was not graded, roster mismatches) and, when the set has
    free-text questions, ``answers/<question id>.md`` (all answers, to grade by hand).

    ``roster`` (path), ``deadline`` (ISO date-time) and ``late_policy`` see
    :mod:`dlopt.grading.course`; ``rounds``: a grading round whose number changes the hidden
    inputs (recorded in the CSV); ``reveal_hidden``: feedback on hidden checks may quote
    reference values; ``only_students``/``only_checks``: regrade those alone, keeping the other
    rows and columns of an existing ``grades.csv`` in ``out``. Returns the :class:`Result` list.
    """
    from tqdm.auto import tqdm

    from . import course

    limits = limits or Limits()
    isolation = isolation or default_isolation()
    jobs = max(1, min(int(jobs), DRIVER_SLOTS - 1))  # two uids per slot (student, driver), 64 per grader
    ps = load_problem_set(source)
    submissions, out = Path(submissions), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ros = course.read_roster(roster) if roster else None
    due = course.parse_deadline(deadline) if deadline else None
    policy = course.LatePolicy.parse(late_policy)
    only = None
    if only_checks:
        ids = [c.id for c in ps.checks]
        unknown = [c for c in only_checks if c not in ids]
        if unknown:
            raise ValueError(f"--only: no check {unknown} in {ps.path.name} (checks: {ids})")
        only = {ids.index(c) for c in only_checks}
    entries, others = collect(submissions)
    if only_students:
        known = {e.student for e in entries}
        wanted = {s if s in known else student_id(s) for s in only_students}
        missing = sorted(wanted - known)
        if missing:
            raise ValueError(f"--only: no submission from {missing}")
        entries = [e for e in entries if e.student in wanted]
    manual_scores = course.read_manual(manual, ps, [e.student for e in collect(submissions)[0]]) if manual else {}
    hide = [str(Path(source).resolve().parent), str(submissions.resolve()), str(out.resolve())]
    workdir = Path(tempfile.mkdtemp(prefix="dlopt-grade-"))
    set_parallel_runs(jobs)
    try:
        reference = reference_data(ps, limits=limits, workdir=workdir, isolation=isolation,
                                   cache=out / f".reference-{int(rounds)}.json", hide=hide, rounds=rounds)
        slots: queue.Queue = queue.Queue()
        for s in range(1, jobs + 1):
            slots.put(s)
        bar = tqdm(total=len(entries), desc=f"grading {ps.name}", unit="notebook", disable=not progress)
        lock = threading.Lock()

        def work(entry):
            if entry.kind == "refused":
                res = Result(student=entry.student, status="refused", detail=entry.reason)
                for c in ps.checks:
                    res.points[c.id], res.reasons[c.id] = 0, f"not graded: {entry.reason}"
            else:
                slot = slots.get()
                try:
                    res = grade_one(ps, reference, entry.path, limits=limits, workdir=workdir, isolation=isolation,
                                    slot=slot, student=entry.student, hide=hide, max_mb=max_mb, rounds=rounds,
                                    reveal_hidden=reveal_hidden, only=only)
                except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
                    res = Result(student=entry.student, status="error",
                                 detail=f"grader error: {type(exc).__name__}: {exc}")
                    for c in ps.checks:
                        res.points[c.id], res.reasons[c.id] = 0, "not graded: the grader failed on this file"
                finally:
                    slots.put(slot)
            res.file = safe_text(entry.path.name)
            res.round = int(rounds)
            if entry.reason and entry.kind == "notebook":
                res.detail = (res.detail + "; " if res.detail else "") + entry.reason
            for mid, (points, comment) in manual_scores.get(entry.student, {}).items():
                if points is not None:
                    res.manual[mid] = points
                if comment:
                    res.comments[mid] = comment
            info = ros.rows.get(entry.student) if ros else None
            if info:
                res.info = {k: info[k] for k in ("name", "email", "lms_id")}
            if due is not None:
                res.late_days = course.days_late(entry.mtime, due, info["extension_days"] if info else 0.0)
                res.penalty = policy.penalty(res.late_days)
            with lock:
                bar.update(1)
            return res

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, entries))
        bar.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    has_roster, has_deadline = ros is not None, due is not None
    if only_students or only is not None:
        # what this run was not told (roster, deadline, hand grades) is kept from the previous gradebook
        columns = _previous_columns(out / "grades.csv")
        has_roster = has_roster or {"name", "email", "lms_id"} <= columns
        has_deadline = has_deadline or {"days_late", "penalty"} <= columns
        results = _merge_previous(ps, out / "grades.csv", results, only,
                                  keep={"roster": ros is None, "deadline": due is None, "manual": not manual})
    results.sort(key=lambda r: r.student)
    report = [f"{e.path.name}: not a submission ({e.reason})" for e in others]
    report += [f"{r.file}: {r.detail}" for r in results if r.status == "refused"]
    if ros:
        graded = {r.student for r in results}
        report += [f"{sid}: no submission (on the roster: {row['name'] or row['email'] or sid})"
                   for sid, row in sorted(ros.rows.items()) if sid not in graded]
        report += [f"{r.file}: not on the roster" for r in results if r.student not in ros.rows]
    _write(out / "report.txt", "\n".join(report) + ("\n" if report else ""))
    write_grades(ps, results, out / "grades.csv", roster=has_roster, deadline=has_deadline)
    write_feedback(ps, [r for r in results if not r.kept], out / "feedback", html=html)
    write_answers(ps, [r for r in results if not r.kept], out / "answers")
    return results


def _previous_columns(path: Path) -> set:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return set(next(csv.reader(fh), []))
    except OSError:
        return set()


def _merge_previous(ps: ProblemSet, path: Path, results: list, only, keep: dict | None = None) -> list:
    """With ``--only``: the new results merged into the rows of the previous ``grades.csv``.

    ``keep`` says what this run was not given and so takes from a regraded student's previous row:
    ``roster`` (name, email, LMS id), ``deadline`` (days late, penalty), ``manual`` (hand grades)."""
    keep = keep or {}
    if not path.exists():
        return results
    new = {r.student: r for r in results}
    merged = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            sid = row["student"].lstrip("'")
            old = Result(student=sid, status=row.get("status", "ok"), file=row.get("file", "").lstrip("'"))
            old.info = {k: row[k].lstrip("'") for k in ("name", "email", "lms_id") if k in row}
            for c in ps.checks:
                if row.get(c.id) not in (None, ""):
                    old.points[c.id] = float(row[c.id])
                    old.reasons.setdefault(c.id, None)
            for m in ps.manuals:
                if row.get(m.id) not in (None, ""):
                    old.manual[m.id] = float(row[m.id])
            try:
                old.round = int(row.get("round") or 0)
                old.late_days = int(row.get("days_late") or 0)
                old.penalty = float((row.get("penalty") or "0").rstrip("%")) / 100
            except ValueError:
                pass
            if sid in new:
                r = new.pop(sid)
                if only is not None:  # one check regraded: the other columns stay as they were
                    for c in ps.checks:
                        if c.id not in r.points and c.id in old.points:
                            r.points[c.id] = old.points[c.id]
                if keep.get("roster") and not r.info:
                    r.info = old.info
                if keep.get("deadline"):
                    r.late_days, r.penalty = old.late_days, old.penalty
                if keep.get("manual"):
                    r.manual = dict(old.manual, **r.manual)
                merged.append(r)
            else:
                old.kept = True
                merged.append(old)
    return merged + list(new.values())
