"""Start a sandboxed Python process for one job and collect what it returns.

Two isolation levels (``isolation=``):

``"namespaces"`` (chosen automatically when the grader runs as root and the set-up works)
    ``unshare --net --pid --ipc --uts --fork --mount`` gives the process no network, its own
    process tree (it sees only itself in ``/proc``; when it ends every process it started is
    killed), its own IPC objects and its own mounts. Inside, :mod:`dlopt.grading._child` builds a new root file system holding only
    the Python installation, the system directories (``/usr``, ``/lib*``, ``/etc``, ``/bin``),
    the ``dlopt`` package (all read-only) and an empty home and ``/tmp``, ``chroot``\\s into it
    and drops to an unprivileged uid of its own (one per parallel slot), with ``no_new_privs``.
    The source notebook, the submissions, the results and the grader's temporary files are not
    in that file system at all, whatever their modes.
``"basic"`` (any other user, e.g. an instructor's laptop)
    A fresh interpreter in a private temporary directory (mode 0700), the same resource limits,
    its own session for the kill, a best-effort socket block. Lost: the network block can be
    undone by student code; the student process runs as the grader's user, so it can read what
    that user can read (keep the source notebooks and other submissions out of its reach, e.g.
    grade on a copy) and could signal the grader; ``RLIMIT_NPROC`` counts all of that user's
    processes (the limit is set to the current count plus ``nproc``). A root grader without
    working namespaces (e.g. a container without ``CAP_SYS_ADMIN``) also uses this level but
    drops the student process to an unprivileged uid after the interpreter has started; the
    Python installation must then be readable by that uid.

In both, the limits are ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
``RLIMIT_NPROC``, no core files, a wall-clock timeout that kills the whole process group, and
caps on the bytes read back (stdout+stderr are read and discarded beyond ``output_kb``; the JSON
results beyond ``results_mb``).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["Limits", "RunResult", "run_job", "default_isolation", "HOME"]

CHILD = str(Path(__file__).with_name("_child.py"))
HOME = "/home/student"
_SYSTEM_DIRS = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc",
                "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full"]


@dataclass
class Limits:
    """Resource limits of one sandboxed process."""

    timeout: float = 60.0        # wall clock, whole process (s)
    cell_timeout: float = 20.0   # each notebook cell (s)
    check_timeout: float = 20.0  # each check, unless the check's metadata says otherwise (s)
    memory_mb: int = 2048        # RLIMIT_AS
    file_mb: int = 16            # RLIMIT_FSIZE
    nproc: int = 128             # RLIMIT_NPROC (processes and threads)
    nofile: int = 256            # RLIMIT_NOFILE
    output_kb: int = 16          # stdout+stderr kept (the rest is read and discarded)
    results_mb: int = 32         # JSON results read back
    tmpfs_mb: int = 64           # size of the sandbox's file system (namespaces mode)
    max_job_mb: int = 32

    def cpu(self) -> int:
        return int(self.timeout) + 2


@dataclass
class RunResult:
    records: list = field(default_factory=list)
    output: str = ""
    output_bytes: int = 0
    returncode: int | None = None
    timed_out: bool = False
    results_truncated: bool = False
    elapsed: float = 0.0

    def ended_normally(self) -> bool:
        return any(r.get("t") == "end" for r in self.records) and not self.timed_out


@lru_cache(maxsize=1)
def _namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--mount", "true"],
                              capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return False
    # the full set-up (mounts, chroot, dropping the uid) must work too, else fall back to basic
    with tempfile.TemporaryDirectory(prefix="dlopt-probe-") as tmp:
        job = {"side": "student", "seed": 0, "cells": ["import numpy"], "checks": []}
        run = run_job(job, limits=Limits(timeout=30), workdir=tmp, isolation="namespaces")
    return run.ended_normally() and not any(r.get("t") == "cell" for r in run.records)


def default_isolation() -> str:
    """``"namespaces"`` when running as root with working ``unshare``, else ``"basic"``."""
    return "namespaces" if _namespaces_work() else "basic"


@lru_cache(maxsize=1)
def uid_base() -> int:
    """Unprivileged uids for the sandboxes of this grader process (one per parallel slot)."""
    return 200_000 + (os.getpid() % 20_000) * 64


def _is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _binds(hide: list[str]) -> list[list[str]]:
    """``[source, target]`` pairs to bind read-only into the sandbox's root file system."""
    import sysconfig

    import dlopt

    python = [sys.base_prefix, sys.prefix, os.path.dirname(sys.executable),
              str(Path(dlopt.__file__).parent.parent)]
    python += [sysconfig.get_path(k) or "" for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    # only installed-package folders from sys.path: the grader's own sys.path may hold a project
    # or tests folder (pytest, PYTHONPATH=.) that must not be visible
    python += [p for p in sys.path if p and os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
    pairs = [[p, p] for p in _SYSTEM_DIRS]
    for p in (p for p in python if p):
        real = os.path.realpath(p)
        pairs.append([real, real])
        if os.path.abspath(p) != real:  # reached through a symlink: the same tree at that path too
            pairs.append([real, os.path.abspath(p)])
    keep = []
    for src, dst in pairs:
        if not os.path.exists(src) and not os.path.islink(src):
            continue
        if any(_is_within(h, src) or _is_within(h, dst) for h in hide):  # would expose a hidden path
            continue
        if [src, dst] not in keep:
            keep.append([src, dst])
    def covered(src, dst):  # already visible through a bind of an enclosing folder
        return any(q != dst and _is_within(dst, q) and not (r == q and os.path.islink(q))
                   and src == r.rstrip("/") + dst[len(q.rstrip("/")):] for r, q in keep)

    return [[src, dst] for src, dst in keep if not covered(src, dst)]


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += 1
                except OSError:
                    pass
    except OSError:
        return 0
    return count


def _env(home: str) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.matplotlib", "TQDM_DISABLE": "1"}


def run_job(job: dict, *, limits: Limits, workdir: str | Path, hide: list[str] = (),
            isolation: str | None = None, slot: int = 0, drop_privileges: bool = True) -> RunResult:
    """Run one job (cells + instrumented checks) in a fresh sandboxed interpreter.

    ``workdir`` is a private directory of the grader (mode 0700) used for this run's scratch
    files; ``hide`` lists paths that must never be visible (they are never bound into the
    sandbox, and covered by an empty file system should they lie inside a bound directory).
    """
    isolation = isolation or default_isolation()
    workdir = Path(workdir)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    is_root = os.geteuid() == 0
    uid = uid_base() + slot if (is_root and drop_privileges) else None
    hide = [os.path.realpath(h) for h in hide] + [os.path.realpath(workdir)]
    cfg = {"mode": isolation, "uid": uid, "gid": uid, "result_fd": None,
           "max_job_bytes": limits.max_job_mb * 2**20, "tmpfs_mb": limits.tmpfs_mb,
           "limits": {"cpu": limits.cpu(), "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
                      "nofile": limits.nofile, "nproc": limits.nproc}}
    if isolation == "namespaces":
        home = HOME
        cfg.update(newroot=str(run_dir), binds=_binds(hide), hide=hide)
        prefix = ["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount", "--"]
        cwd = str(run_dir)
    elif isolation == "basic":
        home = str(run_dir)
        if uid is not None:
            os.chown(run_dir, uid, uid)
        else:
            cfg["limits"]["nproc"] = _user_process_count() + limits.nproc
        prefix, cwd = [], str(run_dir)
    else:
        raise ValueError(f"unknown isolation {isolation!r}")
    cfg["env"] = _env(home)
    job = dict(job, cell_timeout=limits.cell_timeout)
    payload = json.dumps(job).encode()

    r_fd, w_fd = os.pipe()
    cfg["result_fd"] = w_fd
    cmd = prefix + [sys.executable, "-s", "-P", "-B", CHILD, json.dumps(cfg)]
    start = time.monotonic()
    result = RunResult()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, pass_fds=(w_fd,), cwd=cwd,
                                env=_env(home), start_new_session=True)
    finally:
        os.close(w_fd)

    def feed():
        try:
            proc.stdin.write(payload)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out_cap, res_cap = limits.output_kb * 1024, limits.results_mb * 2**20
    output, results = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    out_fd = proc.stdout.fileno()
    os.set_blocking(out_fd, False)
    os.set_blocking(r_fd, False)
    sel.register(out_fd, selectors.EVENT_READ, "out")
    sel.register(r_fd, selectors.EVENT_READ, "res")
    deadline = start + limits.timeout
    open_fds = 2
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                result.timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                try:
                    chunk = os.read(key.fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    open_fds -= 1
                    continue
                if key.data == "out":
                    result.output_bytes += len(chunk)
                    output += chunk
                    if len(output) > 2 * out_cap:
                        del output[: len(output) - out_cap]
                elif len(results) < res_cap:
                    results += chunk[: res_cap - len(results)]
                    if len(results) >= res_cap:
                        result.results_truncated = True
        if not result.timed_out:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                result.timed_out = True
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        sel.close()
        os.close(r_fd)
        proc.stdout.close()
        writer.join(timeout=1)
        shutil.rmtree(run_dir, ignore_errors=True)
    result.elapsed = time.monotonic() - start
    result.returncode = proc.returncode
    result.output = bytes(output[-out_cap:]).decode("utf-8", errors="replace")
    result.records = parse_records(bytes(results))
    return result


def parse_records(raw: bytes) -> list[dict]:
    """JSON lines -> list of dicts; anything malformed is dropped."""
    records = []
    for line in raw.split(b"\n")[:-1]:  # the last piece has no newline: incomplete
        try:
            rec = json.loads(line, parse_constant=float)
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("t"), str):
            records.append(rec)
    return records
