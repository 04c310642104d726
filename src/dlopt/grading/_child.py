"""The sandboxed process of the grader (run as a script: ``python -s -P -B _child.py CONFIG``).

It is started by :mod:`dlopt.grading.sandbox`, never imported by the grader. With
``mode == "namespaces"`` it starts as root inside fresh mount, pid and network namespaces (made
by ``unshare``): it builds a new root file system that holds only the Python installation, the
system libraries and the ``dlopt`` package (read-only), an empty ``/tmp`` and home directory,
and a ``/proc`` that shows only this sandbox; it ``chroot``\\s into it, forks, and stays as the
namespace's init (reaping orphans) while the child drops to an unprivileged uid, sets resource
limits and runs the job. With ``mode == "basic"`` it only sets the limits (and drops the uid when
asked) in the temporary directory it was started in.

The job (JSON on stdin) is a list of code cells and a list of instrumented check cells, for one of
three sides: ``reference`` (the source's solution records the expected side of each check),
``student`` with ``serve`` (a submission: its cells run, every process they left behind is
killed, then the process answers the calls of its check driver over ``cfg["channel"]``, see
:mod:`dlopt.grading.channel`; it never receives a check) or ``driver`` (the source's cells, then
each check's student side, with the names the student provides fetched from the student's
process). Results go to the file descriptor
``cfg["result_fd"]`` as JSON lines; nothing else ever leaves the process except its (size-capped)
stdout/stderr and, for the two sides of a submission, the messages of the channel.
"""

from __future__ import annotations

import builtins
import ctypes
import importlib.util
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
HOME = "/home/student"


def _load(name):
    """A module of this folder, loaded by path (the ``dlopt`` package is not imported here)."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(f"_dlopt_{name}", os.path.join(here, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# Namespace mode: a minimal root file system, then chroot
# ----------------------------------------------------------------------------------------------
def _mount(libc, src, dst, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} -> {dst}: {os.strerror(err)}")


def _build_root(cfg):
    libc = ctypes.CDLL(None, use_errno=True)
    os.umask(0o022)
    root = cfg["newroot"]
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmpfs_mb']}m,mode=755")
    for path, where in cfg["binds"]:
        target = root + where
        if path == where and os.path.islink(path) and os.path.dirname(path) == "/":
            os.symlink(os.readlink(path), target)  # e.g. /bin -> usr/bin
            continue
        try:
            if os.path.isdir(path):
                os.makedirs(target, exist_ok=True)
            elif os.path.exists(path):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "w").close()
            else:
                continue
        except OSError:
            if path == where:
                raise
            continue  # a second view of a tree through a symlink: optional
        flags = MS_NOSUID | (0 if path.startswith("/dev/") else MS_NODEV)
        _mount(libc, path, target, None, MS_BIND | MS_REC)
        ro = 0 if path.startswith("/dev/") else MS_RDONLY
        _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | ro | flags)
    for hidden in cfg["hide"]:  # a safety net, should a hidden path lie inside a bound tree
        if os.path.isdir(root + hidden):
            _mount(libc, "tmpfs", root + hidden, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount(libc, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/tmp", exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    os.makedirs(root + HOME, mode=0o700)
    os.chown(root + HOME, cfg["uid"], cfg["gid"])
    os.chroot(root)
    os.chdir(HOME)


def _be_init(child: int) -> None:
    """PID 1 of the sandbox: reap every orphan, leave with the runner's status."""
    for fd in (0, 1, 2, cfg_result_fd[0], *cfg_channel[0]):
        try:
            os.close(fd)
        except OSError:
            pass
    code = 1
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            break
    os._exit(code if code >= 0 else 128 - code)


cfg_result_fd = [None]
cfg_channel: list = [()]
channel: Any = None  # the channel module, loaded by main()


