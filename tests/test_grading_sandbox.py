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
