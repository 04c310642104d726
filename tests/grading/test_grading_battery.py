"""The adversarial battery: hostile submissions get exactly the points they deserve, with a reason.

Runs only where the grader gets full (namespaces) isolation, as in CI. One problem set
(``tests/grading/grading_cases/battery.ipynb``, 6 automatic points: ``sq`` 1, ``sq-hidden``
2, ``log`` 1, ``count`` 1, ``order`` 1, plus a manual question) and over fifty submissions built
below, graded in one batch with ``--jobs 2`` and tight limits. Each case states the points per
check it deserves and a phrase that must appear in its feedback.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlopt.grading import release_notebook
from dlopt.grading.grader import grade
from dlopt.grading.sandbox import Limits, cgroup_base, default_isolation, run_job

# Never run hostile code without the full sandbox: in basic isolation (not root) "kill the parent"
# would kill pytest and `os.kill(-1, SIGKILL)` every process of the user.
pytestmark = pytest.mark.skipif(default_isolation() != "namespaces",
                                reason="the battery runs only with namespaces isolation (root + unshare)")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "grading" / "grading_cases" / "battery.ipynb"
LIMITS = Limits(timeout=10, cell_timeout=2, check_timeout=2, memory_mb=1024, nproc=64, file_mb=16,
                output_kb=16, results_mb=8)
FULL = {"sq": 1, "sq-hidden": 2, "log": 1, "count": 1, "order": 1}
ZERO = dict.fromkeys(FULL, 0)

HEADER = "import math\nimport numpy as np\nfrom dlopt.grading import expect\n"
SQUARE = "def square(x):\n    return np.asarray(x, dtype=float) ** 2\n"
LOG = ("def safe_log(x):\n    if x <= 0:\n        raise ValueError('x must be positive')\n"
       "    return math.log(x)\n")
COUNT = "def count_positive(values):\n    return int(sum(1 for v in values if v > 0))\n"
DESC = "def descending(values):\n    return sorted(values, reverse=True)\n"
CORRECT = [HEADER, SQUARE, LOG, COUNT, DESC]
WRONG = [HEADER, "def square(x):\n    return x\n", "def safe_log(x):\n    return 0.0\n",
         "def count_positive(values):\n    return 0\n", "def descending(values):\n    return values\n"]


def but(**replace):
    """The correct solution with some functions replaced."""
    parts = {"square": SQUARE, "safe_log": LOG, "count_positive": COUNT, "descending": DESC}
    parts.update(replace)
    return [HEADER] + [p for p in parts.values() if p]


def with_points(**points):
    return dict(FULL, **points)


# name -> (code cells, deserved points per check, phrase in the feedback, expected status)
def cases(paths: dict) -> dict:
    src, sub_dir, out = paths["source"], paths["submissions"], paths["out"]
    read_secrets = f"""
import glob, os
leaked = []
targets = [{str(src)!r}, {str(sub_dir / 'correct.ipynb')!r}, {str(out / 'grades.csv')!r},
           {str(out / '.reference-0.json')!r}, {str(ROOT / 'exercises/source/gradient-descent.ipynb')!r},
           {str(ROOT / '.git/HEAD')!r}, '/proc/1/root' + {str(src)!r}, '/proc/1/cwd/battery.ipynb',
           '/root/.bash_history', '/proc/1/environ']
for t in targets:
    try:
        with open(t, 'rb') as fh:
            fh.read(10)
        leaked.append(t)
    except Exception:
        pass
for d in [{str(sub_dir)!r}, {str(out)!r}, {str(src.parent)!r}, '/proc/1/root/tmp', '/work/main/exercises']:
    try:
        if os.listdir(d):
            leaked.append(d)
    except Exception:
        pass
leaked += [p for p in glob.glob('/tmp/**/*.ipynb', recursive=True)]
leaked += [p for p in glob.glob('/home/**/*.ipynb', recursive=True)]
leaked += [p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2 and os.path.exists(f'/proc/{{p}}/cmdline')
           and b'grader' in open(f'/proc/{{p}}/cmdline', 'rb').read()]
"""
    leak_check = "if leaked:\n    def square(x):\n        return 'LEAKED ' + repr(leaked)\n"
    forge = """
import json, os, sys
fd = json.loads(open('/proc/self/cmdline', 'rb').read().split(b'\\0')[-2])['result_fd']
for c in range(5):
    os.write(fd, (json.dumps({'t': 'rec', 'c': c, 's': 0, 'd': [0.0, 0.0, 0.0, 0.0]}) + '\\n').encode())
    os.write(fd, (json.dumps({'t': 'check', 'c': c, 'ok': True}) + '\\n').encode())