# ----------------------------------------------------------------------------------------------
# Limits and privileges
# ----------------------------------------------------------------------------------------------
def _drop_privileges(cfg):
    uid, gid = cfg.get("uid"), cfg.get("gid")
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise RuntimeError("could not drop root privileges")


def _limit(cfg):
    lim = cfg["limits"]
    pairs = [(resource.RLIMIT_CORE, 0),
             (resource.RLIMIT_CPU, lim["cpu"]),
             (resource.RLIMIT_AS, lim["memory_mb"] * 2**20),
             (resource.RLIMIT_FSIZE, lim["file_mb"] * 2**20),
             (resource.RLIMIT_NOFILE, lim["nofile"])]
    if lim.get("nproc"):
        pairs.append((resource.RLIMIT_NPROC, lim["nproc"]))
    for which, value in pairs:
        resource.setrlimit(which, (value, value))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except OSError:  # pragma: no cover - not Linux
        pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file raises OSError instead


def _block_network():
    """Best effort only (basic mode): student code can undo it; namespaces mode has no network."""
    import socket

    class _NoNetwork(socket.socket):
        def __init__(self, family=-1, *args, **kwargs):
            if family in (-1, socket.AF_INET, socket.AF_INET6):
                raise PermissionError("network access is disabled while grading")
            super().__init__(family, *args, **kwargs)

    socket.socket = _NoNetwork
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(
        PermissionError("network access is disabled while grading"))


# ----------------------------------------------------------------------------------------------
# Processes a notebook leaves behind
# ----------------------------------------------------------------------------------------------
# bound before any student code runs (a cell may replace ``os.kill`` in the shared module)
_kill, _listdir, _waitpid, _sleep, _monotonic = os.kill, os.listdir, os.waitpid, time.sleep, time.monotonic
_getpid, _getppid, _open = os.getpid, os.getppid, open


def _in_own_pid_namespace(cfg) -> bool:
    """True where this process runs in a pid namespace of the sandbox, as the child of its init."""
    return cfg["mode"] in ("namespaces", "bwrap") and _getppid() == 1


def _become_subreaper() -> None:
    """Basic isolation: orphaned descendants are re-parented to this process, not to the system's
    init, so that :func:`_stop_leftovers` still finds them (a process of the student can undo it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:  # pragma: no cover - not Linux
        pass


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, state) of every process this process can see in /proc."""
    table = {}
    for name in _listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with _open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        table[int(name)] = (int(fields[1]), fields[0])
    return table


def _reap() -> None:
    while True:
        try:
            pid, _ = _waitpid(-1, os.WNOHANG)
        except (ChildProcessError, InterruptedError):
            return
        if pid == 0:
            return


def _stop_leftovers(cfg, wait: float = 5.0) -> list[int]:
    """Kill every process the notebook's cells left behind; the pids still alive after ``wait``.

    In a pid namespace of its own (namespaces and bwrap isolation) that is every process of the
    namespace but its init and this one: ``kill(-1, SIGKILL)`` reaches all of them at once (the
    kernel signals the whole namespace under one lock, so a fork bomb cannot outrun it). In basic
    isolation it is this process's descendants (kept as descendants by :func:`_become_subreaper`),
    killed until none is left; a process that escaped the tree is not found (best effort).
    """
    me = _getpid()
    whole = _in_own_pid_namespace(cfg)
    deadline = _monotonic() + wait
    while True:
        table = _processes()
        if whole:
            left = [p for p, (_, state) in table.items() if p not in (1, me) and state not in (b"Z", b"X")]
        else:
            children: dict[int, list[int]] = {}
            for p, (parent, _) in table.items():
                children.setdefault(parent, []).append(p)
            left, todo = [], list(children.get(me, []))
            while todo:
                p = todo.pop()
                todo += children.get(p, [])
                if table[p][1] not in (b"Z", b"X"):
                    left.append(p)
        _reap()
        if not left or _monotonic() > deadline:
            return left
        if whole:
            try:
                _kill(-1, signal.SIGKILL)  # all but init and this process (and its threads)
            except ProcessLookupError:
                pass
        else:
            for p in left:
                try:
                    _kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        _sleep(0.002)
        _reap()


