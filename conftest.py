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