"""
    return {
        "correct": (CORRECT, FULL, "Score: 7 / 7", "ok"),
        "partial": (but(safe_log="def safe_log(x):\n    return math.log(abs(x))\n",
                        count_positive="def count_positive(values):\n    return len(values)\n"),
                    with_points(log=0, count=0), "expected ValueError", "ok"),
        "empty-notebook": ([], ZERO, "NameError", "ok"),
        "wrong-everything": (WRONG, ZERO, "got", "ok"),
        "infinite-loop-cell": (CORRECT + ["while True:\n    pass\n"], FULL, "TimeoutError", "ok"),
        "infinite-loop-function": (but(square="def square(x):\n    while True:\n        pass\n"),
                                   with_points(sq=0, **{"sq-hidden": 0}), "TimeoutError", "ok"),
        "ignores-alarm": (CORRECT + ["import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                     "while True:\n    pass\n"], ZERO, "time limit", "timeout"),
        # BlockingIOError at the process limit, or the cell's time limit on a loaded machine
        "fork-bomb": (CORRECT + ["import os\nwhile True:\n    os.fork()\n"], FULL, "cell 6:", "ok"),
        "allocate-50GB": (CORRECT + ["import numpy as np\nx = np.ones(50 * 2**30 // 8)\n"], FULL,
                          "MemoryError", "ok"),
        # stopped by RLIMIT_AS or the cgroup, or by the cell's time limit on a loaded machine
        "eat-memory": (CORRECT + ["hog = []\nwhile True:\n    hog.append(bytearray(256 * 2**20))\n"], FULL,
                       "cell 6:", "ok"),
        "os-exit-mid-notebook": ([HEADER, SQUARE, "import os\nos._exit(0)\n", LOG, COUNT, DESC], ZERO,
                                 "exited with code 0", "exited"),
        "sys-exit": (CORRECT + ["import sys\nsys.exit(1)\n"], FULL, "SystemExit", "ok"),
        "kill-parent": (CORRECT + ["import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"], FULL,
                        "PermissionError", "ok"),
        "kill-everyone": (CORRECT + ["import os, signal\nos.kill(-1, signal.SIGKILL)\n"], FULL,
                          "ProcessLookupError", "ok"),
        "segfault": ([HEADER, SQUARE, "import ctypes\nctypes.string_at(0)\n", LOG, COUNT, DESC], ZERO,
                     "signal 11", "killed"),
        "segfault-in-a-check": (but(safe_log="import ctypes\ndef safe_log(x):\n    ctypes.string_at(0)\n"),
                                with_points(log=0), "killed by signal 11 during this check", "ok"),
        "exit-in-a-check": (but(count_positive="import os\ndef count_positive(values):\n    os._exit(3)\n"),
                            with_points(count=0), "exited (code 3) during this check", "ok"),
        "exit-in-every-call": (but(square="import os\ndef square(x):\n    os._exit(0)\n"),
                               with_points(sq=0, **{"sq-hidden": 0}), "a fresh process", "ok"),
        "print-1GB": (CORRECT + ["import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n"
                                 "    sys.stdout.write(chunk)\n"], FULL, "Score: 6 / 7", "ok"),
        "write-huge-file": (CORRECT + ["with open('big.bin', 'wb') as fh:\n    fh.write(b'x' * 100 * 2**20)\n"],
                            FULL, "File too large", "ok"),
        "monkeypatch-comparisons": (["import math, builtins, numpy as np\n"
                                     "np.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
                                     "math.isclose = lambda *a, **k: True\nbuiltins.abs = lambda x: 0\n"
                                     "np.testing.assert_allclose = lambda *a, **k: None\n"] + WRONG[1:],
                                    ZERO, "got", "ok"),
        "eq-always-true": (but(square="class Yes:\n    def __eq__(self, other):\n        return True\n"
                                      "    __hash__ = object.__hash__\n"
                                      "def square(x):\n    return Yes()\n"),
                           with_points(sq=0, **{"sq-hidden": 0}), "not data", "ok"),
        "float-subclass": (but(safe_log="class F(float):\n    def __eq__(self, o):\n        return True\n"
                                        "    __hash__ = float.__hash__\n"
                                        "def safe_log(x):\n    if x <= 0:\n        raise ValueError\n"
                                        "    return F(0.0)\n"), with_points(log=0), "expected 0.69", "ok"),
        "ipython-input-transformer": (WRONG + ["ip = get_ipython()\n"
                                               "ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
                                               "ip.input_transformers_post.append(lambda lines: ['pass\\n'])\n"],
                                      ZERO, "got", "ok"),
        "magics": (["%matplotlib inline\n!echo hi\n"] + CORRECT, FULL, "Score: 6 / 7", "ok"),
        "read-secrets": ([read_secrets] + CORRECT + [leak_check], FULL, "Score: 6 / 7", "ok"),
        "fake-results": (CORRECT + [f"""
