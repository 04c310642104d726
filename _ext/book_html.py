"""The HTML book's own build steps: offline widget JavaScript, clean scripts, launch links.

1. **Widgets offline.** Pages with ipywidgets outputs (the explorers) need the widget manager that
   renders the saved widget state. myst-nb loads it, and require.js, from two CDNs; offline the
   outputs stay blank. This extension serves ``embed.js`` of the npm package
   ``@jupyter-widgets/html-manager`` (the build for pages without require.js; it holds the
   built-in controls, which are all the book uses) from ``_static/vendor/`` instead. The file is
   committed under ``_ext/vendor/`` (see its README for version and checksum) and copied into
   every build; no package index or CDN is needed to build or to read the book.
2. **No duplicated scripts.** sphinx-thebe and sphinx-togglebutton register their inline
   configuration scripts twice (once with ``filename=None``, once with ``""``), so Sphinx's own
   check does not see the copies and every page declared ``const THEBE_JS_URL`` twice: a
   SyntaxError in the console. Each page keeps the first copy of every script here.
3. **Explorers offline.** Pages with a kernel-free explorer (``dlopt.book.explorers``: a
   ``<div class="dlopt-explorer">`` holding precomputed data) need Plotly. The extension serves
   ``plotly-basic.min.js`` of the npm package ``plotly.js-basic-dist-min`` from
   ``_static/vendor/plotly/`` (committed under ``_ext/vendor/plotly/``, see the README for version
   and checksum) and adds it to those pages only; Sphinx writes the path relative to each page.
4. **Launch links from the one repository URL.** sphinx-book-theme builds the Binder, Colab and
   Thebe buttons from ``repository: url:`` in ``_config.yml``. Colab opens only ``.ipynb`` files,
   and the chapters are MyST Markdown: the Colab button points to the page's notebook copy
   under ``colab/`` (made by ``tools/colab_notebooks.py``, kept in sync by a test), which starts
   with a cell that installs ``dlopt`` from the same repository. Binder opens the ``.md`` page
   itself in JupyterLab (jupytext opens it as a notebook).
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
WIDGETS_JS = "vendor/html-manager/embed.js"  # relative to _static/
PLOTLY_JS = "vendor/plotly/plotly-basic.min.js"  # relative to _static/ (= dlopt.book.explorers.PLOTLY_JS)
EXPLORER_MARK = 'class="dlopt-explorer"'  # what dlopt.book.explorers.Explorer.html() writes
COLAB_DIR = "colab"  # notebook copies of the chapters, relative to the repository root


def _config_inited(app, config):
    # myst-nb adds these scripts to pages that carry widget state; relative paths are in _static
    config.nb_ipywidgets_js = {WIDGETS_JS: {}}


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # the copies differ only in how they say "no file" (None or ""): compare what the tag says
        key = (str(getattr(js, "filename", js) or ""), getattr(js, "attributes", {}).get("body", ""))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def _explorer_js(app, pagename, templatename, context, doctree):
    """Add Plotly to the pages that hold an explorer (and to no other page)."""
    if EXPLORER_MARK in context.get("body", "") and hasattr(app.builder, "add_js_file"):
        # the builder's list for this page only (reverted after it; app.add_js_file would also
        # register the file for builders created later)
        app.builder.add_js_file(PLOTLY_JS, defer="defer")  # runs before DOMContentLoaded, as explorer.js expects


def _colab_links(app, pagename, templatename, context, doctree):
    """Point the theme's Colab button at the page's notebook copy under ``colab/``."""
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") != "Colab":
                continue
            url = button["url"]
            head, sep, _ = url.partition("/blob/")
            branch = url[len(head) + len(sep):].split("/", 1)[0]
            button["url"] = f"{head}/blob/{branch}/{COLAB_DIR}/{pagename}.ipynb"


def _copy_vendor(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "vendor"
    for src in VENDOR.rglob("*"):
        if src.is_file() and src.name != "README.md":
            dest = target / src.relative_to(VENDOR)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


def setup(app):
    if not (VENDOR / "html-manager" / "embed.js").exists():
        raise FileNotFoundError(f"widget manager missing: {VENDOR / 'html-manager' / 'embed.js'}")
    if not (VENDOR / "plotly" / "plotly-basic.min.js").exists():
        raise FileNotFoundError(f"Plotly missing: {VENDOR / 'plotly' / 'plotly-basic.min.js'}")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _explorer_js)
    # after sphinx-book-theme's own html-page-context handlers (default priority 500)
    app.connect("html-page-context", _colab_links, priority=900)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _copy_vendor)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
