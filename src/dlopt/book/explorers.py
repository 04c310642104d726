r"""Explorers that work in the static HTML book: a grid of hyperparameters, precomputed by
:func:`dlopt.run`, drawn by Plotly in the browser.

An :class:`Explorer` is a function ``compute(**params) -> {trace: (x, y)}`` (which calls
:func:`dlopt.run`), the grid of values each parameter takes (one slider or menu per parameter),
and the panels and traces to draw. Displayed in a page it

- runs ``compute`` at every grid point (at build time) and writes the arrays, rounded to four
  significant digits, as JSON into the page (``text/html``); the page's controls are native
  ``<input type="range">`` / ``<select>`` elements labelled with the symbol and value
  (``η = 0.40``), and moving one only *selects* another grid point's arrays and hands them to
  ``Plotly.react`` (the JavaScript, ``explorer.js`` beside this module, holds no update rule);
- gives a static PNG of the current setting (``image/png``, drawn with matplotlib in the book's
  style) for print and PDF;
- in Jupyter, :meth:`Explorer.widget` gives ipywidgets sliders that call ``compute`` live, for
  any value between the grid's ends.

The HTML book serves Plotly (``plotly.js-basic-dist-min``, vendored under ``_ext/vendor/``)
from its own ``_static/`` folder and adds it only to pages that hold an explorer
(``_ext/book_html.py``). :data:`BOOK` lists the book's explorers with their pages; every one of
them is built by a function of this module that its page calls.
"""

from __future__ import annotations

import html as _html
import io
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dlopt.optim.runner import Trajectory, run

__all__ = [
    "BOOK",
    "Control",
    "Explorer",
    "Panel",
    "PathExplorer",
    "Trace",
    "adam_betas",
    "adaptive_learning_rate",
    "gd_step_size",
    "langevin_escape",
    "momentum_quadratic",
    "momentum_rate_map",
    "momentum_rosenbrock",
    "overshoot",
    "schedule_basin",
    "sgd_noise_floor",
    "standalone_page",
]

JS = Path(__file__).with_name("explorer.js")
_LEVEL_COLOR = "#8fa8bf"  # level sets (explorer.js draws them in the same colour)
#: Where the book serves Plotly, relative to its ``_static/`` folder (see ``_ext/book_html.py``).
PLOTLY_JS = "vendor/plotly/plotly-basic.min.js"
#: Significant digits of the numbers written into a page.
DIGITS = 4


_DISPLAYED = itertools.count(1)  # numbers the explorers shown in this process (element ids)
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Control:
    """One slider (numbers) or menu (strings): the parameter ``name`` passed to ``compute``, the
    grid of values the page offers, the symbol its label shows (``"η"``) and the number format."""

    name: str
    values: Sequence[Any]
    symbol: str | None = None
    fmt: str = ".3g"
    log: bool = False

    def __post_init__(self):
        if len(self.values) < 1:
            raise ValueError(f"control {self.name!r} needs at least one value")
        object.__setattr__(self, "values", tuple(self.values))

    @property
    def categorical(self) -> bool:
        return isinstance(self.values[0], str)

    def label(self, value) -> str:
        """The value as the label shows it: ``1e-08`` as ``10⁻⁸``, ``2.5e-05`` as ``2.5·10⁻⁵``."""
        if isinstance(value, str):
            return value
        text = format(value, self.fmt)
        if "e" not in text:
            return text
        mantissa, exponent = text.split("e")
        power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
        return power if mantissa == "1" else f"{mantissa}·{power}"

    def nearest(self, value) -> int:
        """Index of the grid value closest to ``value`` (log distance for a log control)."""
        if self.categorical:
            if value not in self.values:
                raise ValueError(f"{self.name} must be one of {self.values}, got {value!r}")
            return self.values.index(value)
        v = np.asarray(self.values, dtype=float)
        if self.log:
            return int(np.argmin(np.abs(np.log(v) - np.log(value))))
        return int(np.argmin(np.abs(v - value)))


@dataclass
class Panel:
    """One set of axes. ``background``: ``("contour", objective, xlim, ylim)`` for level sets, or
    ``("heatmap", x, y, z)`` (a static map, e.g. a rate over a parameter plane)."""

    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xrange: tuple[float, float] | None = None
    yrange: tuple[float, float] | None = None
    xlog: bool = False
    ylog: bool = False
    square: bool = False
    background: tuple | None = None
    colorbar: str | None = None
    zrange: tuple[float, float] | None = None


@dataclass
class Trace:
    """One line or set of markers drawn in panel ``panel``; ``compute`` returns its data under
    ``name``."""

    name: str
    panel: int = 0
    label: str | None = None
    color: str | None = None
    mode: str = "lines"
    dash: str | None = None
    width: float = 1.6
    size: float = 4.0
    symbol: str | None = None
    legend: bool = True


def _fmt_array(a) -> str:
    """A JSON array of numbers rounded to :data:`DIGITS` significant digits (non-finite → null)."""
    a = np.asarray(a, dtype=float).ravel()
    f = "{:.%dg}" % DIGITS
    return "[" + ",".join(f.format(v) if np.isfinite(v) else "null" for v in a.tolist()) + "]"


def _fmt_x(x) -> str:
    """Iteration numbers 0, s, 2s, ... as the stride ``s``; any other x as an array."""
    x = np.asarray(x, dtype=float)
    if len(x) >= 2 and np.all(np.diff(x) == x[1] - x[0]) and float(x[0]).is_integer() \
            and float(x[1] - x[0]).is_integer():
        step = int(x[1] - x[0])
        return str(step) if x[0] == 0 else '{"o":%d,"s":%d}' % (int(x[0]), step)
    if len(x) == 1 and x[0] == 0:
        return "1"
    return _fmt_array(x)