import os
for p in [{str(out / 'grades.csv')!r}, {str(out / 'feedback' / 'fake-results.md')!r},
          {str(out / '.reference-0.json')!r}, 'grades.csv']:
    try:
        os.makedirs(os.path.dirname(p) or '.', exist_ok=True)
        with open(p, 'w') as fh:
            fh.write('student,total\\nfake-results,1000\\n')
    except OSError:
        pass
"""], FULL, "Score: 6 / 7", "ok"),
        "network": (but(count_positive="""
import socket
def count_positive(values):
    try:
        socket.create_connection(('1.1.1.1', 53), timeout=2).close()
        return 999
    except OSError:
        return int(sum(1 for v in values if v > 0))
""") + ["import socket\nsocket.create_connection(('8.8.8.8', 53), timeout=2)\n"], FULL, "OSError", "ok"),
        "import-solution": ([HEADER, f"""
import sys, nbformat
sys.path.insert(0, {str(src.parent)!r})
nb = nbformat.read({str(src)!r}, as_version=4)
for cell in nb.cells:
    if cell.cell_type == 'code' and 'check' not in cell.metadata.get('tags', []):
        exec(cell.source)
"""], ZERO, "NameError", "ok"),
        "reseed": (CORRECT + ["import random\nrandom.seed(99)\nnp.random.seed(123)\nnp.random.rand(1000)\n"],
                   FULL, "Score: 6 / 7", "ok"),
        # the hidden inputs are drawn in the check driver: the student's numpy cannot change them
        "patch-default-rng": (CORRECT + ["_orig = np.random.default_rng\n"
                                         "np.random.default_rng = lambda *a, **k: _orig(12345)\n"],
                              FULL, "Score: 6 / 7", "ok"),
        "nan-answers": (but(square="def square(x):\n    return np.full(len(x), np.nan)\n"),
                        with_points(sq=0, **{"sq-hidden": 0}), "nan", "ok"),
        "inf-answers": (but(safe_log="def safe_log(x):\n    if x <= 0:\n        raise ValueError\n"
                                     "    return float('inf')\n"), with_points(log=0), "inf", "ok"),
        "wrong-shape": (but(square="def square(x):\n    return (np.asarray(x, float) ** 2).reshape(-1, 1)\n"),
                        with_points(sq=0, **{"sq-hidden": 0}), "got", "ok"),
        "wrong-dtype": (but(count_positive="def count_positive(values):\n    return '2'\n",
                            descending="def descending(values):\n    return [str(v) for v in sorted(values)[::-1]]\n"),
                        with_points(count=0, order=0), "where a number was expected", "ok"),
        "renamed-functions": (but(square="def sqr(x):\n    return np.asarray(x, float) ** 2\n"),
                              with_points(sq=0, **{"sq-hidden": 0}), "NameError", "ok"),
        "deep-nesting": (but(descending="def descending(values):\n    a = []\n    for _ in range(200):\n"
                                        "        a = [a]\n    return a\n"), with_points(order=0), "nested", "ok"),
        "huge-int": (but(count_positive="def count_positive(values):\n    return 10 ** 5000\n"),
                     with_points(count=0), "could not be sent", "ok"),
        "recursion": (but(square="def square(x):\n    return square(x)\n"),
                      with_points(sq=0, **{"sq-hidden": 0}), "RecursionError", "ok"),
        "forge-results": (WRONG + [forge], ZERO, "got", "ok"),
        **second_round(paths),
    }


# the result channel: the student's code can find it and write records of its own (class 1)
FD = ("import json, os\n"
      "_fd = json.loads(open('/proc/self/cmdline', 'rb').read().split(b'\\0')[-2])['result_fd']\n"
      "def _send(**rec):\n    os.write(_fd, (json.dumps(rec) + '\\n').encode())\n")
HONEST = "-neighbour"
# what only the checks hold: the recorder (in files it is the grader's public source, not a
# check), a hidden check's input line and seed, a check's id (written reversed, so that the hunting
# code itself holds none of them)
HUNT = r"""
import gc, glob, os, stat, sys
_REV = ['__cer_tpold__', '(4)lamron_dradnats.gnr = x', '(3)gnr_tluafed.modnar.pn = gnr', 'neddih-qs']
_found = []
def _look(text, where):
    for m in _REV:
        if m[::-1] in text:
            _found.append(where + ': ' + m[::-1])