# ----------------------------------------------------------------------------------------------
# Running the job
# ----------------------------------------------------------------------------------------------
class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


class _FakeIPython:
    """What ``get_ipython()`` returns while grading: magics and shell commands do nothing."""

    def __getattr__(self, name):
        return _FakeIPython()

    def __call__(self, *args, **kwargs):
        return None

    def __iter__(self):
        return iter(())


def _describe(exc: BaseException, filename: str | None = None, limit: int = 400) -> str:
    if isinstance(exc, _Timeout):
        text = "TimeoutError: time limit exceeded"
    elif type(exc).__name__ == "RemoteError":  # the student's exception, described in its process
        text = str(exc) or "Exception"
    else:
        try:
            message = str(exc)
        except BaseException:  # noqa: BLE001
            message = "<unprintable>"
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if filename is not None:
        line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename:
                line = frame.lineno
        if line is not None:
            text += f" (line {line})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_job(job, cfg, expect):
    import numpy as np

    out_fd = cfg["result_fd"]
    main_pid = os.getpid()
    real_exit = os._exit

    def emit(record):
        if os.getpid() != main_pid:  # a forked child never reports
            real_exit(0)
        try:
            data = (json.dumps(record, allow_nan=False) + "\n").encode()
        except (TypeError, ValueError, RecursionError) as exc:
            record = {k: v for k, v in record.items() if k != "d"}
            record["e"] = f"the value could not be sent as data ({type(exc).__name__})"
            data = (json.dumps(record) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(out_fd, view):]

    def seed():
        value = job["seed"] + 1_000_003 * (job.get("round") or 0)
        random.seed(value)
        np.random.seed(value % 2**32)
        if job.get("round"):
            np.random.default_rng = round_rng
        if "torch" in sys.modules:
            try:
                sys.modules["torch"].manual_seed(value)
            except Exception:  # noqa: BLE001
                pass

    def run(code, filename, timeout, namespace):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(compile(code, filename, "exec"), namespace)  # noqa: S102
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    side = job["side"]
    cells = job["cells"]
    if job.get("notebook") is not None:
        # parse the submission here, inside the limits, before any of its code runs; this is the
        # first record of the stream (records the student's code writes can only come later)
        submission = _load("submission")
        try:
            parsed, answers = submission.parse_notebook(job.pop("notebook"), job.get("manual_ids", []))
        except submission.InvalidSubmission as exc:
            emit({"t": "invalid", "why": str(exc)})
            return
        emit({"t": "sub", "numbers": [n for n, _ in parsed], "answers": answers})
        cells = [code for _, code in parsed]
        del parsed
    rounds = job.get("round") or 0
    original_rng = np.random.default_rng

    def round_rng(seed=None):  # fresh inputs per grading round: integer seeds mixed with the round
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seed = [int(seed), int(rounds)]
        return original_rng(seed)

    namespace = {"__name__": "__main__", "__builtins__": builtins, "get_ipython": _FakeIPython(),
                 "display": lambda *a, **k: None}
    emit({"t": "start", "side": side})
    if side == "student" and not _in_own_pid_namespace(cfg):
        _become_subreaper()
    seed()
    for i, code in enumerate(cells):
        emit({"t": "at", "i": i})
        try:
            run(code, f"<cell {i}>", job["cell_timeout"], namespace)
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            emit({"t": "cell", "i": i, "error": _describe(exc, f"<cell {i}>")})
        if os.getpid() != main_pid:
            real_exit(0)
    if side == "student":  # a notebook's background processes do not survive into the checks
        _stop_leftovers(cfg)

    chan = None
    if side == "student" and job.get("serve"):
        _serve(job, cfg, namespace, seed)
        emit({"t": "end"})
        return
    if side == "driver":
        chan = channel.Endpoint(cfg["channel"][0], cfg["channel"][1], _driver_serve,
                                max_message=cfg["max_message"])
        chan.by_value = True
        chan.fatal = (_Timeout,)
        _driver[0] = chan
        try:  # the student's process says when its cells have run
            while chan.receive() != {"ready": True}:
                pass
        except channel.Gone:
            emit({"t": "nostudent"})
            return
        chan.deadline = lambda: max(0.01, signal.getitimer(signal.ITIMER_REAL)[0] - DRIVER_MARGIN)

    for position, check in enumerate(job.get("checks", [])):
        k = check.get("index", position)

        def record(site, kind, payload, _k=k):
            if kind == "raises" and side != "reference":
                try:
                    payload()
                    data = {"raised": None}
                except (_Timeout, channel.Gone):
                    raise
                except channel.RemoteError as exc:  # raised by the student's function
                    data = {"raised": exc.name, "mro": exc.mro, "message": exc.message}
                except BaseException as exc:  # noqa: BLE001
                    data = {"raised": type(exc).__name__,
                            "mro": [c.__name__ for c in type(exc).__mro__][:20],
                            "message": _describe(exc)}
            elif kind == "holds" and side == "reference":
                data = {name: expect.to_data(value) for name, value in payload.items()}
            else:
                try:
                    if isinstance(payload, channel.Remote):
                        raise TypeError("a check needs data (numbers, arrays, lists, strings), got "
                                        + object.__getattribute__(payload, "_type"))
                    data = expect.to_data(payload)
                except (TypeError, RecursionError, ValueError) as exc:
                    emit({"t": "rec", "c": _k, "s": site, "e": _describe(exc)})
                    return None
            emit({"t": "rec", "c": _k, "s": site, "d": data})
            return None

        namespace["__dlopt_rec__"] = record
        emit({"t": "at", "c": k})
        seed()
        try:
            if chan is not None:
                chan.forget_handles()
                chan.stuck = False
                code = compile(check["code"], f"<check {k}>", "exec")
                signal.signal(signal.SIGALRM, _on_alarm)
                signal.setitimer(signal.ITIMER_REAL, check["timeout"] + DRIVER_MARGIN)
                try:
                    _fetch(chan, check.get("fetch", []), namespace)
                    exec(code, namespace)  # noqa: S102 - the instructor's check, in the driver
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            else:
                run(check["code"], f"<check {k}>", check["timeout"], namespace)
            emit({"t": "check", "c": k, "ok": True})
        except channel.Gone:  # the student's process ended during this check
            emit({"t": "gone", "c": k})
            return
        except _Timeout:
            if chan is not None and chan.stuck:  # it ignores its time limit: a fresh one runs the rest
                emit({"t": "gone", "c": k, "why": "the process did not answer within the check's time limit"})
                return
            emit({"t": "check", "c": k, "error": "TimeoutError: time limit exceeded"})
        except BaseException as exc:  # noqa: BLE001
            emit({"t": "check", "c": k, "error": _describe(exc, f"<check {k}>")})
    emit({"t": "end"})


