"""Offer the PDF of the whole book in the HTML book's download menu.

``make pdf`` builds ``_build/latex/book.pdf`` (XeLaTeX) and then the HTML book again. When that
file exists at the time of an HTML build, this extension copies it to ``_static/book.pdf`` and adds
an entry *PDF (whole book)* to the download menu of every page (the theme's dropdown with the
page's ``.md``/``.ipynb``/print entries). Without the PDF the menu is left as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_JS = """
document.addEventListener("DOMContentLoaded", () => {
  const menu = document.querySelector(".dropdown-download-buttons .dropdown-menu");
  if (!menu) return;
  const root = document.documentElement.dataset.content_root || "";
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = root + "_static/book.pdf";
  link.className = "btn btn-sm dropdown-item";
  link.title = "The whole book as a PDF";
  link.setAttribute("download", "optimization-for-deep-learning.pdf");
  link.innerHTML = '<span class="btn__icon-container"><i class="fas fa-file-pdf"></i></span>' +
                   '<span class="btn__text-container">PDF (whole book)</span>';
  item.appendChild(link);
  menu.appendChild(item);
});
"""


def _pdf(app) -> Path:
    return Path(app.outdir).parent / "latex" / "book.pdf"


def _builder_inited(app):
    if app.builder.format == "html" and _pdf(app).is_file():
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "pdf-download.js").write_text(_JS)
        app.add_js_file("pdf-download.js")


def _copy(app, exception):
    if exception is None and app.builder.format == "html" and _pdf(app).is_file():
        shutil.copyfile(_pdf(app), Path(app.outdir) / "_static" / "book.pdf")


def setup(app):
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
