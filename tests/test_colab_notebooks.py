"""The Colab copies of the book's pages (colab/, opened by the book's Colab button) match the pages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab_notebooks  # noqa: E402


def test_colab_copies_are_in_sync():
    bad = colab_notebooks.stale()
    assert not bad, ("Colab notebook copies out of date (run `python tools/colab_notebooks.py`): "
                     + ", ".join(bad))


def test_colab_copy_starts_with_the_install_cell_and_keeps_the_cells():
    page = ROOT / "chapters" / "adaptive" / "adam.md"
    nb = json.loads(colab_notebooks.colab_notebook(page))
    first = "".join(nb["cells"][0]["source"])
    url, branch = colab_notebooks.repository()
    assert f"git+{url}@{branch}" in first and "import dlopt" in first
    import jupytext
    src = jupytext.read(page)
    assert [c["cell_type"] for c in nb["cells"][1:]] == [c.cell_type for c in src.cells]
    assert all(c.get("outputs", []) == [] for c in nb["cells"])