DRIVER_MARGIN = 1.0  # the student's process times a call out this much before the driver does
_driver: list = [None]


def _fetch(chan, names, namespace) -> None:
    """The check's names that the student provides, from the student's process (a name it did not
    define is removed, so that the check raises NameError as it would in the student's notebook)."""
    chan.send({"id": 0, "op": "begin"})
    for name in names:
        try:
            namespace[name] = chan.request({"op": "get", "name": name})
        except channel.RemoteError as exc:
            if exc.name != "NameError":
                raise
            namespace.pop(name, None)


def _driver_serve(op: str, message: dict):
    """What the driver does for the student's process: call a function it was given in this
    check, or read a public attribute of an object it was given. Nothing else."""
    chan = _driver[0]
    target = chan.own(message.get("ref"))
    if op == "call":
        if not callable(target):
            raise TypeError("not callable")
        args, kwargs = chan.args_of(message)
        return target(*args, **kwargs)
    if op == "getattr":
        name = message.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise AttributeError("only public attributes can be read")
        value = getattr(target, name)
        if isinstance(value, type(os)):
            raise AttributeError(f"{name} is a module")
        return value
    raise channel.ProtocolError(f"the driver does not answer {op!r}")


def _serve(job, cfg, namespace, seed) -> None:
    """The student's side after its cells: run what the driver asks, send back the values."""
    default = float(job.get("check_timeout") or 20.0)
    depth = [0]

    def timed(fn, message):
        if depth[0]:  # a call made while a call of the driver runs: under that call's time limit
            return fn()
        t = message.get("t")
        t = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= 3600 else default
        depth[0] += 1
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, t)
        try:
            return fn()
        except _Timeout:  # the outermost call ends here, with an error for the driver
            raise TimeoutError("time limit exceeded") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            depth[0] -= 1

    def serve(op, message):
        if op == "begin":  # a new check: the seeds it starts from
            seed()
            return None
        if op == "get":
            name = message.get("name")
            if not isinstance(name, str) or name not in namespace:
                raise NameError(f"name {name!r} is not defined")
            return namespace[name]
        target = chan.own(message.get("ref"))
        if op == "call":
            args, kwargs = chan.args_of(message)
            return timed(lambda: target(*args, **kwargs), message)
        if op == "getattr":
            return timed(lambda: getattr(target, str(message.get("name"))), message)
        if op == "getitem":
            key = channel.decode(message.get("key"), chan)
            return timed(lambda: target[key], message)
        if op == "len":
            return timed(lambda: len(target), message)
        if op == "list":
            return timed(lambda: list(target), message)
        raise channel.ProtocolError(f"unknown request {op!r}")

    chan = channel.Endpoint(cfg["channel"][0], cfg["channel"][1], serve, max_message=cfg["max_message"])
    chan.accept_objects = True
    chan.fatal = (_Timeout,)
    try:  # a new line first: a line a killed leftover process left half written ends before "ready"
        chan.send(b"\n")
        chan.send({"ready": True})
        while True:
            message = chan.receive()
            if message is None:
                continue
            if type(message.get("id")) is int and isinstance(message.get("op"), str):
                chan.answer(message)
    except channel.Gone:
        pass


