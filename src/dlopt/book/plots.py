"""The book's figures in one style.

>>> from dlopt import plots
>>> ax = plots.contour(f, xlim=(-2, 2), ylim=(-1, 3))
>>> plots.path(ax, traj, label="GD")
>>> plots.loss_curves({"GD": traj}, ax=plots.axes())
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.style
from matplotlib.rcsetup import cycler
import numpy as np

__all__ = [
    "COLORS",
    "COLUMN_WIDTH",
    "MAX_COLS",
    "axes",
    "contour",
    "log_levels",
    "fit_to_column",
    "loss_curves",
    "path",
    "subplots",
    "use_style",
]

#: The palette every figure cycles through (colour-blind safe, Okabe & Ito).
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.prop_cycle": cycler(color=COLORS),
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}


#: Width of the HTML book's text column in inches at the figures' 110 dpi (726 px; the column is
#: about 730 px wide on a desktop screen). A figure no wider than this is shown at its natural size,
#: so its 10 pt text is about 15 px tall, larger than the smallest text of the page (captions,
#: about 14 px). ``tests/test_browser.py`` checks every figure of the built book against this.
COLUMN_WIDTH = 6.6
#: At most this many panels side by side; further panels of a row wrap onto the next lines.
MAX_COLS = 2
#: Default height of one row of panels, in inches.
PANEL_HEIGHT = 3.0


def _layout(nrows: int, ncols: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns in which ``nrows * ncols`` panels are drawn, at most ``max_cols`` wide."""
    if ncols <= max_cols:
        return nrows, ncols
    n = nrows * ncols
    return -(-n // max_cols), max_cols


def subplots(nrows: int = 1, ncols: int = 1, *, height: float | None = None,
             width: float | None = None, max_cols: int = MAX_COLS, sharex=False, sharey=False,
             width_ratios=None, squeeze: bool = True, **fig_kw):
    """A figure with ``nrows x ncols`` axes sized for the book's column, like ``plt.subplots``.

    The figure is never wider than :data:`COLUMN_WIDTH` (``width`` can make it narrower), so the
    text in it is never scaled down below the page's text. Rows of more than ``max_cols`` panels
    are wrapped: the panels keep their reading order (left to right, then down), an incomplete
    last line is centred, and the returned array still has the requested shape ``(nrows, ncols)``,
    so ``ax[i, j]``, ``sharex`` and ``sharey`` (``True``, ``"row"``, ``"col"``) mean what they mean
    for ``plt.subplots``. ``height`` is the height of one line of panels (default
    :data:`PANEL_HEIGHT`). Returns ``(fig, axes)``.
    """
    if nrows < 1 or ncols < 1 or max_cols < 1:
        raise ValueError(f"need nrows, ncols, max_cols >= 1, got {nrows}, {ncols}, {max_cols}")
    width = COLUMN_WIDTH if width is None else min(float(width), COLUMN_WIDTH)
    height = PANEL_HEIGHT if height is None else float(height)
    rows, cols = _layout(nrows, ncols, max_cols)
    wrapped = (rows, cols) != (nrows, ncols)
    fig_kw.setdefault("layout", "constrained")
    fig = plt.figure(figsize=(width, height * rows), **fig_kw)
    # each panel spans two half-columns, so an incomplete last line can be centred
    gs = fig.add_gridspec(rows, 2 * cols,
                          width_ratios=None if (wrapped or width_ratios is None)
                          else np.repeat(np.asarray(width_ratios, dtype=float), 2))
    n = nrows * ncols
    last = n - (rows - 1) * cols  # panels on the last line
    ax = np.empty((nrows, ncols), dtype=object)
    for k in range(n):
        i, j = divmod(k, ncols)
        r, c = divmod(k, cols)
        offset = (cols - last) if (r == rows - 1 and last < cols) else 0
        share = {}
        for key, mode in (("sharex", sharex), ("sharey", sharey)):
            if mode is True or mode == "all":
                share[key] = ax[0, 0] if k else None
            elif mode == "row":
                share[key] = ax[i, 0] if j else None
            elif mode == "col":
                share[key] = ax[0, j] if i else None
            elif mode not in (False, "none"):
                raise ValueError(f"{key} must be True, False, 'all', 'row', 'col' or 'none', got {mode!r}")
        ax[i, j] = fig.add_subplot(gs[r, 2 * c + offset: 2 * c + offset + 2], **share)
    if squeeze:
        if n == 1:
            return fig, ax[0, 0]
        if nrows == 1 or ncols == 1:
            return fig, ax.ravel()
    return fig, ax


def use_style() -> None:
    """Apply the book's matplotlib style (called on import of this module)."""
    mpl.style.use(_STYLE)


def fit_to_column(fig, width: float = COLUMN_WIDTH, max_cols: int = MAX_COLS,
                  min_fontsize: float | None = None):
    """Make an existing figure fit the book's column, in place; returns it.

    Every figure a page shows goes through this (see :func:`_install_display_hook`), including
    figures a chapter made with ``plt.subplots`` directly:

    - a single row of more than ``max_cols`` panels with axes is wrapped onto lines of
      ``max_cols`` (the incomplete last line centred), keeping the reading order (a strip of
      images drawn without axes stays one row);
    - a figure wider than ``width`` inches is narrowed to it (its height shrinks less, so panels
      stay readable);
    - text smaller than ``min_fontsize`` points (default: the style's ``font.size``, 10 pt) is
      enlarged to it: tick labels, legends, annotations.

    Drawn at the figures' dpi, the figure is then shown at its natural size in the column and its
    text is never smaller than the page's.
    """
    from matplotlib.text import Text

    if getattr(fig, "_dlopt_fitted", False):
        return fig
    min_fontsize = float(mpl.rcParams["font.size"] if min_fontsize is None else min_fontsize)
    w, h = fig.get_size_inches()
    panels = [a for a in fig.axes if a.get_subplotspec() is not None]
    specs = [a.get_subplotspec() for a in panels]
    grids = {id(sp.get_gridspec()) for sp in specs}
    wrapped = False
    if panels and len(grids) == 1 and fig.get_layout_engine() is not None:
        gs = specs[0].get_gridspec()
        one_cell = all(sp.num1 == sp.num2 for sp in specs)
        plotted = all(a.axison for a in panels)  # a strip of images without axes stays a row
        if (gs.nrows == 1 and gs.ncols > max_cols and one_cell and plotted
                and len(panels) == gs.ncols):
            n, cols = len(panels), max_cols
            rows = -(-n // cols)
            new = fig.add_gridspec(rows, 2 * cols)
            last = n - (rows - 1) * cols
            for k, ax in enumerate(sorted(panels, key=lambda a: a.get_subplotspec().colspan.start)):
                r, c = divmod(k, cols)
                off = (cols - last) if (r == rows - 1 and last < cols) else 0
                ax.set_subplotspec(new[r, 2 * c + off: 2 * c + off + 2])
                if c == 0:  # first on its line: show the y tick labels sharey had hidden
                    ax.tick_params(axis="y", labelleft=True)
            fig.set_size_inches(min(w, width), rows * min(h, PANEL_HEIGHT * 1.1))
            wrapped = True
    if not wrapped and w > width:
        fig.set_size_inches(width, max(h * width / w, min(h, 0.42 * width)))
    for ax in fig.axes:
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_majorticklabels() + axis.get_minorticklabels()
            if any(t.get_fontsize() < min_fontsize for t in labels):
                ax.tick_params(axis=which, which="both", labelsize=min_fontsize)
    for text in fig.findobj(Text):
        if text.get_fontsize() < min_fontsize:
            text.set_fontsize(min_fontsize)
    fig._dlopt_fitted = True
    return fig


def _install_display_hook() -> None:
    """In IPython (the book's pages, notebooks), show every matplotlib figure through
    :func:`fit_to_column`: wraps the PNG formatter the inline backend registered for figures."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python: nothing is displayed
        return
    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    try:  # configure the inline backend now, so that the formatter wrapped below is its own
        import matplotlib_inline.backend_inline  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    from matplotlib.figure import Figure

    png = ip.display_formatter.formatters["image/png"]
    try:
        inner = png.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(inner, "_dlopt_hook", False):
        return

    png.for_type(Figure, _FittedFormatter(inner))


class _FittedFormatter:
    """A figure formatter that fits the figure to the column first; ``_dlopt_hook`` marks it as
    installed (an attribute, not the class, so that reloading this module does not wrap twice)."""

    _dlopt_hook = True

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, fig):
        return self.inner(fit_to_column(fig))


use_style()
_install_display_hook()


def axes(ncols: int = 1, nrows: int = 1, width: float = 4.4, height: float = 3.6, **kw):
    """A row (or grid) of axes sized for the book's column; returns the axes (squeezed).

    ``width`` is the width of one panel; the figure is capped at :data:`COLUMN_WIDTH` and wraps
    rows of more than :data:`MAX_COLS` panels (see :func:`subplots`).
    """
    _, ax = subplots(nrows, ncols, width=width * min(ncols, MAX_COLS), height=height,
                     squeeze=False, **kw)
    return ax[0, 0] if ax.size == 1 else ax.ravel()


def log_levels(Z, count: int) -> np.ndarray:
    """``count`` contour levels spaced logarithmically above the minimum of the grid values ``Z``
    up to their 98th percentile: they show the floor of narrow valleys (Rosenbrock) as well as
    the steep walls (:func:`contour` and the explorers' level sets)."""
    zmin, zmax = float(np.nanmin(Z)), float(np.nanpercentile(Z, 98))
    span = max(zmax - zmin, 1e-12)
    shift = zmin - 1e-3 * span
    return shift + np.geomspace(1e-3 * span, zmax - shift, count)


def contour(objective, xlim=(-2, 2), ylim=(-2, 2), ax=None, levels: int | np.ndarray = 25,
            log: bool = True, num: int = 300, mark_minimizers: bool = True, filled: bool = False):
    """Level sets of a 2-D objective.

    With ``log=True`` the levels are spaced logarithmically above the grid minimum, which shows
    the floor of narrow valleys (Rosenbrock) as well as the steep walls.
    """
    ax = axes() if ax is None else ax
    X, Y, Z = objective.on_grid(xlim, ylim, num)
    if np.isscalar(levels):
        count = int(np.asarray(levels))
        levels = log_levels(Z, count) if log else np.linspace(np.nanmin(Z), np.nanpercentile(Z, 98), count)
    if filled:
        ax.contourf(X, Y, Z, levels=levels, cmap="viridis", alpha=0.9)
    else:
        ax.contour(X, Y, Z, levels=levels, cmap="viridis", linewidths=0.8, alpha=0.9)
    if mark_minimizers:
        mins = getattr(objective, "minimizers", None)
        if mins is None:
            try:
                mins = np.atleast_2d(objective.minimizer)
            except (AttributeError, ValueError, NotImplementedError):
                mins = None
        if mins is not None:
            ax.plot(*np.asarray(mins).T, marker="*", ms=11, ls="none", color="#D55E00", zorder=5)
    ax.set(xlim=xlim, ylim=ylim, xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    return ax


def path(ax, traj, label: str | None = None, color=None, marker: str = "o", ms: float = 3, **kw):
    """Draw the iterates of a trajectory (or an ``(k, 2)`` array) as a polyline with markers."""
    xs = np.asarray(getattr(traj, "xs", traj))
    line, = ax.plot(xs[:, 0], xs[:, 1], marker=marker, ms=ms, label=label, color=color, **kw)
    ax.plot(*xs[0], marker="s", ms=6, color=line.get_color(), zorder=6)
    if label:
        ax.legend(loc="best")
    return line


def loss_curves(curves: Mapping[str, object], ax=None, log: bool = True, minimum: float = 0.0,
                ylabel: str | None = None, xlabel: str = "iteration $k$"):
    """Plot ``f(x_k) - minimum`` against ``k`` for each named trajectory (or array of values)."""
    ax = axes() if ax is None else ax
    for name, c in curves.items():
        values = np.asarray(getattr(c, "values", c), dtype=float) - minimum
        ax.plot(np.arange(len(values)), values, label=name)
    if log:
        ax.set_yscale("log")
    if ylabel is None:
        ylabel = "$f(x_k)$" if minimum == 0 else "$f(x_k) - f^\\star$"
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if curves:
        ax.legend(loc="best")
    return ax
