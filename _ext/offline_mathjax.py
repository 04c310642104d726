"""Serve MathJax from the built book itself, so formulas render offline.

The book is read from ``file://`` on laptops, in Binder and in CI screenshots, where the default
MathJax from a CDN may be unreachable. MathJax 3 comes from PyPI (``django-static-mathjax``, a
plain copy of the MathJax distribution); this extension points Sphinx's ``mathjax_path`` at
``_static/mathjax/tex-svg.js`` and copies that single self-contained file into the build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BUNDLE = "tex-svg.js"  # TeX input, SVG output: one file, no web fonts needed


def _source() -> Path:
    import mathjax  # provided by the django-static-mathjax distribution

    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / BUNDLE
    if not path.exists():
        raise FileNotFoundError(f"MathJax bundle not found at {path}")
    return path


def _config_inited(app, config):
    config.mathjax_path = f"mathjax/{BUNDLE}"


def _copy(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax" / BUNDLE
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_source(), target)


def setup(app):
    _source()  # fail early with a clear message if the package is missing
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