def _heatmap_image(bg: dict) -> dict:
    """A heatmap as a PNG (viridis, as :mod:`dlopt.plots`) that the page stretches over the
    cells' extent: Plotly's smaller bundle has no heatmap trace, and an image is not redrawn when
    a slider moves."""
    import base64

    from matplotlib import colormaps
    from PIL import Image

    x, y, z = bg["x"], bg["y"], np.asarray(bg["z"], dtype=float)
    lo = bg.get("zmin", float(np.nanmin(z)))
    hi = bg.get("zmax", float(np.nanmax(z)))
    rgba = colormaps["viridis"](np.clip((z - lo) / (hi - lo), 0, 1), bytes=True)[::-1]  # top row first
    buf = io.BytesIO()
    Image.fromarray(rgba).convert("RGB").save(buf, format="png", optimize=True)
    dx, dy = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)  # cells centred on x, y
    return {"type": "image", "src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "x0": float(x[0] - dx / 2), "x1": float(x[-1] + dx / 2), "y0": float(y[0] - dy / 2),
            "y1": float(y[-1] + dy / 2), "zmin": lo, "zmax": hi, "colorbar": bg.get("colorbar")}


def _encode(v) -> str:
    """JSON of nested dicts/lists with numpy arrays written by :func:`_fmt_array`."""
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_encode(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_encode(x) for x in v) + "]"
    if isinstance(v, np.ndarray):
        return _fmt_array(v) if v.ndim == 1 else "[" + ",".join(_encode(r) for r in v) + "]"
    return json.dumps(v)


def rounded(a) -> np.ndarray:
    """``a`` as a page holds it (:data:`DIGITS` significant digits), for comparisons."""
    a = np.asarray(a, dtype=float)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a)
    out[ok] = [float("{:.{}g}".format(v, DIGITS)) for v in a[ok].ravel()]
    return out


