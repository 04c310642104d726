"""The security model of the sandbox, one test per promise (see dlopt.grading.sandbox).

The namespaces tests run where the grader runs as root with a working ``unshare`` (as in CI), the
bubblewrap test where ``bwrap`` works; the basic-mode tests run everywhere.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from dlopt.grading.sandbox import Limits, default_isolation, run_job

LIMITS = Limits(timeout=15, cell_timeout=5, check_timeout=5, memory_mb=1024, nproc=64, file_mb=8,
                nofile=128, output_kb=8)
NAMESPACES = default_isolation() == "namespaces"
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="needs root and unshare")


def probe(tmp_path, code: str, *, cells=(), isolation=None, limits=LIMITS, **kw):
    """Run ``cells`` then record the value of the expression ``code``; return (value, RunResult)."""
    job = {"side": "student", "seed": 0, "cells": list(cells),
           "checks": [{"code": f"__dlopt_rec__(0, 'equal', ({code}))", "timeout": 5}]}
    work = tmp_path / "work"
    work.mkdir(exist_ok=True, mode=0o700)
    run = run_job(job, limits=limits, workdir=work, isolation=isolation, **kw)
    data = [r["d"] for r in run.records if r["t"] == "rec" and "d" in r]
    return (data[0] if data else None), run


LIMITS_CODE = """
import os, resource
LIMITS = {name: list(resource.getrlimit(getattr(resource, name))) for name in
          ['RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC', 'RLIMIT_CORE']}
STATUS = open('/proc/self/status').read()
"""


@needs_namespaces
def test_runs_unprivileged_with_limits(tmp_path):
    value, run = probe(tmp_path, "[os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), LIMITS, "
                                 "'NoNewPrivs:\\t1' in STATUS, os.getcwd(), os.listdir('.')]",
                       cells=[LIMITS_CODE])
    uid, euid, gid, groups, limits, no_new_privs, cwd, listing = value
    assert uid != 0 and euid != 0 and gid != 0 and groups == []
    assert limits == {"RLIMIT_CPU": [LIMITS.cpu()] * 2, "RLIMIT_AS": [1024 * 2**20] * 2,
                      "RLIMIT_FSIZE": [8 * 2**20] * 2, "RLIMIT_NOFILE": [128] * 2,
                      "RLIMIT_NPROC": [64] * 2, "RLIMIT_CORE": [0, 0]}
    assert no_new_privs and cwd == "/home/student" and listing == []


@needs_namespaces
def test_no_network(tmp_path):
    value, _ = probe(tmp_path, "[socket.if_nameindex(), ERR]", cells=["""
import socket
try:
    socket.create_connection(('1.1.1.1', 80), timeout=3)
    ERR = None
except OSError as exc:
    ERR = type(exc).__name__
"""])
    interfaces, err = value
    assert [name for _, name in interfaces] == ["lo"] and err is not None


@needs_namespaces
def test_cannot_read_what_it_was_not_given(tmp_path):
    """Hidden folders, the grader's own sys.path folders, other processes: all invisible."""
    secret_dir = tmp_path / "instructor"
    secret_dir.mkdir()
    (secret_dir / "source.ipynb").write_text("SECRET")
    os.chmod(secret_dir / "source.ipynb", 0o644)
    on_path = tmp_path / "project"
    on_path.mkdir()
    (on_path / "answers.py").write_text("SECRET = 1")
    sys.path.insert(0, str(on_path))
    try:
        value, _ = probe(tmp_path, "READ", hide=[str(secret_dir)], cells=[f"""
import os
READ = []
for p in [{str(secret_dir / 'source.ipynb')!r}, {str(on_path / 'answers.py')!r},
          '/proc/1/root' + {str(secret_dir / 'source.ipynb')!r}, '/proc/{os.getpid()}/cmdline',
          '/proc/{os.getpid()}/environ', {__file__!r}]:
    try:
        open(p).read()
        READ.append(p)
    except OSError:
        pass
READ += [p for p in os.listdir('/proc') if p.isdigit() and p not in ('1', str(os.getpid()))]
for name in os.listdir('/tmp'):
    READ.append(name)
    for root, dirs, files in os.walk('/tmp/' + name):  # what a parent of a bind exposes
        READ += [os.path.join(root, d) for d in dirs if d in ('exercises', 'tests', 'results')]
        dirs[:] = [d for d in dirs if d not in ('site-packages', 'lib', 'include', 'bin', 'share')]
"""])
    finally:
        sys.path.remove(str(on_path))
    # A checkout under /tmp (CI clones anywhere) shows up as the parent of the read-only binds of
    # its .venv and src/: allowed, as long as nothing else of the project is inside.
    import dlopt

    bound = [os.path.realpath(sys.prefix), os.path.dirname(os.path.dirname(os.path.realpath(dlopt.__file__)))]
    parents = {b.split("/")[2] for b in bound if b.startswith("/tmp/")}
    assert [v for v in value if v not in parents] == []