def _join_cgroups(cfg) -> None:
    """Move this process (and so everything it starts) into the submission's cgroups."""
    for procs in cfg.get("cgroups") or []:
        with open(procs, "w") as fh:
            fh.write("0")


def _read_job(cfg) -> dict:
    """A JSON line, then the submitted notebook's bytes (``notebook_bytes`` of them), from stdin."""
    stream = sys.stdin.buffer
    header = stream.readline(cfg["max_job_bytes"] + 1)
    job = json.loads(header)
    size = job.get("notebook_bytes")
    if size is not None:
        job["notebook"] = stream.read(int(size))
    sys.stdin.close()
    return job


def main() -> None:
    cfg = json.loads(sys.argv[1])
    cfg_result_fd[0] = cfg["result_fd"]
    cfg_channel[0] = tuple(cfg.get("channel") or ())
    _join_cgroups(cfg)
    if cfg.get("pythonpath"):  # the grader's own dlopt, first (it is bound read-only in the sandbox)
        sys.path.insert(0, cfg["pythonpath"])
    expect = _load("expect")
    global channel
    channel = _load("channel")
    import numpy  # noqa: F401 - loaded before the root file system narrows

    if cfg["mode"] == "namespaces":
        _build_root(cfg)
        child = os.fork()
        if child:
            _be_init(child)
    _drop_privileges(cfg)
    _limit(cfg)
    os.environ.clear()
    os.environ.update(cfg["env"])
    if cfg["mode"] == "basic":
        _block_network()
    job = _read_job(cfg)
    _run_job(job, cfg, expect)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