class Explorer:
    """A figure whose data come from ``compute(**params)`` over a grid of parameter values.

    Parameters
    ----------
    compute
        ``compute(**params) -> dict``: for every trace name an ``(x, y)`` pair (``x=None`` means
        the iteration numbers ``0, 1, ...``), and optionally ``"text"``: a sentence shown under
        the figure (what happened at this setting).
    controls
        The :class:`Control` of every parameter, in the order of the page's sliders.
    panels, traces
        What is drawn (:class:`Panel`, :class:`Trace`).
    value
        The initial setting ``{name: value}`` (default: each control's middle value); snapped to
        the grid in the page.
    panel_height
        Height of one panel in pixels in the page.
    """

    def __init__(self, compute: Callable[..., Mapping[str, Any]], controls: Sequence[Control],
                 panels: Sequence[Panel], traces: Sequence[Trace], *, value: Mapping | None = None,
                 title: str = "", panel_height: int = 340, name: str = "explorer"):
        if not controls:
            raise ValueError("an explorer needs at least one control")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be distinct, got {names}")
        for t in traces:
            if not 0 <= t.panel < len(panels):
                raise ValueError(f"trace {t.name!r} is in panel {t.panel}, there are {len(panels)} panels")
        self.compute = compute
        self.controls = list(controls)
        self.panels = list(panels)
        self.traces = list(traces)
        from dlopt.book.plots import COLORS

        for i, t in enumerate(self.traces):
            if t.color is None:
                t.color = COLORS[i % len(COLORS)]
            if t.label is None:
                t.label = t.name
        self.title = title
        self.name = name
        self.panel_height = int(panel_height)
        self.params: dict = {c.name: c.values[len(c.values) // 2] for c in self.controls}
        unknown = set(value or {}) - set(names)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; the controls are {names}")
        self.params.update(value or {})
        self._grid: dict | None = None
        self.precompute_seconds: float | None = None  # wall clock
        self.precompute_cpu_seconds: float | None = None  # this process's CPU time

    # -- computing ------------------------------------------------------------------------------
    def grid_points(self):
        """``(flat_index, params)`` for every grid point, in the page's order (last control
        fastest)."""
        for i, combo in enumerate(itertools.product(*(c.values for c in self.controls))):
            yield i, dict(zip((c.name for c in self.controls), combo))

    def params_at(self, index: int) -> dict:
        """The parameters of grid point ``index``."""
        sizes = [len(c.values) for c in self.controls]
        out = {}
        for c, n in zip(reversed(self.controls), reversed(sizes)):
            index, j = divmod(index, n)
            out[c.name] = c.values[j]
        return {c.name: out[c.name] for c in self.controls}

    def index_of(self, **params) -> int:
        """The flat index of the grid point nearest to ``params``."""
        i = 0
        for c in self.controls:
            i = i * len(c.values) + c.nearest(params.get(c.name, self.params[c.name]))
        return i

    def precompute(self) -> dict:
        """Run ``compute`` at every grid point (once; cached); returns ``{trace: [(x, y), ...],
        "text": [...]}``. ``precompute_seconds`` records the time it took."""
        if self._grid is None:
            t0, c0 = time.perf_counter(), time.process_time()
            data: dict = {t.name: [] for t in self.traces}
            texts = []
            for _, params in self.grid_points():
                out = self.compute(**params)
                for t in self.traces:
                    x, y = out[t.name]
                    y = np.asarray(y, dtype=float)
                    data[t.name].append((np.arange(len(y)) if x is None else np.asarray(x, float), y))
                texts.append(str(out.get("text", "")))
            data["text"] = texts
            self._grid = data
            self.precompute_seconds = time.perf_counter() - t0
            self.precompute_cpu_seconds = time.process_time() - c0
        return self._grid

    def update(self, **params) -> "Explorer":
        """Set the shown parameters (merged into the current ones)."""
        unknown = set(params) - {c.name for c in self.controls}
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        self.params.update(params)
        return self

    # -- the page -------------------------------------------------------------------------------
    @staticmethod
    def _levels(objective, xlim, ylim, levels: int = 16) -> dict:
        """Level sets as polylines (``None`` between lines), spaced logarithmically above the
        minimum (:func:`dlopt.plots.log_levels`, as in :func:`dlopt.plots.contour`): drawn as one
        line trace, so a redraw does not recompute contours."""
        import contourpy

        from dlopt.book.plots import log_levels

        X, Y, Z = objective.on_grid(xlim, ylim, 90)
        gen = contourpy.contour_generator(X, Y, Z, line_type=contourpy.LineType.Separate)
        xs: list = []
        ys: list = []
        for level in log_levels(Z, levels):
            for piece in gen.lines(level):
                line = np.asarray(piece, dtype=float)
                line = np.vstack([line[:-1:3], line[-1:]]) if len(line) > 40 else line
                xs.extend([*line[:, 0], np.nan])
                ys.extend([*line[:, 1], np.nan])
        return {"type": "contour", "x": np.array(xs), "y": np.array(ys)}

    def _background(self, p: Panel, params: Mapping | None = None) -> dict | None:
        """The panel's static background; for ``("contour-by", control, {value: objective}, xlim,
        ylim)`` the one of the current value of ``control`` (or, with ``params=None`` in
        :meth:`spec_json`, all of them)."""
        b = p.background
        if b is None:
            return None
        if b[0] == "contour":
            return self._levels(*b[1:4])
        if b[0] == "contour-by":
            _, name, objectives, xlim, ylim = b
            if params is not None:
                return self._levels(objectives[params[name]], xlim, ylim)
            control = next(i for i, c in enumerate(self.controls) if c.name == name)
            return {"by": control, "list": [self._levels(objectives[v], xlim, ylim)
                                            for v in self.controls[control].values]}
        _, x, y, z = b
        out: dict[str, Any] = {"type": "heatmap", "x": np.asarray(x), "y": np.asarray(y), "z": np.asarray(z)}
        if p.zrange is not None:
            out["zmin"], out["zmax"] = p.zrange
        if p.colorbar:
            out["colorbar"] = p.colorbar
        return out

    def spec_json(self) -> str:
        """The page's JSON: controls, panels, traces and the data of every grid point."""
        grid = self.precompute()
        controls = [{"name": c.name, "symbol": c.symbol or c.name, "values": list(c.values),
                     "labels": [c.label(v) for v in c.values]} for c in self.controls]
        panels: list[tuple[dict, dict | None]] = []
        for p in self.panels:
            d: dict = {"title": p.title, "xlabel": p.xlabel, "ylabel": p.ylabel, "xrange": p.xrange,
                       "yrange": p.yrange, "xlog": p.xlog, "ylog": p.ylog, "square": p.square}
            bg = self._background(p)
            if bg is not None and bg.get("type") == "heatmap":
                bg = _heatmap_image(bg)
            if bg is not None:
                d["background"] = "@BG%d@" % len(panels)
            panels.append((d, bg))
        traces = [{"name": t.name, "panel": t.panel, "label": t.label, "color": t.color, "mode": t.mode,
                   "dash": t.dash, "width": t.width, "size": t.size, "symbol": t.symbol,
                   "legend": t.legend} for t in self.traces]
        head = json.dumps({"controls": controls, "panels": [d for d, _ in panels], "traces": traces,
                           "panel_height": self.panel_height, "text": grid["text"]},
                          ensure_ascii=False, separators=(",", ":"))
        for k, (_, bg) in enumerate(panels):
            if bg is not None:
                head = head.replace('"@BG%d@"' % k, _encode(bg))
        data = ",".join(f'{json.dumps(t.name)}:[' + ",".join(f"[{_fmt_x(x)},{_fmt_array(y)}]"
                                                            for x, y in grid[t.name]) + "]"
                        for t in self.traces)
        return head[:-1] + ',"data":{' + data + "}}"

    def html(self, uid: str | None = None) -> str:
        """The explorer as HTML: labelled controls, the plot area, the data and the renderer."""
        uid = uid or f"{self.name}-{next(_DISPLAYED)}"  # deterministic, unique within a page
        rows = []
        for c in self.controls:
            cid = f"{uid}-{c.name}"
            j = c.nearest(self.params[c.name])
            symbol = _html.escape(c.symbol or c.name)
            shown = f"{symbol} = {_html.escape(c.label(c.values[j]))}"
            if c.categorical:
                options = "".join(f'<option value="{i}"{" selected" if i == j else ""}>{_html.escape(v)}</option>'
                                  for i, v in enumerate(c.values))
                rows.append(f'<div class="dlopt-control"><label for="{cid}">{symbol}</label>'
                            f'<select id="{cid}" data-control="{c.name}">{options}</select></div>')
            else:
                rows.append(f'<div class="dlopt-control"><label for="{cid}" data-readout="{c.name}">{shown}</label>'
                            f'<input type="range" id="{cid}" data-control="{c.name}" min="0" '
                            f'max="{len(c.values) - 1}" step="1" value="{j}" aria-valuetext="{shown}"></div>')
        spec = self.spec_json().replace("</", "<\\/")
        title = f'<p class="dlopt-explorer-title">{_html.escape(self.title)}</p>' if self.title else ""
        return (f'<div class="dlopt-explorer" id="{uid}" data-name="{self.name}">{_STYLE}{title}'
                f'<div class="dlopt-controls">{"".join(rows)}</div>'
                f'<div class="dlopt-explorer-plot"></div>'
                f'<p class="dlopt-explorer-text" aria-live="polite"></p>'
                f'<script type="application/json">{spec}</script>'
                f"<script>{JS.read_text()}</script></div>")

    # -- the static figure ----------------------------------------------------------------------
    def snapshot(self, **params):
        """A matplotlib figure of the setting ``params`` (default: the current one), computed
        live: the print/PDF version of the explorer."""
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from dlopt.book import plots

        p = {**self.params, **params}
        out = self.compute(**p)
        n = len(self.panels)
        fig = Figure(figsize=(min(plots.COLUMN_WIDTH, 3.6 * n), 3.1), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, n, squeeze=False)[0]
        for ax, panel in zip(axes, self.panels):
            bg = self._background(panel, p)
            if bg is not None and bg["type"] == "contour":
                ax.plot(bg["x"], bg["y"], color=_LEVEL_COLOR, lw=0.7)
            elif bg is not None:
                im = ax.pcolormesh(bg["x"], bg["y"], bg["z"], shading="nearest", cmap="viridis",
                                   vmin=bg.get("zmin"), vmax=bg.get("zmax"))
                if panel.colorbar:
                    fig.colorbar(im, ax=ax, label=panel.colorbar)
            ax.set(xlabel=panel.xlabel, ylabel=panel.ylabel, title=panel.title)
            if panel.xlog:
                ax.set_xscale("log")
            if panel.ylog:
                ax.set_yscale("log")
            if panel.xrange:
                ax.set_xlim(panel.xrange)
            if panel.yrange:
                ax.set_ylim(panel.yrange)
            if panel.square:
                ax.set_aspect("equal", adjustable="box")
                ax.grid(False)
        for t in self.traces:
            x, y = out[t.name]
            y = np.asarray(y, dtype=float)
            x = np.arange(len(y)) if x is None else np.asarray(x, dtype=float)
            marker = ({"star": "*", "x": "X", "square": "s"}.get(t.symbol or "", "o")
                      if "markers" in t.mode else None)
            ls = "none" if t.mode == "markers" else {"dash": "--", "dot": ":"}.get(t.dash or "", "-")
            axes[t.panel].plot(x, y, color=t.color, ls=ls, marker=marker, ms=t.size * 0.7, lw=t.width * 0.8,
                               mec="white" if t.color == "#ffffff" else None, zorder=5 if marker else 2,
                               label=t.label if t.legend else None)
        handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
        caption = ", ".join(f"{c.symbol or c.name} = {c.label(p[c.name])}" for c in self.controls)
        text = str(out.get("text", ""))
        fig.suptitle(caption + (f" — {text}" if text else ""), fontsize=10)
        return fig

    def _repr_png_(self) -> bytes:
        from dlopt.book import plots

        buf = io.BytesIO()
        plots.fit_to_column(self.snapshot()).savefig(buf, format="png")
        return buf.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """``text/html`` (the interactive explorer, for the HTML book), ``image/png`` (a static
        snapshot, for print/PDF) and ``text/plain``."""
        return {"text/html": self.html(), "image/png": self._repr_png_(), "text/plain": repr(self)}

    def __repr__(self) -> str:
        grid = " × ".join(f"{c.name}: {len(c.values)}" for c in self.controls)
        return f"<{type(self).__name__} {self.name!r} ({grid} grid points)>"

    # -- live in Jupyter ------------------------------------------------------------------------
    def widget(self):
        """The same explorer live in Jupyter (ipywidgets): sliders take any value between the
        grid's ends and every move calls ``compute`` again; returns an ``ipywidgets.VBox``."""
        import ipywidgets as w

        controls = {}
        for c in self.controls:
            v = self.params[c.name]
            if c.categorical:
                controls[c.name] = w.Dropdown(options=list(c.values), value=v, description=c.symbol or c.name)
            elif c.log:
                lo, hi = np.log10(min(c.values)), np.log10(max(c.values))
                controls[c.name] = w.FloatLogSlider(value=v, min=lo, max=hi, step=(hi - lo) / 200,
                                                    description=c.symbol or c.name, readout_format=".3g")
            elif all(float(x).is_integer() for x in c.values):
                controls[c.name] = w.IntSlider(value=int(v), min=int(min(c.values)), max=int(max(c.values)),
                                               description=c.symbol or c.name)
            else:
                lo, hi = float(min(c.values)), float(max(c.values))
                controls[c.name] = w.FloatSlider(value=v, min=lo, max=hi, step=(hi - lo) / 200,
                                                 description=c.symbol or c.name, readout_format=".3g")
        image = w.Image(format="png", value=self._repr_png_())

        def on_change(change):
            self.update(**{k: c.value for k, c in controls.items()})
            image.value = self._repr_png_()

        for c in controls.values():
            c.observe(on_change, names="value")
        return w.VBox([w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap")), image])


def standalone_page(explorers: Sequence[Explorer], plotly_src: str, title: str = "dlopt explorers") -> str:
    """A complete HTML page holding ``explorers``, loading Plotly from ``plotly_src`` (a path
    relative to the page, as the book does): for the browser test, the benchmark and
    screenshots, without building the book."""
    body = "\n".join(ex.html(uid=f"{ex.name}-{i}") for i, ex in enumerate(explorers))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,">'
            f"<title>{_html.escape(title)}</title><script defer src=\"{plotly_src}\"></script>"
            f"<style>body{{font-family:sans-serif;max-width:820px;margin:0 auto;padding:0 12px}}</style>"
            f"</head><body>{body}</body></html>")


_STYLE = """<style>
.dlopt-explorer{margin:1em 0;max-width:100%}
.dlopt-explorer .dlopt-controls{display:flex;flex-wrap:wrap;gap:.4em 1.6em;align-items:center}
.dlopt-explorer .dlopt-control{display:flex;flex-direction:column;min-width:11em;flex:1 1 11em;max-width:22em}
.dlopt-explorer .dlopt-control label{font-variant-numeric:tabular-nums;font-size:.95em}
.dlopt-explorer .dlopt-control input[type=range]{width:100%;margin:.2em 0}
.dlopt-explorer .dlopt-explorer-plot{width:100%;min-height:200px}
.dlopt-explorer .dlopt-explorer-text{font-size:.9em;margin:.2em 0 0;min-height:1.3em}
.dlopt-explorer .dlopt-explorer-title{font-weight:600;margin:0 0 .3em}
</style>"""


# ---------------------------------------------------------------------------------------------
# Paths on a 2-D objective next to their loss curves.


def _accepted(rule: Callable) -> set[str] | None:
    import inspect

    params = inspect.signature(rule).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


class PathExplorer(Explorer):
    """Paths of several update rules from one start on a 2-D objective (left), and their loss
    gaps :math:`f(x_k)-f^\\star` on a log scale (right), over a grid of hyperparameters.

    ``methods`` is ``{label: rule}`` or ``{label: (rule, fixed_hyperparameters)}``; a rule gets
    the parameters it accepts (``lr``, ``beta``, ...), the fixed ones taking precedence.
    ``controls`` are the sliders; ``objective`` may instead be a function of the parameters
    (``objective_of``) when a slider changes the landscape. The page shows the first
    ``path_steps`` iterates (every ``path_every``-th) and the loss every ``loss_every`` steps;
    :meth:`runs` keeps the full runs, and :meth:`update` stores them in ``trajectories``.
    """

    def __init__(self, objective, x0, methods: Mapping[str, Any], controls: Sequence[Control], *,
                 steps: int = 200, xlim=(-2, 2), ylim=(-2, 2), loss_ylim=(1e-10, 1e2),
                 minimum: float | None = None, path_steps: int | None = None, path_every: int = 1,
                 loss_every: int = 1, objective_of: Callable | None = None, blowup: float = 1e12,
                 describe: Callable[[dict, dict], str] | None = None,
                 value: Mapping | None = None, title: str = "", name: str = "paths"):
        self.objective, self.objective_of = objective, objective_of
        if objective.dim != 2:
            raise ValueError(f"PathExplorer needs a 2-D objective, got dim={objective.dim}")
        if not methods:
            raise ValueError("give at least one method")
        self.x0 = np.asarray(x0, dtype=float)
        self.steps = int(steps)
        self.methods = {}
        for label, m in methods.items():
            rule, fixed = (m if isinstance(m, tuple) else (m, {}))
            self.methods[label] = (rule, dict(fixed), _accepted(rule))
        self.minimum = minimum
        self.path_steps = self.steps if path_steps is None else int(path_steps)
        self.path_every, self.loss_every = int(path_every), int(loss_every)
        self.blowup = float(blowup)
        self.describe = describe
        self.trajectories: dict[str, Trajectory] = {}
        panels = [Panel(xlabel="x₁", ylabel="x₂", xrange=tuple(xlim), yrange=tuple(ylim), square=True,
                        background=("contour", objective, xlim, ylim)),
                  Panel(xlabel="iteration k", ylabel="f(xₖ) − f*", ylog=True, xrange=(0, self.steps),
                        yrange=tuple(loss_ylim))]
        traces = []
        from dlopt.book.plots import COLORS

        for i, label in enumerate(self.methods):
            color = COLORS[i % len(COLORS)]
            traces.append(Trace(f"path:{label}", 0, label, color, width=1.3, legend=False))
            traces.append(Trace(f"loss:{label}", 1, label, color))
        traces.append(Trace("start", 0, "start", "#000000", mode="markers", size=8, symbol="square", legend=False))
        traces.append(Trace("minimum", 0, "minimum", "#D55E00", mode="markers", size=12, symbol="star",
                            legend=False))
        super().__init__(self._frame, controls, panels, traces, value=value, title=title, name=name)

    def _objective(self, params):
        return self.objective if self.objective_of is None else self.objective_of(**params)

    def _f_star(self, f) -> float:
        if self.minimum is not None:
            return float(self.minimum)
        m = getattr(f, "minimum", 0.0)
        return 0.0 if callable(m) or m is None else float(m)

    @staticmethod
    def _minimizers(f) -> np.ndarray:
        """The objective's minimizers as rows (none when it does not know them)."""
        mins = getattr(f, "minimizers", None)
        if mins is None:
            try:
                mins = getattr(f, "minimizer", None)
            except (ValueError, NotImplementedError):
                mins = None
        return np.empty((0, 2)) if mins is None else np.atleast_2d(np.asarray(mins, dtype=float))

    def runs(self, **params) -> dict[str, Trajectory]:
        """Run every method with ``params`` (merged into the current ones) through
        :func:`dlopt.run`; a path is cut where ``|f|`` exceeds ``blowup`` (``diverged``)."""
        p = {**self.params, **params}
        f = self._objective(p)
        out = {}
        for label, (rule, fixed, accepted) in self.methods.items():
            kw = {k: v for k, v in p.items() if accepted is None or k in accepted}
            kw.update(fixed)
            out[label] = run(rule, f, self.x0, self.steps, blowup=self.blowup, **kw)
        return out

    def update(self, **params) -> "PathExplorer":
        """Set the parameters and recompute the full runs (``self.trajectories``)."""
        super().update(**params)
        self.trajectories = self.runs()
        return self

    def _frame(self, **params) -> dict:
        p = {**self.params, **params}
        f = self._objective(p)
        f_star = self._f_star(f)
        out: dict = {}
        diverged = []
        runs = self.runs(**p)
        for label, t in runs.items():
            xs = t.xs
            assert xs is not None and t.values is not None
            shown = xs[: self.path_steps + 1: self.path_every]
            out[f"path:{label}"] = (shown[:, 0], shown[:, 1])
            k = np.arange(0, len(t.values), self.loss_every)
            out[f"loss:{label}"] = (k, np.maximum(t.values[k] - f_star, 1e-300))
            if t.diverged:
                diverged.append(label)
        out["start"] = ([self.x0[0]], [self.x0[1]])
        out["minimum"] = tuple(self._minimizers(f).T)
        if self.describe is not None:
            out["text"] = self.describe(runs, p)
        else:
            out["text"] = "diverged: " + ", ".join(diverged) if diverged else ""
        return out


# ---------------------------------------------------------------------------------------------
# The book's explorers, one function per page (BOOK lists them). Each is deterministic: noisy
# runs draw from a generator seeded from the grid point.


def _seeded(*key) -> np.random.Generator:
    return np.random.default_rng([int(round(float(k) * 1e6)) if not isinstance(k, str) else len(k)
                                  for k in key])


def gd_step_size() -> PathExplorer:
    """Gradient descent on a quadratic with curvatures ``L = 1`` and ``μ = 1/κ``: the step size
    against ``2/L`` (below: converges; at ``2/L``: a bounce that never ends; above: diverges),
    and the zig-zag against the condition number (page *Choosing the step size*)."""
    from dlopt.optim import rules
    from dlopt.problems import functions

    def quadratic(kappa, **_):
        return functions.Quadratic.from_eigenvalues([1.0 / kappa, 1.0], seed=2)

    def describe(runs, p):
        rho = max(abs(1 - p["lr"] / p["kappa"]), abs(1 - p["lr"]))
        verdict = "converges" if rho < 1 else "bounces for ever (η = 2/L)" if rho == 1 else "diverges"
        return f"the error shrinks per step by max|1 − ηλᵢ| = {rho:.3f}: {verdict}"

    kappas = (1, 2, 5, 10, 25, 50, 100)
    ex = PathExplorer(quadratic(10), [-2.0, 1.5], {"gradient descent": rules.gd},
                      [Control("lr", tuple(np.round(np.arange(0.1, 2.21, 0.1), 2)), "η", ".2f"),
                       Control("kappa", kappas, "κ", "g")],
                      steps=60, xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), loss_ylim=(1e-12, 1e3),
                      objective_of=quadratic, describe=describe, value={"lr": 1.0, "kappa": 10},
                      title="Gradient descent on a quadratic with L = 1 and μ = 1/κ", name="gd-step-size")
    ex.panels[0].background = ("contour-by", "kappa", {k: quadratic(k) for k in kappas}, (-2.6, 2.6),
                               (-2.6, 2.6))
    return ex


def _momentum_methods():
    from dlopt.optim import rules

    return {"gradient descent": rules.gd, "heavy ball": rules.heavy_ball, "Nesterov": rules.nesterov}


def momentum_quadratic() -> PathExplorer:
    """Gradient descent, heavy ball and Nesterov on a quadratic with κ = 25 over (α, β) (page
    *Exploring α and β*)."""
    from dlopt.problems import functions

    f = functions.Quadratic.from_eigenvalues([0.04, 1.0], seed=2)
    return PathExplorer(f, [-2.0, 1.5], _momentum_methods(),
                        [Control("lr", (0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0), "α", "g",
                                 log=True),
                         Control("beta", (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99), "β", "g")],
                        steps=150, path_steps=80, loss_every=3, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5),
                        loss_ylim=(1e-16, 1e2), value={"lr": 1.0, "beta": 0.8}, name="momentum-quadratic")


def momentum_rosenbrock() -> PathExplorer:
    """The same three methods on Rosenbrock's function (page *Exploring α and β*)."""
    from dlopt.problems import functions

    return PathExplorer(functions.Rosenbrock(), [-1.5, 2.0], _momentum_methods(),
                        [Control("lr", (1e-4, 2e-4, 5e-4, 7e-4, 1e-3, 1.5e-3, 2e-3, 3e-3), "α", "g",
                                 log=True),
                         Control("beta", (0.0, 0.5, 0.8, 0.9, 0.99), "β", "g")],
                        steps=500, path_every=5, loss_every=5, xlim=(-2, 2), ylim=(-1, 3),
                        loss_ylim=(1e-12, 1e3), value={"lr": 1e-3, "beta": 0.9}, name="momentum-rosenbrock")


def momentum_rate_map() -> Explorer:
    """The heavy ball's rate over the (α, β) plane on a quadratic with κ = 100 (μ = 0.01, L = 1),
    with a pointer at the slider setting and the optimum (star), next to the loss of the
    :func:`dlopt.run` at that setting and the line ρ²ᵏ the rate predicts (page *The best α and β*)."""
    from dlopt.analysis import quadratic_analysis as qa
    from dlopt.optim import rules
    from dlopt.problems import functions

    mu, L = 0.01, 1.0
    f = functions.Quadratic.from_eigenvalues([mu, L], seed=5)
    x0 = f.minimizer + np.linalg.eigh(f.A)[1] @ np.array([1.0, 1.0])
    lam = f.eigenvalues
    alphas = tuple(np.round(np.linspace(0.2, 3.8, 13), 2))
    betas = tuple(np.round(np.linspace(0.0, 0.96, 13), 2))
    A, B = np.linspace(0.01, 4.0, 100), np.linspace(0.0, 0.99, 70)
    rho = np.clip(qa.rate_map(lam, A, B), 0.8, 1.0)
    lr_s, beta_s, _ = qa.heavy_ball_optimal(mu, L)
    steps = 400

    def compute(lr, beta):
        t = run(rules.heavy_ball, f, x0, steps, lr=lr, beta=beta)
        assert t.values is not None
        r = float(qa.rate(lam, lr, beta))
        k = np.arange(0, len(t.values), 4)
        e0 = t.values[0] - f.minimum
        return {"pointer": ([lr], [beta]), "optimum": ([lr_s], [beta_s]),
                "loss": (k, np.maximum(t.values[k] - f.minimum, 1e-300)),
                "predicted": (k, e0 * min(r, 1.5) ** (2 * k)),
                "text": f"predicted rate ρ = {r:.3f} per step" + (" (unstable)" if r >= 1 else "")
                        + f"; the optimum ρ* = {float(qa.rate(lam, lr_s, beta_s)):.3f} (star)"}

    return Explorer(compute, [Control("lr", alphas, "α", "g"), Control("beta", betas, "β", "g")],
                    [Panel(title="heavy ball: rate ρ(α, β), clipped to [0.8, 1]", xlabel="step size α",
                           ylabel="momentum β", xrange=(0.01, 4.0), yrange=(0.0, 0.99),
                           background=("heatmap", A, B, rho), colorbar="ρ", zrange=(0.8, 1.0)),
                     Panel(xlabel="iteration k", ylabel="f(xₖ) − f*", ylog=True, xrange=(0, steps),
                           yrange=(1e-16, 1e3))],
                    [Trace("pointer", 0, "setting", "#D55E00", mode="markers", size=13, symbol="x",
                           legend=False),
                     Trace("optimum", 0, "optimum", "#ffffff", mode="markers", size=13, symbol="star",
                           legend=False),
                     Trace("loss", 1, "heavy ball", "#0072B2"),
                     Trace("predicted", 1, "ρ²ᵏ (from the map)", "#000000", dash="dot")],
                    value={"lr": 2.0, "beta": 0.4}, name="momentum-rate-map")


def adaptive_learning_rate() -> PathExplorer:
    """AdaGrad, RMSProp and Adam against gradient descent at its best stable step on
    ``½(10x₁² + 0.05x₂²)``, over a common learning rate (page *Per-coordinate step sizes*)."""
    from dlopt.optim import rules
    from dlopt.problems import functions

    f = functions.Quadratic.from_eigenvalues([10.0, 0.05])
    lrs = (1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0)
    return PathExplorer(f, [-4.0, 4.0], {"GD (η = 1.9/L)": (rules.gd, {"lr": 1.9 / f.L}), "AdaGrad": rules.adagrad,
                                         "RMSProp": rules.rmsprop, "Adam": rules.adam},
                        [Control("lr", lrs, "η", "g", log=True)], steps=300, path_every=3, loss_every=3,
                        xlim=(-4.5, 4.5), ylim=(-1.5, 4.5), loss_ylim=(1e-12, 1e3), value={"lr": 0.3},
                        name="adaptive-learning-rate")


def adam_betas() -> Explorer:
    """Adam's steps on a fixed gradient sequence -- coordinate 1 steady with an outlier 10 at
    step 5, coordinate 2 flipping sign -- over (β₁, β₂, ε), with RMSProp (α = 0.99, the same ε) for
    comparison
    (page *Adam*)."""
    from dlopt.optim import rules

    T, lr = 80, 0.1
    grads = np.ones((T, 2))
    grads[4, 0] = 10.0
    grads[:, 1] = (-1.0) ** np.arange(T)

    def compute(beta1, beta2, eps):
        oracle = lambda x, k, rng: grads[k]  # noqa: E731 - the gradients are given
        adam = run(rules.adam, oracle, np.zeros(2), T, lr=lr, betas=(beta1, beta2), eps=eps, record="x")
        rms = run(rules.rmsprop, oracle, np.zeros(2), T, lr=lr, alpha=0.99, eps=eps, record="x")
        assert adam.xs is not None and rms.xs is not None
        a, r = -np.diff(adam.xs, axis=0) / lr, -np.diff(rms.xs, axis=0) / lr
        t = np.arange(1, T + 1)
        late = a[T // 2:, 1]
        return {"adam1": (t, a[:, 0]), "rms1": (t, r[:, 0]), "adam2": (t, a[:, 1]), "rms2": (t, r[:, 1]),
                "text": f"Adam's late steps on the flipping coordinate: |Δx/η| ≈ {np.abs(late).mean():.3f}; "
                        f"coordinate 1 back to {a[-1, 0]:.2f} η at t = {T}"}

    return Explorer(compute, [Control("beta1", (0.0, 0.5, 0.8, 0.9, 0.95, 0.99), "β₁", "g"),
                              Control("beta2", (0.9, 0.99, 0.995, 0.999, 0.9999), "β₂", "g"),
                              Control("eps", (1e-8, 1e-4, 1e-2, 0.1, 1.0), "ε", "g", log=True)],
                    [Panel(title="coordinate 1: outlier at t = 5", xlabel="step t", ylabel="−Δxₜ/η", ylog=True,
                           xrange=(0, T), yrange=(1e-2, 30)),
                     Panel(title="coordinate 2: sign flips", xlabel="step t", ylabel="−Δxₜ/η", xrange=(0, T),
                           yrange=(-3.2, 3.2))],
                    [Trace("adam1", 0, "Adam", "#0072B2"),
                     Trace("rms1", 0, "RMSProp (α = 0.99)", "#D55E00", dash="dot"),
                     Trace("adam2", 1, "Adam", "#0072B2", legend=False),
                     Trace("rms2", 1, "RMSProp (α = 0.99)", "#D55E00", dash="dot", legend=False)],
                    value={"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, name="adam-betas")


def schedule_basin(runs: int = 100) -> Explorer:
    """Noisy SGD (σ² = 20) on the two-basin landscape from the sharp minimum, for 3000 steps
    under a decaying schedule with an optional linear warm-up: the step size (left) and the
    fraction of ``runs`` runs in the flat basin (right) (page *Learning-rate schedules*)."""
    from dlopt.optim import rules, schedules
    from dlopt.optim.runner import gradient_noise
    from dlopt.problems import functions

    f = functions.TwoBasin()
    K, sigma2, eta_end = 3000, 20.0, 4e-4

    def schedule(shape, warmup, eta0):
        decay_steps = K - warmup
        decay = {"cosine": schedules.CosineAnnealing(eta0, T_max=decay_steps, eta_min=eta_end),
                 "exponential": schedules.ExponentialDecay(eta0, gamma=(eta_end / eta0) ** (1 / decay_steps)),
                 "step": schedules.MultiStepDecay(eta0, milestones=[decay_steps // 3, 2 * decay_steps // 3],
                                                  gamma=(eta_end / eta0) ** 0.5)}[shape]
        if warmup == 0:
            return decay
        return schedules.Sequential([schedules.LinearWarmup(eta0, warmup), decay], milestones=[warmup])

    def compute(shape, warmup, eta0):
        lr = schedule(shape, int(warmup), eta0)
        t = run(rules.gd, f, np.full((runs, 1), f.x_sharp), K, lr=lr, rng=_seeded(len(shape), warmup, eta0),
                hooks=[gradient_noise(np.sqrt(sigma2))], record=("x", "lr"), every=20, blowup=None)
        assert t.xs is not None and t.lrs is not None
        k = np.arange(0, K + 1, 20)
        share = f.in_flat_basin(t.xs).mean(axis=1)
        return {"lr": (k[:-1], t.lrs[k[:-1]]), "flat": (k, share),
                "text": f"{share[-1]:.0%} of {runs} runs end in the flat basin"}

    return Explorer(compute, [Control("shape", ("cosine", "exponential", "step"), "decay"),
                              Control("warmup", (0, 300, 1000), "warm-up steps", "d"),
                              Control("eta0", (0.02, 0.04, 0.06), "η₀", "g")],
                    [Panel(xlabel="step k", ylabel="step size ηₖ", ylog=True, xrange=(0, K), yrange=(1e-4, 0.1)),
                     Panel(xlabel="step k", ylabel="fraction in the flat basin", xrange=(0, K), yrange=(0, 1))],
                    [Trace("lr", 0, "ηₖ", "#0072B2", legend=False),
                     Trace("flat", 1, "runs in the flat basin", "#D55E00", legend=False)],
                    value={"shape": "cosine", "warmup": 0, "eta0": 0.04}, name="schedule-basin")


def sgd_noise_floor(runs: int = 100) -> Explorer:
    """Mini-batch SGD on a least-squares problem: the mean excess risk of ``runs`` runs against
    the step, over the step size η and the batch size b, with the exact stationary floor (page
    *The noise floor*)."""
    from dlopt.book import stochastic
    from dlopt.problems import data, functions

    X, y, _ = data.linear_regression(m=500, n=4, noise=0.5, seed=3, condition=5.0)
    risk = functions.LeastSquares(X, y)
    H, w_star = risk.hess(risk.minimizer), risk.minimizer
    steps = 800

    def compute(lr, batch):
        batch = int(batch)
        ens = stochastic.ensemble(risk, np.zeros((runs, 4)), steps=steps, lr=lr, record=True,
                                  record_values=False, rng=_seeded(lr, batch),
                                  grad=stochastic.minibatch_oracle(X, y, batch))
        assert ens.xs is not None
        E = ens.xs - w_star
        excess = 0.5 * np.einsum("kri,ij,krj->kr", E, H, E).mean(axis=1)
        floor = 0.5 * np.trace(H @ stochastic.least_squares_stationary(X, y, lr, batch))
        k = np.arange(0, steps + 1, 4)
        tail = excess[steps // 2:].mean()
        return {"excess": (k, excess[k]), "floor": ([0, steps], [floor, floor]),
                "text": f"exact floor {floor:.2e}; measured (second half, mean of {runs} runs) {tail:.2e}"}

    return Explorer(compute, [Control("lr", (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4), "η", "g", log=True),
                              Control("batch", (1, 4, 16, 64), "batch size b", "d")],
                    [Panel(xlabel="step k", ylabel="mean excess risk", ylog=True, xrange=(0, steps),
                           yrange=(1e-5, 10))],
                    [Trace("excess", 0, "SGD (mean of runs)", "#0072B2"),
                     Trace("floor", 0, "exact stationary floor", "#000000", dash="dash")],
                    value={"lr": 0.1, "batch": 1}, name="sgd-noise-floor", panel_height=320)


def overshoot() -> PathExplorer:
    """Heavy ball and Nesterov with α = 0.02 on the double well (x²−1)² + γy² from (2, 1), over
    (γ, β): which well the ball ends in (page *Overshooting*)."""
    from dlopt.optim import rules
    from dlopt.problems import functions

    gammas = (10, 20, 40, 60, 80, 100, 150)

    def describe(runs, p):
        return "; ".join(f"{label}: " + ("diverged" if t.diverged else "ends in the " + (
                                                     "left well" if t.x[0] < 0 else "right well"))
                         for label, t in runs.items())

    def well(gamma, **_):
        return functions.DoubleWell(gamma=gamma)

    ex = PathExplorer(well(20), [2.0, 1.0], {"heavy ball": (rules.heavy_ball, {"lr": 0.02}),
                                             "Nesterov": (rules.nesterov, {"lr": 0.02})},
                      [Control("gamma", gammas, "γ", "g"),
                       Control("beta", (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95), "β", "g")],
                      steps=400, path_every=2, path_steps=300, loss_every=4, xlim=(-2.1, 2.3), ylim=(-1.2, 1.2),
                      loss_ylim=(1e-14, 1e4), objective_of=well, describe=describe,
                      value={"gamma": 20, "beta": 0.6}, name="overshoot")
    ex.panels[0].background = ("contour-by", "gamma", {g: well(g) for g in gammas}, (-2.1, 2.3), (-1.2, 1.2))
    return ex


def langevin_escape(runs: int = 200) -> Explorer:
    """Langevin dynamics (η = 0.02) on the two-basin landscape from the sharp minimum: the share
    of ``runs`` walkers that reached the flat minimum against the step, over the temperature T,
    with the exact mean first-passage time (page *Langevin dynamics*)."""
    from dlopt.book import stochastic
    from dlopt.problems import functions

    f = functions.TwoBasin()
    eta, horizon = 0.02, 4000
    temps = (0.15, 0.2, 0.24, 0.29, 0.35, 0.42, 0.5, 0.6)
    exact = {T: stochastic.mean_first_passage(f, f.x_sharp, f.x_flat, T) / eta for T in temps}

    def compute(temperature):
        ens = stochastic.ensemble(f, np.full((runs, 1), f.x_sharp), steps=horizon, lr=eta,
                                  temperature=temperature, stop=lambda X: X[:, 0] >= f.x_flat,
                                  rng=_seeded(temperature), record_values=False)
        k = np.arange(0, horizon + 1, 20)
        hit = np.where(ens.hit >= 0, ens.hit, horizon + 1)
        share = (hit[None, :] <= k[:, None]).mean(axis=1)
        tau = exact[temperature]
        mean, lo, hi = stochastic.escape_time_mean(ens.hit, horizon)
        return {"share": (k, share), "poisson": (k, 1 - np.exp(-k / tau)),
                "text": f"mean escape {mean:.0f} steps (95% CI {lo:.0f}–{hi:.0f}); exact {tau:.0f}"}

    return Explorer(compute, [Control("temperature", temps, "T", "g")],
                    [Panel(xlabel="step k", ylabel="share of walkers escaped", xrange=(0, horizon), yrange=(0, 1))],
                    [Trace("share", 0, f"{runs} Langevin walkers", "#0072B2"),
                     Trace("poisson", 0, "1 − exp(−k/τ), τ exact", "#000000", dash="dash")],
                    value={"temperature": 0.29}, name="langevin-escape", panel_height=320)


#: The book's explorers: ``name -> (builder, page)``.
BOOK: dict[str, tuple[Callable[[], Explorer], str]] = {
    "gd-step-size": (gd_step_size, "chapters/gradient-descent/step-size.md"),
    "momentum-quadratic": (momentum_quadratic, "chapters/momentum/explorer.md"),
    "momentum-rosenbrock": (momentum_rosenbrock, "chapters/momentum/explorer.md"),
    "momentum-rate-map": (momentum_rate_map, "chapters/momentum/rates.md"),
    "overshoot": (overshoot, "chapters/momentum/overshoot.md"),
    "adaptive-learning-rate": (adaptive_learning_rate, "chapters/adaptive/per-coordinate.md"),
    "adam-betas": (adam_betas, "chapters/adaptive/adam.md"),
    "schedule-basin": (schedule_basin, "chapters/sgd/schedules.md"),
    "sgd-noise-floor": (sgd_noise_floor, "chapters/sgd/noise-floor.md"),
    "langevin-escape": (langevin_escape, "chapters/sgd/langevin.md"),
}
