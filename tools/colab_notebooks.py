"""Write the Colab copies of the book's pages: ``colab/<page>.ipynb`` for every notebook page.

Colab opens ``.ipynb`` files from a GitHub repository, and the book's pages are MyST Markdown
notebooks (jupytext). The book's Colab button (``_ext/book_html.py``) opens the copy made here:
the page's cells without outputs, after the setup cell the student notebooks start with
(:mod:`dlopt.grading.setup_cell`): it installs ``dlopt`` from the book's repository
(``repository:`` in ``_config.yml``) when it cannot be imported, and does nothing where it can
(Binder, a local JupyterLab). The copies are committed; ``tests/test_colab_notebooks.py``
fails when one is out of date.

Usage::

    python tools/colab_notebooks.py           # (re)write colab/
    python tools/colab_notebooks.py --check   # exit 1 and list the copies that are out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

from dlopt.grading.setup_cell import SETUP_TAG, setup_source
from dlopt.grading.setup_cell import repository as book_repository

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "colab"
sys.path.insert(0, str(Path(__file__).parent))
from execute_pages import toc_pages

# the pages need the PyTorch optimizers, the widgets and the digits data set besides the package
EXTRAS = ("torch", "widgets", "data")


def repository() -> tuple[str, str]:
    """``(url, branch)`` of the book's repository, from ``_config.yml``."""
    found = book_repository(ROOT)
    if found is None:
        raise SystemExit("_config.yml names no repository url")
    return found


def colab_notebook(page: Path) -> str:
    """The text of the Colab copy of one page."""
    nb = jupytext.read(page)
    setup = nbformat.v4.new_code_cell(setup_source(repository(), EXTRAS))
    setup.metadata["tags"] = [SETUP_TAG]
    cells = [setup] + list(nb.cells)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # stable ids: the copies only change when the page does
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    out = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    })
    out.nbformat_minor = 5
    nbformat.validate(out)
    return nbformat.writes(out) + "\n"


def expected() -> dict[Path, str]:
    return {OUT / page.relative_to(ROOT).with_suffix(".ipynb"): colab_notebook(page)
            for page in toc_pages()}


def stale() -> list[str]:
    """Copies that differ from their page, are missing, or have no page any more."""
    want = expected()
    bad = [str(p.relative_to(ROOT)) for p, text in want.items()
           if not p.exists() or p.read_text(encoding="utf8") != text]
    bad += [str(p.relative_to(ROOT)) for p in OUT.rglob("*.ipynb") if p not in want]
    return sorted(bad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report copies that are out of date")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        for name in bad:
            print(f"out of date: {name}")
        if bad:
            print("run: python tools/colab_notebooks.py")
        return 1 if bad else 0
    want = expected()
    for p in OUT.rglob("*.ipynb"):
        if p not in want:
            p.unlink()
    for p, text in want.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text(encoding="utf8") != text:
            p.write_text(text, encoding="utf8")
    print(f"{len(want)} notebooks in {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
