"""The book's figures in one style.

>>> from dlopt import plots
>>> ax = plots.contour(f, xlim=(-2, 2), ylim=(-1, 3))
>>> plots.path(ax, traj, label="GD")
>>> plots.loss_curves({"GD": traj}, ax=plots.axes())
"""

from __future__ import annotations

from typing import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["COLORS", "use_style", "axes", "contour", "path", "loss_curves"]

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
    "axes.prop_cycle": mpl.cycler(color=COLORS),
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's matplotlib style (called on import of this module)."""
    mpl.rcParams.update(_STYLE)


use_style()


def axes(ncols: int = 1, nrows: int = 1, width: float = 4.4, height: float = 3.6, **kw):
    """A row (or grid) of axes sized for the book's column; returns the axes (squeezed)."""
    fig, ax = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           layout="constrained", **kw)
    return ax[0, 0] if ax.size == 1 else ax.ravel()


def contour(objective, xlim=(-2, 2), ylim=(-2, 2), ax=None, levels: int | np.ndarray = 25,
            log: bool = True, num: int = 300, mark_minimizers: bool = True, filled: bool = False):
    """Level sets of a 2-D objective.

    With ``log=True`` the levels are spaced logarithmically above the grid minimum, which shows
    the floor of narrow valleys (Rosenbrock) as well as the steep walls.
    """
    ax = axes() if ax is None else ax
    X, Y, Z = objective.on_grid(xlim, ylim, num)
    if np.isscalar(levels):
        zmin, zmax = float(np.nanmin(Z)), float(np.nanpercentile(Z, 98))
        if log:
            shift = zmin - 1e-3 * max(zmax - zmin, 1e-12)
            levels = shift + np.geomspace(1e-3 * max(zmax - zmin, 1e-12), zmax - shift, int(levels))
        else:
            levels = np.linspace(zmin, zmax, int(levels))
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
