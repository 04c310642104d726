"""Execute the book's notebook pages in parallel into the build's jupyter-cache.

``jupyter-book build`` (myst-nb, ``execute_notebooks: cache``) executes each page while Sphinx
reads it, one page at a time; Sphinx's own parallel read is not available because several
extensions of the Jupyter Book stack are not parallel-safe. This script fills the same cache that
myst-nb consults (``<path-output>/_build/.jupyter_cache``) using a pool of worker processes, so the
build that follows finds every page already executed. A page whose code changed gets a new entry;
an unchanged page is skipped. A page that fails is reported and left out of the cache: the build
then executes it itself and reports the error in its usual way.

Usage::

    python tools/execute_pages.py [--jobs N] [--path-output DIR] [PAGE.md ...]

With PAGE arguments only those pages are executed (whether cached or not), and the exit status is
1 if any of them fails: the quick way to run the pages one is editing.

``--jobs`` defaults to the number of CPU cores; ``--path-output`` is ``jupyter-book build``'s option of
the same name (default: the book root).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as paths relative to the book root without
    the suffix (the way the table of contents names them)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                names.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return names


def toc_pages() -> list[Path]:
    """The source files of every page in ``_toc.yml`` that is a notebook (has a kernelspec)."""
    names = toc_files()
    pages = []
    for name in names:
        path = ROOT / f"{name}.md"
        if path.exists() and "kernelspec:" in path.read_text(encoding="utf8"):
            pages.append(path)
    return pages


def ipc_kernel_manager():
    """A jupyter_client KernelManager whose kernel talks over Unix-domain sockets.

    With the default TCP transport, jupyter_client picks five ports it found free and the kernel
    binds them a moment later; with pages executing side by side (and pages that open loopback
    connections of their own) another process can take one of those ports first, and the kernel
    dies at start-up with "Address already in use". ZeroMQ's ``ipc`` transport uses socket files
    instead, here under a name unique to each kernel; the manager deletes them at shutdown.
    """
    import tempfile
    import uuid

    from jupyter_client import KernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(KernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self):
            return os.path.join(tempfile.gettempdir(), f"dlopt-kernel-{uuid.uuid4().hex[:16]}")

    return IPCKernelManager


def _execute(path: str, timeout: int, attempts: int = 3):
    """Worker: execute one page; return (path, notebook or None, seconds, error text).

    A kernel that fails to start or dies is retried (up to ``attempts`` times in all); an error
    raised by a cell is not: it is the page's error, reported as such.
    """
    from jupyter_cache.executors.utils import single_nb_execution
    from myst_nb.core.read import myst_nb_reader_plugin

    error = ""
    for _ in range(attempts):
        nb = myst_nb_reader_plugin(path)
        try:
            result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                         allow_errors=False, meta_override=True,
                                         kernel_manager_class=ipc_kernel_manager())
        except Exception as exc:  # the kernel did not start or died: not a cell's error
            error = f"{type(exc).__name__}: {exc}"
            continue
        if result.err is not None:
            return path, None, result.time, result.exc_string or repr(result.err)
        return path, nb, result.time, None
    return path, None, 0.0, f"the kernel failed {attempts} times; last error: {error}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--path-output", default=str(ROOT))
    parser.add_argument("--timeout", type=int, default=120, help="per-cell timeout in seconds")
    parser.add_argument("pages", nargs="*", help="execute just these pages (paths to .md files)")
    args = parser.parse_args(argv)

    # one BLAS/OpenMP thread per kernel: `jobs` kernels already share the cores (kernels inherit
    # this environment); oversubscribed threads made small torch loops many times slower
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from jupyter_cache import get_cache
    from jupyter_cache.cache.main import CacheBundleIn
    from myst_nb.core.read import myst_nb_reader_plugin

    cache = get_cache(str(Path(args.path_output).resolve() / "_build" / ".jupyter_cache"))
    todo = [Path(p).resolve() for p in args.pages]
    for page in [] if todo else toc_pages():
        try:
            cache.match_cache_notebook(myst_nb_reader_plugin(str(page)))
        except KeyError:
            todo.append(page)
    if not todo:
        print("execute_pages: every page is already in the cache")
        return 0
    print(f"execute_pages: executing {len(todo)} page(s) with {args.jobs} worker(s)", flush=True)
    start, failed = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_execute, str(p), args.timeout) for p in todo]
        for future in as_completed(futures):
            path, nb, seconds, error = future.result()
            rel = Path(path).relative_to(ROOT)
            if error is not None:
                failed.append(rel)
                print(f"  FAILED {rel} after {seconds:.1f} s (the build will report it):\n{error[-3000:]}",
                      flush=True)
                continue
            cache.cache_notebook_bundle(CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"  {seconds:6.1f} s  {rel}", flush=True)
    print(f"execute_pages: {len(todo) - len(failed)} executed, {len(failed)} failed, "
          f"{time.perf_counter() - start:.0f} s wall", flush=True)
    if args.pages and failed:
        return 1  # pages named on the command line: their failure is this command's failure
    return 0  # failures are reported by the book build itself


if __name__ == "__main__":
    sys.exit(main())