@needs_namespaces
def test_timeout_kills_the_whole_process_tree(tmp_path):
    marker = f"{time.time_ns() % 10**9}"
    start = time.monotonic()
    _, run = probe(tmp_path, "1", limits=Limits(**{**LIMITS.__dict__, "timeout": 3}), cells=[f"""
import subprocess, time
subprocess.Popen(['sleep', '{marker}'], start_new_session=True)
subprocess.Popen(['sh', '-c', 'trap "" TERM HUP; exec sleep {int(marker) + 1}'])
while True:
    try:
        time.sleep(100)
    except BaseException:
        pass
"""])
    assert run.timed_out and time.monotonic() - start < 15
    time.sleep(0.5)
    left = []
    for pid in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if marker.encode() in cmd or str(int(marker) + 1).encode() in cmd:
            left.append(cmd)
    assert left == []


def test_output_is_read_with_a_cap(tmp_path):
    value, run = probe(tmp_path, "1", isolation="basic", drop_privileges=False, cells=[
        "import sys\nchunk = 'z' * 2**20\nfor _ in range(64):\n    sys.stdout.write(chunk)\n"])
    assert value == 1 and run.ended_normally()
    assert run.output_bytes >= 64 * 2**20 and len(run.output) <= LIMITS.output_kb * 1024


def test_basic_mode_limits_timeout_and_socket_block(tmp_path):
    value, run = probe(tmp_path, "[LIMITS['RLIMIT_AS'], LIMITS['RLIMIT_FSIZE'], LIMITS['RLIMIT_CORE'], NET]",
                       isolation="basic", drop_privileges=False, cells=[LIMITS_CODE, """
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    NET = 'open'
except PermissionError:
    NET = 'blocked'
"""])
    assert value == [[1024 * 2**20] * 2, [8 * 2**20] * 2, [0, 0], "blocked"], run
    start = time.monotonic()
    _, run = probe(tmp_path, "1", isolation="basic", drop_privileges=False,
                   limits=Limits(**{**LIMITS.__dict__, "timeout": 2}),
                   cells=["import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"])
    assert run.timed_out and time.monotonic() - start < 10


def test_cell_and_check_timeouts_keep_the_run_going(tmp_path):
    value, run = probe(tmp_path, "'after'", isolation="basic", drop_privileges=False,
                       limits=Limits(**{**LIMITS.__dict__, "cell_timeout": 1}),
                       cells=["while True:\n    pass\n", "x = 1"])
    assert value == "after" and run.ended_normally()
    assert any("TimeoutError" in r.get("error", "") for r in run.records if r["t"] == "cell")