def _hunt(where):
    if where == 'frames':
        f = sys._getframe()
        while f is not None:
            for scope in (f.f_locals, f.f_globals):
                for v in list(scope.values()):
                    if type(v).__name__ != 'module':
                        _look(repr(v)[:200000], 'frame')
                        if hasattr(v, '__dict__') and not isinstance(v, type):
                            _look(repr(vars(v))[:200000], 'frame object')
            f = f.f_back
    elif where == 'gc':
        for o in gc.get_objects():
            if isinstance(o, dict) and '__name__' not in o and (
                    {'checks', 'seed'} <= o.keys() or {'fetch', 'code'} <= o.keys()):
                _found.append('gc: a job dict')
            if isinstance(o, (dict, list)) and len(o) < 1000:
                _look(repr(o)[:20000], 'gc')
    elif where == 'proc':
        for p in glob.glob('/proc/*/cmdline') + glob.glob('/proc/*/environ') + glob.glob('/proc/*/fd/*'):
            try:
                if stat.S_ISREG(os.stat(p).st_mode) or 'cmdline' in p or 'environ' in p:
                    with open(p, 'rb') as fh:
                        _look(fh.read(2**22).decode('latin-1'), p)
            except OSError:
                pass
        _look(' '.join(sys.argv), 'argv')
    else:
        if '__cer_tpold__' in _REV:
            _REV.remove('__cer_tpold__')
        for root in ('/tmp', '/home', '/root', '/work', '/proc/1/root/tmp', '/var/tmp', '/dev/shm'):
            for p in glob.glob(root + '/**', recursive=True)[:3000]:
                try:
                    if stat.S_ISREG(os.lstat(p).st_mode):
                        with open(p, 'rb') as fh:
                            _look(fh.read(2**22).decode('latin-1'), p)
                except OSError:
                    pass
    return _found
_hunt(WHERE)
def square(x):
    if _hunt(WHERE):
        return 'LEAKED ' + '; '.join(_found)[:300]
    return np.asarray(x, dtype=float) ** 2
"""  # an honest notebook named to be graded right after the attack it follows


def second_round(paths: dict) -> dict:
    """Hostile cases of the second round (issue 15), classes 1-9, each with its variants."""
    frames = """
import gc, sys
_memo = []
def _seen():
    if _memo:
        return _memo[0]
    text = []
    f = sys._getframe()
    while f is not None:
        for scope in (f.f_locals, f.f_globals):
            text += [repr(v)[:100000] for v in list(scope.values()) if not type(v).__name__ == "module"]
        f = f.f_back
    text += [repr(o)[:10000] for o in gc.get_objects() if isinstance(o, (dict, list)) and len(o) < 200]
    _memo.append(" ".join(text))
    return _memo[0]
def square(x):
    seen = _seen()
    if ("x " + "* x") in seen or ("rtol" + "=1e-12") in seen or ("[1, -2, 3]), " + "2") in seen:
        raise ValueError("LEAKED " + seen[:200])
    return np.asarray(x, dtype=float) ** 2
