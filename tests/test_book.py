"""The book builds with every page executed, with zero warnings and no broken references.

The build itself is the session fixture ``build_log`` of tests/conftest.py (shared with the browser
test, so one test run builds the book once)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_book import bad_lines  # noqa: E402  (what `make book` also rejects)
from execute_pages import toc_files  # noqa: E402  (the page list the executor also uses)


def test_book_builds_without_warnings(build_log):
    bad = bad_lines(build_log)
    assert not bad, "book build logged problems:\n" + "\n".join(bad[:40])


def test_every_toc_page_is_rendered(build_log):
    html = ROOT / "_build" / "html"
    missing = [f for f in toc_files() if not (html / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml without HTML output: {missing}"


def test_pages_were_executed(build_log):
    """Each notebook page left output in the HTML (a cell that ran), not just source."""
    html = ROOT / "_build" / "html"
    for f in toc_files():
        src = next((ROOT / f).parent.glob(Path(f).name + ".md"), None)
        if src is None or "kernelspec:" not in src.read_text():
            continue
        page = (html / f"{f}.html").read_text()
        assert 'class="cell_output' in page, f"{f}: no executed cell output in the HTML"


def test_no_error_output_in_the_html(build_log):
    """A figure that fails to render inside a glue or display call leaves a traceback in the page
    (text on stderr or an error MIME bundle) without failing the build; catch it here."""
    html = ROOT / "_build" / "html"
    bad = []
    for f in toc_files():
        page = (html / f"{f}.html").read_text()
        if re.search(r"Traceback \(most recent call last\)|class=\"output traceback|ParseFatalException", page):
            bad.append(f)
    assert not bad, f"pages whose HTML shows an error: {bad}"


def test_launch_buttons_on_every_notebook_page(build_log):
    """Binder (JupyterLab on the page's .md), Colab (the page's copy under colab/, which exists)
    and live code (Thebe) on every executed page, all made from the one repository URL."""
    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    org_repo = repo["url"].rstrip("/").split("github.com/")[1]
    html = ROOT / "_build" / "html"
    bad = []
    for f in toc_files():
        src = ROOT / f"{f}.md"
        if not src.exists() or "kernelspec:" not in src.read_text():
            continue
        page = (html / f"{f}.html").read_text()
        binder = (f"https://mybinder.org/v2/gh/{org_repo}/{repo['branch']}"
                  f"?urlpath=lab/tree/{f}.md")
        colab = (f"https://colab.research.google.com/github/{org_repo}/blob/{repo['branch']}"
                 f"/colab/{f}.ipynb")
        missing = [name for name, ok in (("Binder", binder in page), ("Colab", colab in page),
                                         ("Thebe", "initThebeSBT()" in page),
                                         ("colab copy", (ROOT / "colab" / f"{f}.ipynb").exists()))
                   if not ok]
        if missing:
            bad.append(f"{f}: {', '.join(missing)}")
    assert not bad, "launch buttons missing:\n" + "\n".join(bad)