@needs_namespaces
def test_python_reached_through_a_symlink(tmp_path):
    """A virtualenv reached through a symlinked path still works inside the sandbox's root."""
    import subprocess

    link = tmp_path / "venv-link"
    link.symlink_to(sys.prefix)
    (tmp_path / "work").mkdir(mode=0o700)
    code = ("from dlopt.grading.sandbox import run_job, Limits\n"
            "r = run_job({'side': 'student', 'seed': 0, 'checks': [], 'cells': "
            "['import numpy.random, scipy.linalg, decimal']}, limits=Limits(timeout=30), "
            f"workdir={str(tmp_path / 'work')!r})\n"
            "print(r.ended_normally(), [x for x in r.records if x['t'] == 'cell'])")
    done = subprocess.run([str(link / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "True []", done.stdout + done.stderr


def _bwrap_ok() -> bool:
    import shutil

    from dlopt.grading.sandbox import _bwrap_works

    return shutil.which("bwrap") is not None and _bwrap_works()


@pytest.mark.skipif(not _bwrap_ok(), reason="needs bubblewrap (Debian's bubblewrap package)")
def test_bwrap_isolation(tmp_path):
    """bubblewrap: what an instructor without root gets; the same file-system and network promises."""
    secret = tmp_path / "instructor"
    secret.mkdir()
    (secret / "source.ipynb").write_text("SECRET")
    value, run = probe(tmp_path, "[READ, [n for _, n in IFS]]",
                       isolation="bwrap", hide=[str(secret)], cells=[f"""
import os, socket
IFS = socket.if_nameindex()
READ = []
for p in [{str(secret / 'source.ipynb')!r}, '/proc/1/root' + {str(secret / 'source.ipynb')!r}]:
    try:
        open(p).read()
        READ.append(p)
    except OSError:
        pass
"""])
    assert run.ended_normally(), run.output
    assert value == [[], ["lo"]]
    if os.geteuid() == 0:
        uid, _ = probe(tmp_path, "[os.getuid(), os.geteuid()]", isolation="bwrap", cells=["import os"])
        assert 0 not in uid


def test_cli_refuses_unsafe_isolation_for_untrusted_code(tmp_path, monkeypatch, capsys):
    from dlopt.grading import cli, sandbox

    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    (tmp_path / "subs").mkdir()
    code = cli.main(["grade", str(Path(__file__).parent / "grading_cases" / "battery.ipynb"), str(tmp_path / "subs"),
                     "--out", str(tmp_path / "out"), "--isolation", "basic", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to run untrusted notebooks" in err and "UNSAFE" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# bubblewrap for an instructor without root, and cgroup v2
# ----------------------------------------------------------------------------------------------
NOBODY = 65534


def _as_nobody_prefix() -> list:
    """A command prefix that runs as an unprivileged uid, or why there is none on this machine."""
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return []  # already unprivileged
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run as an unprivileged user")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    # the grader starts the same interpreter again for each sandbox: that must work too
    probe_code = ("import subprocess, sys\n"
                  "subprocess.run([sys.executable, '-c', 'import numpy, dlopt.grading.sandbox'], check=True)")
    done = subprocess.run(prefix + [sys.executable, "-c", probe_code],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": "/tmp",
                               "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    if done.returncode != 0:
        blocked = [str(p) for p in Path(os.path.realpath(sys.executable)).parents
                   if p.exists() and not (p.stat().st_mode & 0o001)]
        pytest.skip(f"uid {NOBODY} cannot run this Python ({os.path.realpath(sys.executable)}"
                    + (f": {blocked[-1]} is not searchable by others" if blocked else "")
                    + f"): {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return prefix


def _userns_allowed() -> str | None:
    for path in ("/proc/sys/user/max_user_namespaces", "/proc/sys/kernel/unprivileged_userns_clone"):
        try:
            if int(Path(path).read_text()) == 0:
                return f"{path} is 0: no user namespaces for unprivileged users"
        except (OSError, ValueError):
            pass
    return None


def test_bwrap_as_an_unprivileged_user(tmp_path):
    """An instructor without root: ``auto`` picks bubblewrap, which keeps the promises of the
    namespaces mode (a private file system, no network, the instructor's files out of sight)."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (Debian: apt install bubblewrap)")
    why = _userns_allowed()
    if why:
        pytest.skip(why)
    prefix = _as_nobody_prefix()
    work = Path(tempfile.mkdtemp(prefix="dlopt-nobody-"))
    try:
        secret = work / "instructor"
        secret.mkdir()
        (secret / "source.ipynb").write_text("SECRET")
        if prefix:
            for p in (work, secret, secret / "source.ipynb"):
                os.chown(p, NOBODY, NOBODY)
        code = f"""
import json, os, tempfile
from dlopt.grading.sandbox import Limits, default_isolation, describe_isolation, isolation_is_safe, run_job
cells = ["import os, socket\\nIFS = [n for _, n in socket.if_nameindex()]\\nREAD = []\\n"
         "for p in [{str(secret / 'source.ipynb')!r}, '/proc/1/root{secret / 'source.ipynb'}']:\\n"
         "    try:\\n        open(p).read()\\n        READ.append(p)\\n    except OSError:\\n        pass\\n"]
job = {{"side": "student", "seed": 0, "cells": cells,
        "checks": [{{"code": "__dlopt_rec__(0, 'equal', ([os.getuid(), IFS, READ]))", "timeout": 5}}]}}
run = run_job(job, limits=Limits(timeout=30), workdir=tempfile.mkdtemp(dir={str(work)!r}),
              hide=[{str(secret)!r}])
print(json.dumps([os.geteuid(), default_isolation(), describe_isolation(), isolation_is_safe(default_isolation()),
                  run.ended_normally(), [r["d"] for r in run.records if r["t"] == "rec"], run.output[-500:]]))
"""
        done = subprocess.run(prefix + [sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": str(work),
                                   "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
        assert done.returncode == 0, done.stderr[-2000:]
        import json

        euid, isolation, described, safe, ended, data, output = json.loads(done.stdout.strip().splitlines()[-1])
        assert euid != 0 and isolation == "bwrap" and safe, (isolation, described)
        assert described.startswith("bubblewrap") and "no cgroups" in described
        assert ended, output
        assert data == [[euid, ["lo"], []]]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cgroup_v2_state() -> str | None:
    """None where this grader makes cgroup v2 groups, else what the machine has instead."""
    from dlopt.grading import sandbox

    base = sandbox.cgroup_base() if os.geteuid() == 0 else None
    if base and "v2" in base:
        return None
    root = Path(sandbox._CGROUP_FS)
    if (root / "cgroup.controllers").exists():
        controllers = (root / "cgroup.controllers").read_text().strip() or "none"
        return (f"{root} is cgroup v2 but this grader could not make groups with memory, pids and cpu "
                f"(controllers: {controllers}; root: {os.geteuid() == 0})")
    unified = root / "unified" / "cgroup.controllers"
    return (f"{root} is cgroup v1 (hybrid): memory, pids and cpu are v1 controllers"
            + (f"; the unified v2 hierarchy has only: {unified.read_text().strip() or 'no controllers'}"
               if unified.exists() else ""))


@pytest.mark.skipif(_cgroup_v2_state() is not None, reason=f"no cgroup v2 here: {_cgroup_v2_state()}")
def test_cgroup_v2_limits_the_whole_submission(tmp_path):
    """On a cgroup v2 machine: the memory of all the submission's processes together is limited."""
    from dlopt.grading.sandbox import describe_isolation

    assert "cgroup v2 limits per submission" in describe_isolation()
    cells = ["import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n        hog = bytearray(200 * 2**20)\n"
             "        for i in range(0, len(hog), 4096):\n            hog[i] = 1\n        time.sleep(30)\n"
             "time.sleep(3)\n"]
    _, run = probe(tmp_path, "1", cells=cells, limits=Limits(**{**LIMITS.__dict__, "memory_mb": 600}))
    assert run.memory_exceeded


def test_cgroup_v2_files_written(tmp_path, monkeypatch):
    """The v2 protocol, on a stand-in folder (this test does not need a v2 machine): the grader's
    group enables memory, pids and cpu for its children; each run's group gets memory.max (no
    swap), pids.max and an equal cpu.weight; the batch's weight is that of ``jobs`` processes."""
    from dlopt.grading import sandbox

    fs = tmp_path / "cgroup"
    (fs / "grader.slice").mkdir(parents=True)
    (fs / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setattr(sandbox, "_CGROUP_FS", str(fs))
    monkeypatch.setattr(sandbox, "_own_cgroups", lambda: {"unified": "/grader.slice"})
    sandbox.cgroup_base.cache_clear()
    try:
        base = sandbox.cgroup_base()
        assert base == {"v2": str(fs / "grader.slice" / f"dlopt-grade-{os.getpid()}")}
        top = Path(base["v2"])
        assert (top / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
        assert "cgroup v2 limits per submission" in sandbox.describe_isolation("namespaces")
        sandbox.set_parallel_runs(3)
        assert (top / "cpu.weight").read_text() == "300"
        run = Path(top / "probe")
        run.mkdir()
        (run / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
        group = sandbox.Cgroup.__new__(sandbox.Cgroup)
        group.dirs = {"v2": str(run)}
        assert group.memory_exceeded()
        made = sandbox.Cgroup(Limits(memory_mb=300, nproc=50))
        (d,) = made.dirs.values()
        assert Path(d).parent == top
        assert [(Path(d) / f).read_text() for f in ("memory.max", "pids.max", "cpu.weight")] == [
            str(300 * 2**20), "50", "100"]
        assert made.procs_files() == [f"{d}/cgroup.procs"]
    finally:
        sandbox.cgroup_base.cache_clear()


@pytest.mark.parametrize("isolation", ["basic", pytest.param("namespaces", marks=needs_namespaces)])
def test_the_sandbox_runs_the_graders_own_dlopt(tmp_path, isolation):
    """A worktree or checkout grades with its own code: the sandbox imports the ``dlopt`` package the
    grader imported (not another installed copy), and sees only that package's folder of it."""
    import dlopt

    here = str(Path(dlopt.__file__).resolve())
    value, run = probe(tmp_path, "[dlopt.__file__, sorted(os.listdir(os.path.dirname(HERE)))]",
                       isolation=isolation, drop_privileges=isolation != "basic",
                       cells=["import os, dlopt\nHERE = os.path.dirname(dlopt.__file__)"])
    assert run.ended_normally(), run.output
    assert value[0] == here
    if isolation == "namespaces":
        assert value[1] == ["dlopt"]


LEAVE_BEHIND = """
import os, time
_r, _w = os.pipe()
for _kind in ('sleep', 'busy', 'orphan'):
    _pid = os.fork()
    if _pid == 0:
        os.setsid()
        if _kind == 'orphan' and os.fork():
            os._exit(0)
        os.write(_w, str(os.getpid()).encode().rjust(12))
        while True:
            if _kind != 'busy':
                time.sleep(1)
    if _kind == 'orphan':
        os.waitpid(_pid, 0)
os.close(_w)
_got = b''
while len(_got) < 36:
    _got += os.read(_r, 36)
PIDS = [int(p) for p in _got.split()]
def alive(pid):
    try:
        return open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except OSError:
        return False
"""


@pytest.mark.parametrize("isolation", ["basic", pytest.param("namespaces", marks=needs_namespaces),
                                       pytest.param("bwrap", marks=pytest.mark.skipif(
                                           not _bwrap_ok(), reason="needs bubblewrap"))])
def test_processes_left_behind_are_stopped_before_the_checks(tmp_path, isolation):
    """A notebook's background processes (a child, a busy child, an orphaned grandchild in its own
    session) do not survive into the checks."""
    value, run = probe(tmp_path, "[len(PIDS), [p for p in PIDS if alive(p)]]", isolation=isolation,
                       drop_privileges=isolation != "basic", cells=[LEAVE_BEHIND])
    assert run.ended_normally(), run.output
    assert value == [3, []], run.output