"""
    busy = ("import os\nfor _ in range(30):\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
            "            while True:\n                pass\n    except OSError:\n        break\n")
    sleep = "import time\ntime.sleep(1.8)\n"
    memfd = ("import os\n_chunk = b'y' * (15 * 2**20)\n_fds = []\ndef count_positive(values):\n"
             "    for _ in range(120):\n        fd = os.memfd_create('x')\n        os.write(fd, _chunk)\n"
             "        _fds.append(fd)\n    return int(sum(1 for v in values if v > 0))\n")
    forked_memory = ("import os, time\ndef count_positive(values):\n    r, w = os.pipe()\n"
                     "    for _ in range(12):\n        if os.fork() == 0:\n            hog = bytearray(200 * 2**20)\n"
                     "            for i in range(0, len(hog), 4096):\n                hog[i] = 1\n"
                     "            os.write(w, b'k')\n            time.sleep(30)\n            os._exit(0)\n"
                     "    os.close(w)\n    got = b''\n    end = time.time() + 1.5\n"
                     "    while time.time() < end and len(got) < 12:\n        got += os.read(r, 12)\n"
                     "    return int(sum(1 for v in values if v > 0)) if len(got) == 12 else -1\n")
    # a child that writes forged replies into the call channel (its write end is inherited by every
    # process the notebook forks), one line at a time, for as long as it lives
    channel_writer = ("import json, os\n"
                      "_ch = json.loads(open('/proc/self/cmdline', 'rb').read().split(b'\\0')[-2])['channel']\n"
                      "if os.fork() == 0:\n    os.setsid()\n    while True:\n        for _i in range(1, 200):\n"
                      "            os.write(_ch[1], b'{\"re\": %d, \"ok\": \"LEFTOVER\"}\\n' % _i)\n")
    # a function that fails while any process the notebook started is still alive
    alone = ("import os\ndef count_positive(values):\n    others = []\n    for p in os.listdir('/proc'):\n"
             "        if p.isdigit() and int(p) not in (1, os.getpid()):\n            try:\n"
             "                if open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] not in 'ZX':\n"
             "                    others.append(p)\n            except OSError:\n                pass\n"
             "    return -len(others) if others else int(sum(1 for v in values if v > 0))\n")
    whole = {
        # 6. memory of the submission as a whole
        "memfd-1800MB": (but(count_positive=memfd), with_points(count=0), "count (hidden) | 0 / 1", "ok"),
        "memfd-1800MB" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "forked-memory-2400MB": (but(count_positive=forked_memory), with_points(count=0), "count", "ok"),
        # 7. CPU: a submission's processes share one submission's weight
        "busy-children": (CORRECT + [busy] + [sleep] * 2 + ["import os, signal\nos.kill(-1, signal.SIGKILL)\n"],
                          FULL, "Score: 6 / 7", "ok"),
        "busy-children" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
    } if cgroup_base() is not None else {}
    return whole | {
        # 11. processes a notebook leaves behind are stopped before the checks: busy children (in
        # sessions of their own) would slow every call; a leftover writer would forge replies
        "busy-leftovers": (CORRECT + [busy, alone], FULL, "Score: 6 / 7", "ok"),
        "busy-leftovers" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "leftover-channel-writer": (CORRECT + [channel_writer], FULL, "Score: 6 / 7", "ok"),
        "fork-bomb-left-running": (CORRECT + ["import os\nwhile True:\n    os.fork()\n", alone], FULL,
                                   "Score: 6 / 7", "ok"),
        # 1. forged bookkeeping on the result channel
        "forge-rerun-index": (but(square=FD + "def square(x):\n    _send(t='at', c=-10**12)\n    os._exit(1)\n"),
                              with_points(sq=0, **{"sq-hidden": 0}), "during this check", "ok"),
        "forge-rerun-index" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "forge-at-huge": ([FD + "_send(t='at', c=10**12)\n_send(t='at', c='0')\n"
                                "_send(t='at', i=10**30)\nos._exit(1)\n"],
                          ZERO, "exited with code 1", "exited"),
        "forge-record-flood": (CORRECT + [FD + "os.write(_fd, "
                                          "b'{\"t\": \"cell\", \"i\": 1, \"error\": \"x\"}\\n' * 50000)\n"],
                               FULL, "Score: 6 / 7", "ok"),
        # one write past the size limit of the student's records: what follows is dropped (the
        # checks, run by the driver, are not affected)
        "forge-record-overflow": (CORRECT + [FD + "os.write(_fd, b'x' * (9 * 2**20))\n"], FULL,
                                  "Score: 6 / 7", "ok"),
        "forge-parse-record": (CORRECT + [FD + "_send(t='invalid', why='forged')\n"
                                          "_send(t='sub', numbers=[9] * 10**5, answers={'why-nlogn': 'forged'})\n"],
                               FULL, "Score: 6 / 7", "ok"),
        # a forged end record is not believed: the end comes from the check driver
        "forge-end-and-exit": ([FD + "_send(t='end')\nos._exit(0)\n"] + CORRECT, ZERO, "exited with code 0",
                               "exited"),
        # check records come from the check driver alone: the student's are not read
        "forge-check-died": (CORRECT + [FD + "_send(t='check', c=0, died='forged')\n"], FULL, "Score: 6 / 7", "ok"),
        # 2. parsing and transforming student text is linear, and inside the time limit
        "newlines-200KB": (CORRECT + ["\n" * 200_000 + "x = 1\n"], FULL, "Score: 6 / 7", "ok"),
        "newlines-200KB" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "magic-5000-lines": (CORRECT + ["%time x = 1\n" * 5000], FULL, "Score: 6 / 7", "ok"),
        "magic-assignments": (CORRECT + ["y = %time 1\n" * 20000 + "z = !ls\nnp.sum?\n"], FULL, "Score: 6 / 7", "ok"),
        "magic-5000-lines" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "cell-magic": (CORRECT + ["%%bash\nrm -rf /\n"], FULL, "Score: 6 / 7", "ok"),
        # 3. strings that cannot be encoded
        "surrogate-error": (CORRECT + ["raise ValueError('\\ud800 \\udfff')\n"], FULL, "ValueError", "ok"),
        "surrogate-value": (but(descending="def descending(values):\n    return ['\\ud800']\n"),
                            with_points(order=0), "does not hold for", "ok"),
        "surrogate-output": ([HEADER, "import sys\nsys.stdout.buffer.write(b'\\xed\\xa0\\x80' * 100)\n"
                              "sys.stdout.flush()\nimport os\nos._exit(4)\n"], ZERO, "exited with code 4", "exited"),
        # 8. a process that dies in every check: the reruns share the one wall-clock limit
        "slow-deaths": ([HEADER, sleep, sleep, sleep, "import os\ndef square(x):\n    os._exit(1)\n",
                         "def safe_log(x):\n    os._exit(1)\n", COUNT, DESC],
                        ZERO, "time limit", "timeout"),
        # 9. what the student's process can see: never the checks' expected side
        "frame-walk": ([HEADER, frames, LOG, COUNT, DESC], FULL, "Score: 6 / 7", "ok"),
        # 10. hunting for the checks (their source, their hidden inputs, the job) in the student's
        # process: frames, the garbage collector, /proc, files. Each hunt runs in a cell and in
        # every call; a find is returned as the answer (which then fails), so any leak costs points
        **{f"hunt-{where}": ([HEADER, HUNT.replace("WHERE", repr(where)), LOG, COUNT, DESC], FULL,
                             "Score: 6 / 7", "ok") for where in ("frames", "gc", "proc", "files")},
        **{f"hunt-{where}" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok") for where in ("frames", "gc")},
        # a function that ignores its time limit: the driver stops waiting, that check fails and a
        # fresh pair of processes runs the checks after it
        "ignores-alarm-in-a-call": (but(square="import signal\ndef square(x):\n    if len(x) == 4:\n"
                                               "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                               "        while True:\n            pass\n"
                                               "    return np.asarray(x, dtype=float) ** 2\n"),
                                    with_points(**{"sq-hidden": 0}), "did not answer within", "ok"),
        "ignores-alarm-in-a-call" + HONEST: (CORRECT, FULL, "Score: 6 / 7", "ok"),
        "hidden-wrong": (but(square="def square(x):\n    x = np.asarray(x, dtype=float)\n"
                                    "    return x * x + (1.0 if len(x) == 4 else 0.0)\n"),
                         with_points(**{"sq-hidden": 0}), "is not the reference value", "ok"),
    }


def notebook(cells: list) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(c) for c in cells])


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    if os.geteuid() == 0:  # never fork-bomb as root: check the sandbox really drops privileges first
        probe = run_job({"side": "student", "seed": 0, "cells": [], "checks": [
            {"code": "import os, resource\n__dlopt_rec__(0, 'equal', ([os.getuid(), os.geteuid(), "
                     "list(resource.getrlimit(resource.RLIMIT_NPROC))]))", "timeout": 5}]},
            limits=LIMITS, workdir=tmp_path_factory.mktemp("probe"))
        data = [r["d"] for r in probe.records if r["t"] == "rec"]
        assert data and data[0][0] != 0 and data[0][1] != 0 and data[0][2] == [64, 64], probe
    base = tmp_path_factory.mktemp("battery")
    paths = {"source": SOURCE, "submissions": base / "submissions", "out": base / "results"}
    paths["submissions"].mkdir()
    table = cases(paths)
    for name, (cells, _, _, _) in table.items():
        nbformat.write(notebook(cells), paths["submissions"] / f"{name}.ipynb")
    sub = paths["submissions"]
    # submissions that are not (good) notebooks
    (sub / "not-a-notebook.py").write_text(SQUARE + LOG + COUNT + DESC)
    (sub / "invalid-json.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')
    (sub / "json-not-notebook.ipynb").write_text("[1, 2, 3]")
    (sub / "non-utf8.ipynb").write_bytes(json.dumps(notebook(CORRECT)).encode("utf-16"))
    (sub / "huge-notebook.ipynb").write_text(json.dumps({"cells": [], "padding": "x" * 6 * 2**20}))
    nbformat.write(notebook(CORRECT + ["pad = 0\n" * 30_000 + "%time pad += 1\n"]), sub / "huge-code-cell.ipynb")
    (sub / "too-many-cells.ipynb").write_text(json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
         "cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}] * 6000}))
    (sub / "malformed-cell.ipynb").write_text(json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 42}]}))
    big = notebook(CORRECT)
    big.cells[1].outputs = [nbformat.v4.new_output("stream", text="y" * 3 * 2**20)]
    nbformat.write(big, sub / "large-outputs.ipynb")
    student = release_notebook(nbformat.read(SOURCE, as_version=4))
    nbformat.write(student, sub / "unsolved-student-copy.ipynb")
    solved = release_notebook(nbformat.read(SOURCE, as_version=4))
    solutions = iter([SQUARE, LOG, COUNT + DESC])
    kept = []
    for cell in solved.cells:
        if cell.cell_type == "code" and "NotImplementedError" in cell.source:
            cell.source = next(solutions)
        if "check" in cell.metadata.get("tags", []):
            continue  # delete the visible checks
        kept.append(cell)
    solved.cells = kept
    nbformat.write(solved, sub / "deleted-visible-checks.ipynb")
    edited = release_notebook(nbformat.read(SOURCE, as_version=4))
    solutions = iter(["def square(x):\n    return x\n", LOG, COUNT + DESC])
    for cell in edited.cells:
        if cell.cell_type == "code" and "NotImplementedError" in cell.source:
            cell.source = next(solutions)
        elif "check" in cell.metadata.get("tags", []):
            cell.source = "expect.close(square([1, 2, 3]), [1, 2, 3])  # edited to match my answer"
    nbformat.write(edited, sub / "edited-visible-checks.ipynb")
    extra = {
        "invalid-json": (ZERO, "not valid JSON", "invalid"),
        "json-not-notebook": (ZERO, "not a Jupyter notebook", "invalid"),
        "non-utf8": (ZERO, "not UTF-8", "invalid"),
        "huge-notebook": (ZERO, "larger than the 5 MB limit", "invalid"),
        "large-outputs": (FULL, "Score: 6 / 7", "ok"),
        "huge-code-cell": (FULL, "Score: 6 / 7", "ok"),
        "too-many-cells": (ZERO, "more than the limit", "invalid"),
        "malformed-cell": (ZERO, "malformed", "invalid"),
        "unsolved-student-copy": (ZERO, "NotImplementedError", "ok"),
        "deleted-visible-checks": (FULL, "Score: 6 / 7", "ok"),
        "edited-visible-checks": (with_points(sq=0, **{"sq-hidden": 0}), "got", "ok"),
    }
    # 2, 3, 4, 5: files and names
    (sub / "nested-json.ipynb").write_text('{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}")
    answer = notebook(CORRECT)
    answer.cells.append(new_markdown_cell("Q", metadata={"tags": ["manual"],
                                                         "dlopt": {"id": "why-nlogn", "points": 1}}))
    answer.cells.append(new_markdown_cell("n! orderings \ud800 and \udfff", metadata={"tags": ["answer"]}))
    (sub / "surrogate-answer.ipynb").write_text(json.dumps(answer))  # ASCII JSON with lone surrogates
    with open(os.path.join(os.fsencode(sub), b"latin1-\xe9t\xe9.ipynb"), "w") as fh:
        fh.write(json.dumps(notebook(CORRECT)))
    for name in ["s .ipynb", "s?.ipynb", "s_.ipynb", "张伟.ipynb", "李娜.ipynb", "王芳.ipynb", "Case.ipynb",
                 "case.ipynb", "CON.ipynb", "victim.ipynb", "x" * 248 + "a.ipynb", "x" * 248 + "b.ipynb"]:
        nbformat.write(notebook(CORRECT), sub / name)
    (sub / "victim").write_text("not a notebook")
    (sub / "folder.ipynb").mkdir()
    (sub / "link-to-source.ipynb").symlink_to(SOURCE)
    (sub / "link-to-classmate.ipynb").symlink_to(sub / "correct.ipynb")
    (sub / "link-to-zero.ipynb").symlink_to("/dev/zero")
    os.mkfifo(sub / "fifo.ipynb")
    instructor = base / "instructor"
    instructor.mkdir()
    (instructor / "battery.ipynb").write_bytes(SOURCE.read_bytes())
    os.link(instructor / "battery.ipynb", sub / "hardlink-to-source.ipynb")
    extra.update({
        "nested-json": (ZERO, "nested too deeply", "invalid"),
        "surrogate-answer": (FULL, "Score: 6 / 7", "ok"),
        "latin1-%E9t%E9": (FULL, "Score: 6 / 7", "ok"),
        "s%20": (FULL, "Score: 6 / 7", "ok"), "s%3F": (FULL, "Score: 6 / 7", "ok"), "s_": (FULL, "Score: 6 / 7", "ok"),
        "%E5%BC%A0%E4%BC%9F": (FULL, "Score: 6 / 7", "ok"), "%E6%9D%8E%E5%A8%9C": (FULL, "Score: 6 / 7", "ok"),
        "%E7%8E%8B%E8%8A%B3": (FULL, "Score: 6 / 7", "ok"),
        "%43ON": (FULL, "Score: 6 / 7", "ok"), "victim": (FULL, "Score: 6 / 7", "ok"),
        "link-to-source": (ZERO, "symbolic link, refused", "refused"),
        "link-to-classmate": (ZERO, "symbolic link, refused", "refused"),
        "link-to-zero": (ZERO, "symbolic link, refused", "refused"),
        "fifo": (ZERO, "named pipe", "refused"),
        "hardlink-to-source": (ZERO, "hard link", "refused"),
    })
    import hashlib

    for name in ["Case", "case"]:
        extra[name + "~" + hashlib.sha256(f"{name}.ipynb".encode()).hexdigest()[:8]] = (FULL, "Score: 6 / 7", "ok")
    for end in "ab":
        raw = ("x" * 248 + end).encode()
        extra["x" * 103 + "~" + hashlib.sha256(raw).hexdigest()[:16]] = (FULL, "Score: 6 / 7", "ok")
    expected = {name: (pts, phrase, status) for name, (_, pts, phrase, status) in table.items()}
    expected.update(extra)
    manual = base / "manual.csv"
    manual.write_text("student,why-nlogn\ncorrect,1\npartial,0.5\n")
    results = grade(SOURCE, sub, paths["out"], jobs=2, limits=LIMITS, manual=manual, progress=False,
                    max_mb=5)
    return {"results": {r.student: r for r in results}, "expected": expected, "out": paths["out"],
            "list": results}


def test_battery_is_large_enough(battery):
    assert len(battery["expected"]) >= 30
    assert set(battery["results"]) == set(battery["expected"])


def test_each_submission_gets_exactly_what_it_deserves(battery):
    wrong = []
    for name, (points, phrase, status) in sorted(battery["expected"].items()):
        r = battery["results"][name]
        feedback = (battery["out"] / "feedback" / f"{name}.md").read_text()
        if r.points != points:
            wrong.append(f"{name}: got {r.points}, deserves {points}; reasons {r.reasons}; cells {r.cell_errors}"
                         f"; {r.detail}")
        if r.status != status:
            wrong.append(f"{name}: status {r.status!r}, expected {status!r} ({r.detail})")
        if phrase.lower() not in feedback.lower():
            wrong.append(f"{name}: feedback lacks {phrase!r}:\n{feedback}")
        for cid, why in r.reasons.items():
            if r.points[cid] == 0 and not why:
                wrong.append(f"{name}: {cid} failed without a reason")
    assert not wrong, "\n".join(wrong)


def test_grades_csv_is_the_graders(battery):
    rows = {row["student"]: row for row in csv.DictReader(open(battery["out"] / "grades.csv"))}
    assert set(rows) == set(battery["expected"])
    assert rows["correct"]["total"] == "7" and rows["correct"]["max"] == "7"   # 6 + manual 1
    assert rows["partial"]["total"] == "4.5" and rows["partial"]["why-nlogn"] == "0.5"
    assert rows["fake-results"]["total"] == "6" and rows["fake-results"]["why-nlogn"] == ""
    assert "1000" not in (battery["out"] / "grades.csv").read_text()
    assert "Score: 6 / 7" in (battery["out"] / "feedback" / "fake-results.md").read_text()
    assert oct((battery["out"]).stat().st_mode & 0o777) == oct(0o700)


def test_second_round_is_large_enough(battery):
    names = set(second_round({"source": SOURCE, "submissions": Path("/s"), "out": Path("/o")}))
    attacks = [n for n in names if not n.endswith(HONEST)]
    files = ["nested-json", "surrogate-answer", "latin1-%E9t%E9", "s%20", "s%3F", "%E5%BC%A0%E4%BC%9F",
             "%43ON", "victim", "link-to-source", "link-to-classmate", "link-to-zero", "fifo", "hardlink-to-source"]
    assert len(attacks) + len(files) >= 25 and all(f in battery["expected"] for f in files)


def test_what_is_not_a_submission_is_reported(battery):
    report = (battery["out"] / "report.txt").read_text(encoding="utf-8")
    for line in ["not-a-notebook.py: not a submission (not a .ipynb file)", "victim: not a submission",
                 "folder.ipynb: not a submission (a folder)", "link-to-source.ipynb: a symbolic link, refused",
                 "fifo.ipynb: a device, named pipe or socket, refused", "hardlink-to-source.ipynb: a hard link"]:
        assert line in report, (line, report)
    rows = list(csv.DictReader(open(battery["out"] / "grades.csv", encoding="utf-8")))
    ids = [row["student"] for row in rows]
    assert len(ids) == len(set(ids)) == len(battery["expected"])          # never merged
    files = {row["student"]: row["file"] for row in rows}
    assert files["s%3F"] == "s?.ipynb" and files["%E5%BC%A0%E4%BC%9F"] == "张伟.ipynb"
    feedback = {p.name for p in (battery["out"] / "feedback").iterdir()}
    assert feedback == {f"{i}.md" for i in ids}                          # one file each, none overwritten
    from dlopt.grading.grader import file_name_of

    assert all(file_name_of(i) + ".ipynb" == files[i] for i in ids if "~" not in i and "%E9" not in i)


def test_untrusted_text_is_written_safely(battery):
    out = battery["out"]
    answers = (out / "answers" / "why-nlogn.md").read_text(encoding="utf-8")
    assert "## surrogate-answer" in answers and "n! orderings \ufffd and \ufffd" in answers
    assert "## correct" in answers and "## zzz" not in answers
    assert "\ufffd" in (out / "feedback" / "surrogate-error.md").read_text(encoding="utf-8")


def test_reruns_share_one_time_limit(battery):
    slow = battery["results"]["slow-deaths"]
    assert slow.elapsed <= LIMITS.timeout + 2, slow.elapsed
    assert all(r.elapsed <= LIMITS.timeout + 2 for r in battery["list"]), \
        sorted((r.elapsed, r.student) for r in battery["list"])[-3:]


def test_hidden_feedback_never_quotes_the_reference(battery):
    import numpy as np

    feedback = (battery["out"] / "feedback" / "hidden-wrong.md").read_text()
    rng = np.random.default_rng(3)
    for _ in range(5):
        for value in rng.standard_normal(4) ** 2:
            assert repr(float(value))[:8] not in feedback
    assert "sq-hidden" in feedback and "is not the reference value" in feedback
    visible = (battery["out"] / "feedback" / "wrong-everything.md").read_text()
    assert "got 2, expected 4.0" in visible        # visible checks may say what was expected
