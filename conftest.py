"""pytest's root configuration (applies to tests/ and to nbval on exercises/source/).

One BLAS/OpenMP thread per process: the suite, the kernels nbval starts and the grader's sandboxes
run side by side on a small machine, where oversubscribed threads made small torch loops up to 25x
slower. Set before numpy or torch is imported; an explicit setting in the environment wins.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pytest_configure(config):
    """nbval's kernels talk over Unix-domain sockets too, like the book's page executor (see
    ``ipc_kernel_manager`` in tools/execute_pages.py): a TCP port picked as free can be taken by
    another process before the kernel binds it, and the kernel then dies at start-up."""
    try:
        import nbval.kernel
    except ImportError:  # pragma: no cover - nbval is in requirements.txt
        return
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tools"))
    from execute_pages import ipc_kernel_manager

    nbval.kernel.KernelManager = ipc_kernel_manager()


# --- the slow, whole-project tests -------------------------------------------------------------
# Modules that build the book, drive a browser, build the students' environment or grade whole
# classes of notebooks in the sandbox are marked `integration` (`make unit` deselects them). The
# book and the students' environment are built in the background from the moment the suite is
# collected (below); so the tests that need neither run first, the book's tests next (waiting for
# what is left of its build), the students' environment's last (it waits mostly on pip).
BOOK_MODULES = ("test_book.py", "test_browser.py")
INTEGRATION_MODULES = BOOK_MODULES + ("test_binder.py", "test_explorers_browser.py", "test_exercises.py",
                                      "test_grading_battery.py", "test_exercise_independence.py")


def pytest_collection_modifyitems(session, config, items):
    import pytest

    def late(item):
        name = item.path.name
        return (name == "test_binder.py", name in BOOK_MODULES, name in INTEGRATION_MODULES)

    for item in items:
        if item.path.name in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)
    items.sort(key=late)  # stable: the order within each group is kept


def pytest_collection_finish(session):
    _start_book_build(session)
    _start_binder_build(session)


def _start_book_build(session):
    """The book tests share one build (the ``build_log`` fixture of tests/conftest.py). Start it
    now, in the background at the lowest CPU priority: the pages execute on the cores the unit
    tests leave idle, and the fixture waits for what is left."""
    import os

    if session.config.option.collectonly or os.environ.get("DLOPT_REUSE_BUILD") == "1":
        return
    if not any(item.path.name in BOOK_MODULES for item in session.items):
        return
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent
    proc = subprocess.Popen([sys.executable, str(root / "tools" / "build_book.py"), "--nice", "19", "--quiet"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: stopped as a whole
    session.config._dlopt_book = proc


def _start_binder_build(session):
    if any(item.path.name == "test_binder.py" for item in session.items) and not session.config.option.collectonly:
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        root = Path(__file__).parent
        work = Path(tempfile.mkdtemp(prefix="dlopt-binder-"))
        log = open(work / "build.log", "w")
        # binder/requirements.txt names PyTorch's CPU index; where it is out of reach pip should
        # not retry it for every package (the wheels come from this machine's own index)
        import os

        env = {**os.environ, "PIP_RETRIES": "0"}
        proc = subprocess.Popen([sys.executable, str(root / "tools" / "binder_env.py"), "build",
                                 str(work / "venv"), "--copy", str(work / "repo")],
                                stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
        session.config._dlopt_binder = (proc, work)


def pytest_unconfigure(config):
    book = getattr(config, "_dlopt_book", None)
    if book is not None and book.poll() is None:  # the run ended before the book tests: stop it
        import os
        import signal

        os.killpg(book.pid, signal.SIGKILL)
        book.wait()
    started = getattr(config, "_dlopt_binder", None)
    if started is not None:
        import shutil

        proc, work = started
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
