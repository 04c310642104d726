"""Start a sandboxed Python process for one job and collect what it returns.

Three isolation levels (``isolation=``; :func:`describe_isolation` says which is in force):

``"namespaces"`` (chosen automatically when the grader runs as root and the set-up works)
    ``unshare --net --pid --ipc --uts --fork --mount`` gives the process no network, its own
    process tree (it sees only itself in ``/proc``; when it ends every process it started is
    killed), its own IPC objects and its own mounts. Inside, :mod:`dlopt.grading._child` builds a new root
    file system holding only
    the Python installation, the system directories (``/usr``, ``/lib*``, ``/etc``, ``/bin``),
    the ``dlopt`` package (all read-only) and an empty home and ``/tmp``, ``chroot``\\s into it
    and drops to an unprivileged uid of its own (one per parallel slot), with ``no_new_privs``.
    The source notebook, the submissions, the results and the grader's temporary files are not
    in that file system at all, whatever their modes.
``"bwrap"`` (chosen when namespaces are not available and bubblewrap works: an unprivileged
    instructor with user namespaces)
    ``bwrap --unshare-all`` with the same read-only binds, an empty ``/tmp`` and home, its own
    ``/proc``, no network; as root also an unprivileged uid per slot.
``"basic"`` (anything else: unsafe for untrusted code without root; the CLI refuses it then)
    A fresh interpreter in a private temporary directory (mode 0700), the same resource limits,
    its own session for the kill, a best-effort socket block. Lost: the network block can be
    undone by student code; the student process runs as the grader's user, so it can read what
    that user can read (keep the source notebooks and other submissions out of its reach, e.g.
    grade on a copy) and could signal the grader; ``RLIMIT_NPROC`` counts all of that user's
    processes (the limit is set to the current count plus ``nproc``). A root grader without
    working namespaces (e.g. a container without ``CAP_SYS_ADMIN``) also uses this level but
    drops the student process to an unprivileged uid after the interpreter has started; the
    Python installation must then be readable by that uid.

As root, every run also gets cgroups of its own (:class:`Cgroup`: memory of the whole submission,
anonymous and shared pages alike, its number of processes, an equal CPU weight), and whatever is
left in them when the run ends is killed. In all modes the limits are ``RLIMIT_CPU``, ``RLIMIT_AS``,
``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
``RLIMIT_NPROC``, no core files, a wall-clock timeout that kills the whole process group, and
caps on the bytes read back (stdout+stderr are read and discarded beyond ``output_kb``; the JSON
results beyond ``results_mb``).

A student's process kills what its notebook's cells left running before it answers the first
check (:func:`dlopt.grading._child._stop_leftovers`): in a pid namespace (``namespaces``,
``bwrap``) every other process of the namespace; in ``basic`` isolation its descendants, kept in
its tree by ``PR_SET_CHILD_SUBREAPER`` (best effort: student code can undo that).
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

__all__ = ["Limits", "RunResult", "run_job", "default_isolation", "describe_isolation", "cgroup_base",
           "set_parallel_runs", "HOME",
           "parse_records", "safe_text"]

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
    memory_exceeded: bool = False
    stopped: bool = False   # ended by the caller's ``stop`` (the check driver was done with it)
    grader_error: str = ""  # the check driver could not run the source's own cells

    def ended_normally(self) -> bool:
        return any(r.get("t") == "end" for r in self.records) and not self.timed_out


@lru_cache(maxsize=1)
def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="dlopt-probe-") as tmp:
        job = {"side": "student", "seed": 0, "cells": ["import numpy"], "checks": []}
        try:
            run = run_job(job, limits=Limits(timeout=30), workdir=tmp, isolation="bwrap")
        except OSError:
            return False
    return run.ended_normally() and not any(r.get("t") == "cell" for r in run.records)


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
    """``"namespaces"`` as root with working ``unshare``; else ``"bwrap"`` where bubblewrap works
    (an unprivileged instructor with user namespaces); else ``"basic"``."""
    if _namespaces_work():
        return "namespaces"
    return "bwrap" if _bwrap_works() else "basic"


def isolation_is_safe(isolation: str) -> bool:
    """Whether untrusted code may run: everything but ``basic`` without root (no uid of its own)."""
    return isolation != "basic" or os.geteuid() == 0


# ----------------------------------------------------------------------------------------------
# cgroups: limits on a submission as a whole (every process it starts), not per process
# ----------------------------------------------------------------------------------------------
_CGROUP_FS = "/sys/fs/cgroup"
_CONTROLLERS = ("memory", "pids", "cpu")
_cgroup_lock = threading.Lock()
_cgroup_counter = [0]


def _own_cgroups() -> dict:
    """``{controller: path of this process's cgroup}`` from ``/proc/self/cgroup`` (v1 and v2)."""
    own: dict = {}
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for c in parts[1].split(",") if parts[1] else ["unified"]:
            own[c] = parts[2]
    return own


@lru_cache(maxsize=1)
def cgroup_base() -> dict | None:
    """Folders under which this grader makes one cgroup per run, or ``None`` if it cannot.

    cgroup v1 (a hierarchy per controller) or v2 (one unified hierarchy, with the ``memory``,
    ``pids`` and ``cpu`` controllers enabled for our subtree). Made below the grader's own cgroup,
    so that limits set above it still apply; removed when the grader exits.
    """
    import atexit

    own = _own_cgroups()
    made = {}
    try:
        if os.path.exists(f"{_CGROUP_FS}/cgroup.controllers"):  # v2
            base = os.path.normpath(f"{_CGROUP_FS}/{own.get('unified', '/')}/dlopt-grade-{os.getpid()}")
            os.makedirs(base, exist_ok=True)
            made = {"v2": base}
            with open(f"{base}/cgroup.subtree_control", "w") as fh:
                fh.write("+memory +pids +cpu")
        else:
            for c in _CONTROLLERS:
                mount = next((f"{_CGROUP_FS}/{m}" for m in (c, "cpu,cpuacct" if c == "cpu" else c)
                              if os.path.isdir(f"{_CGROUP_FS}/{m}")), None)
                if mount is None or c not in own:
                    raise OSError(f"no cgroup v1 {c} controller")
                base = os.path.normpath(f"{mount}/{own[c]}/dlopt-grade-{os.getpid()}")
                os.makedirs(base, exist_ok=True)
                made[c] = base
    except OSError:
        for base in made.values():
            try:
                os.rmdir(base)
            except OSError:
                pass
        return None
    def remove_all() -> None:
        for b in made.values():
            _rmdir(b)

    atexit.register(remove_all)
    return made


def set_parallel_runs(jobs: int) -> None:
    """Give the grader's cgroup the CPU weight of ``jobs`` ordinary processes: the submissions
    graded at the same time share it equally, and the batch as a whole is not slowed down
    against the machine's other processes (as one cgroup of default weight would be)."""
    base = cgroup_base()
    if not base:
        return
    jobs = max(1, int(jobs))
    try:
        if "v2" in base:
            _cg_write(f"{base['v2']}/cpu.weight", min(10000, 100 * jobs))
        elif "cpu" in base:
            _cg_write(f"{base['cpu']}/cpu.shares", 1024 * jobs)
    except OSError:
        pass


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _cg_write(path: str, value) -> None:
    with open(path, "w") as fh:
        fh.write(str(value))


class Cgroup:
    """One run's cgroups: memory (anonymous, shared and file pages; swap too where accounted),
    number of processes, and an equal CPU weight for every submission graded at the same time."""

    def __init__(self, limits: "Limits"):
        base = cgroup_base()
        if base is None:
            raise OSError("cgroups are not available")
        with _cgroup_lock:
            _cgroup_counter[0] += 1
            name = f"run-{_cgroup_counter[0]}"
        self.dirs = {c: f"{b}/{name}" for c, b in base.items()}
        mem = limits.memory_mb * 2**20
        try:
            for c, d in self.dirs.items():
                os.mkdir(d)
                if c == "v2":
                    _cg_write(f"{d}/memory.max", mem)
                    if os.path.exists(f"{d}/memory.swap.max"):
                        _cg_write(f"{d}/memory.swap.max", 0)
                    _cg_write(f"{d}/pids.max", limits.nproc)
                    _cg_write(f"{d}/cpu.weight", 100)
                elif c == "memory":
                    _cg_write(f"{d}/memory.limit_in_bytes", mem)
                    if os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
                        _cg_write(f"{d}/memory.memsw.limit_in_bytes", mem)
                elif c == "pids":
                    _cg_write(f"{d}/pids.max", limits.nproc)
                elif c == "cpu":
                    _cg_write(f"{d}/cpu.shares", 1024)
        except OSError:
            self.remove()
            raise

    def procs_files(self) -> list:
        return [f"{d}/cgroup.procs" for d in self.dirs.values()]

    def memory_exceeded(self) -> bool:
        for c, d in self.dirs.items():
            try:
                if c == "memory":
                    control = dict(line.split() for line in open(f"{d}/memory.oom_control").read().splitlines())
                    return (int(control.get("oom_kill", 0)) > 0 or int(open(f"{d}/memory.failcnt").read()) > 0
                            or int(open(f"{d}/memory.max_usage_in_bytes").read())
                            >= int(open(f"{d}/memory.limit_in_bytes").read()))
                if c == "v2":
                    events = dict(line.split() for line in open(f"{d}/memory.events").read().splitlines())
                    return int(events.get("max", 0)) > 0 or int(events.get("oom_kill", 0)) > 0
            except (OSError, ValueError):
                return False
        return False

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroup (whatever session or process group it made)."""
        d = self.dirs.get("pids") or self.dirs.get("v2") or next(iter(self.dirs.values()))
        for _ in range(100):
            try:
                pids = [int(p) for p in open(f"{d}/cgroup.procs").read().split()]
            except (OSError, ValueError):
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def describe_isolation(isolation: str | None = None) -> str:
    """One line: which isolation is in force, and whether the whole-submission limits are."""
    isolation = isolation or default_isolation()
    what = {"namespaces": "namespaces (own root file system, network, processes; an unprivileged uid)",
            "bwrap": "bubblewrap (user namespaces: own file system view, network, processes)",
            "basic": ("basic, as root: an unprivileged uid and resource limits, no namespaces"
                      if os.geteuid() == 0 else
                      "basic, UNSAFE for untrusted code: runs as your user (resource limits only)")}[isolation]
    cg = cgroup_base()
    version = "v2" if cg and "v2" in cg else "v1"
    return what + (f"; cgroup {version} limits per submission (memory, processes, CPU weight)" if cg else
                   "; WARNING: no cgroups, so memory and process limits are per process only "
                   "and a submission's CPU use is not fair to its neighbours")


@lru_cache(maxsize=1)
def uid_base() -> int:
    """Unprivileged uids for the sandboxes of this grader process (one per parallel slot)."""
    return 200_000 + (os.getpid() % 20_000) * 64


def _is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _binds(hide: list[str] | tuple) -> list[list[str]]:
    """``[source, target]`` pairs to bind read-only into the sandbox's root file system."""
    import sysconfig

    # the dlopt package the grader itself imported (a source checkout, a worktree, an installed
    # copy): its folder alone, so that the sandbox runs the grader's own code and sees nothing next to it
    python = [sys.base_prefix, sys.prefix, os.path.dirname(sys.executable), package_dir()]
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


def package_dir() -> str:
    """The folder of the ``dlopt`` package this grader runs (bound read-only into every sandbox,
    and first on the sandbox's ``sys.path`` through its parent)."""
    import dlopt

    return str(Path(dlopt.__file__).resolve().parent)


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


def run_job(job: dict, *, limits: Limits, workdir: str | Path, hide: list[str] | tuple = (),
            isolation: str | None = None, slot: int = 0, drop_privileges: bool = True,
            notebook: bytes | None = None, timeout: float | None = None,
            channel: tuple[int, int] | None = None, stop: threading.Event | None = None) -> RunResult:
    """Run one job (cells + instrumented checks) in a fresh sandboxed interpreter.

    ``workdir`` is a private directory of the grader (mode 0700) used for this run's scratch
    files; ``notebook`` the raw bytes of a submitted notebook, parsed inside the sandbox (the
    job's ``cells`` are then ignored); ``timeout`` the wall-clock limit of this run (default
    ``limits.timeout``); ``hide`` lists paths that must never be visible (they are never bound into the
    sandbox, and covered by an empty file system should they lie inside a bound directory);
    ``channel`` the (read, write) file descriptors of the call channel between a student's process and
    its check driver (:mod:`dlopt.grading.channel`), handed to the process and closed here; ``stop``
    an event after which the process has half a second to end before it is killed.
    """
    isolation = isolation or default_isolation()
    workdir = Path(workdir)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    is_root = os.geteuid() == 0
    uid = uid_base() + slot if (is_root and drop_privileges) else None
    hide = [os.path.realpath(h) for h in hide] + [os.path.realpath(workdir)]
    cgroup = None
    if is_root and cgroup_base() is not None:
        try:
            cgroup = Cgroup(limits)
        except OSError:
            cgroup = None
    cfg: dict = {"mode": isolation, "uid": uid, "gid": uid, "result_fd": None,
           "cgroups": cgroup.procs_files() if cgroup else [],
           "pythonpath": os.path.dirname(package_dir()),
           "max_job_bytes": limits.max_job_mb * 2**20, "tmpfs_mb": limits.tmpfs_mb,
           "channel": list(channel) if channel else None, "max_message": limits.results_mb * 2**20,
           "limits": {"cpu": limits.cpu(), "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
                      "nofile": limits.nofile, "nproc": limits.nproc}}
    if isolation == "namespaces":
        home = HOME
        cfg.update(newroot=str(run_dir), binds=_binds(hide), hide=hide)
        prefix = ["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount", "--"]
        cwd = str(run_dir)
    elif isolation == "bwrap":
        # bubblewrap: user namespaces, so it works for an unprivileged instructor too
        home = HOME
        cfg["uid"] = cfg["gid"] = None
        prefix = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                  "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", HOME, "--chdir", HOME]
        if is_root:  # an unprivileged uid inside as well
            prefix[1:1] = ["--unshare-user", "--uid", str(uid or 65534), "--gid", str(uid or 65534)]
        for src, dst in _binds(hide):
            if dst.startswith("/dev/"):
                continue
            if src == dst and os.path.islink(src) and os.path.dirname(src) == "/":
                prefix += ["--symlink", os.readlink(src), dst]
            else:
                prefix += ["--ro-bind", src, dst]
        for h in hide:  # a safety net, should a hidden path lie inside a bound tree
            if any(_is_within(h, dst) for _, dst in _binds(hide)) and os.path.isdir(h):
                prefix += ["--tmpfs", h]
        prefix.append("--")
        cfg["limits"]["nproc"] = None if is_root else _user_process_count() + limits.nproc
        if cgroup is not None:  # joined by a shell before bwrap starts: /sys is not in the sandbox
            files = cgroup.procs_files()
            script = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(files)))
            prefix = ["sh", "-c", f'{script} && shift {len(files)} && exec "$@"', "sh", *files] + prefix
            cfg["cgroups"] = []
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
    if notebook is not None:
        job["notebook_bytes"] = len(notebook)
    payload = json.dumps(job).encode() + b"\n" + (notebook or b"")

    r_fd, w_fd = os.pipe()
    cfg["result_fd"] = w_fd
    cmd = prefix + [sys.executable, "-s", "-P", "-B", CHILD, json.dumps(cfg)]
    start = time.monotonic()
    result = RunResult()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, pass_fds=(w_fd, *(channel or ())), cwd=cwd,
                                env=_env(home), start_new_session=True)
    finally:
        os.close(w_fd)
        for fd in channel or ():
            os.close(fd)

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
    assert proc.stdout is not None and proc.stdin is not None
    stdout = proc.stdout
    out_fd = stdout.fileno()
    os.set_blocking(out_fd, False)
    os.set_blocking(r_fd, False)
    sel.register(out_fd, selectors.EVENT_READ, "out")
    sel.register(r_fd, selectors.EVENT_READ, "res")
    deadline = start + (limits.timeout if timeout is None else max(0.0, timeout))
    open_fds = 2
    stop_at = None
    try:
        while open_fds:
            now = time.monotonic()
            if stop is not None and stop_at is None and stop.is_set():
                stop_at = now + 0.5
            if stop_at is not None and now >= stop_at:
                result.stopped = True
                break
            left = deadline - now
            if left <= 0:
                result.timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0 if stop is None else 0.1)):
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
        if not result.timed_out and not result.stopped:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                result.timed_out = True
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if cgroup is not None:
            cgroup.kill_all()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        sel.close()
        os.close(r_fd)
        stdout.close()
        writer.join(timeout=1)
        shutil.rmtree(run_dir, ignore_errors=True)
        if cgroup is not None:
            result.memory_exceeded = cgroup.memory_exceeded()
            cgroup.remove()
    result.elapsed = time.monotonic() - start
    result.returncode = proc.returncode
    result.output = bytes(output[-out_cap:]).decode("utf-8", errors="replace")
    result.records = parse_records(bytes(results))
    return result


MAX_RECORDS = 200_000


def safe_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (pairs of surrogates joined)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _clean(value, depth: int = 0):
    """Untrusted data with every string made encodable (lone surrogates become U+FFFD)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return safe_text(value)
    if depth > 200:
        return None
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_clean(k, depth + 1): _clean(v, depth + 1) for k, v in value.items()}
    return value


def parse_records(raw: bytes, max_records: int = MAX_RECORDS) -> list[dict]:
    """JSON lines -> list of dicts, at most ``max_records``; anything malformed is dropped.

    Everything read here comes from a process that ran student code: it is untrusted data,
    bounded in size by the caller and in number here; strings are made safe to write anywhere.
    """
    records: list = []
    for line in raw.split(b"\n")[:-1]:  # the last piece has no newline: incomplete
        if len(records) >= max_records:
            break
        try:
            rec = json.loads(line, parse_constant=float)
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("t"), str):
            records.append(_clean(rec))
    return records
