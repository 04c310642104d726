"""The page executor (tools/execute_pages.py): kernels on Unix-domain sockets, retried when a kernel
fails to start, while an error raised by a cell is reported at once."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import execute_pages  # noqa: E402

PAGE = """---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

```{code-cell} ipython3
import json
from ipykernel import get_connection_info
print(json.loads(get_connection_info())["transport"])
```
"""


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    return str(path)


def test_kernel_runs_on_unix_sockets(page):
    path, nb, seconds, error = execute_pages._execute(page, timeout=60)
    assert error is None and nb is not None
    assert nb.cells[-1].outputs[0]["text"].strip() == "ipc"


def _fake(outcomes):
    """A stand-in for jupyter-cache's single_nb_execution that plays back ``outcomes``."""
    calls = []

    def run(nb, **kwargs):
        calls.append(kwargs["kernel_manager_class"])
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, RuntimeError):  # the kernel did not start
            raise outcome
        return SimpleNamespace(err=outcome, time=0.5, exc_string=None if outcome is None else "cell failed")

    return run, calls


def test_a_kernel_that_dies_at_start_up_is_retried(page, monkeypatch):
    import jupyter_cache.executors.utils as utils

    run, calls = _fake([RuntimeError("Kernel died before replying to kernel_info"), None])
    monkeypatch.setattr(utils, "single_nb_execution", run)
    path, nb, seconds, error = execute_pages._execute(page, timeout=60)
    assert error is None and isinstance(nb, nbformat.NotebookNode) and len(calls) == 2


def test_a_cell_error_is_not_retried(page, monkeypatch):
    import jupyter_cache.executors.utils as utils

    # jupyter-cache reports a cell's error on the result (err set), not by raising
    run, calls = _fake([ValueError("the page's own error")])
    monkeypatch.setattr(utils, "single_nb_execution", run)
    path, nb, seconds, error = execute_pages._execute(page, timeout=60)
    assert nb is None and error == "cell failed" and len(calls) == 1


def test_a_kernel_that_never_starts_is_reported_not_raised(page, monkeypatch):
    import jupyter_cache.executors.utils as utils

    run, calls = _fake([RuntimeError("Address already in use")] * 3)
    monkeypatch.setattr(utils, "single_nb_execution", run)
    path, nb, seconds, error = execute_pages._execute(page, timeout=60, attempts=3)
    assert nb is None and len(calls) == 3
    assert "failed 3 times" in error and "Address already in use" in error
