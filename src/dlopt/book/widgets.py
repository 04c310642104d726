r"""Interactive explorers (ipywidgets) with a static fallback for the HTML book.

The book's pages now use :mod:`dlopt.book.explorers` (``dlopt.explorers``), whose explorers move
in the static HTML book too (a grid of :func:`dlopt.run` results drawn by Plotly) and still
compute live in Jupyter. The classes here keep working for notebooks that use them; the
schedules page uses :class:`ScheduleBasinExplorer` for its two-state predictions.

:class:`PathExplorer` draws the paths of one or more update rules on the contours of a 2-D
objective, next to their loss curves, and redraws them when a slider moves::

    from dlopt import functions, rules, widgets

    ex = widgets.PathExplorer(functions.Rosenbrock(), x0=[-1.2, 1.0],
                              methods={"GD": rules.gd, "heavy ball": rules.heavy_ball},
                              xlim=(-2, 2), ylim=(-1, 3), steps=500)
    ex.update(lr=1e-3, beta=0.9)   # the static figure: ex.figure
    ex.widget(lr=(1e-4, 1e-2), beta=(0.0, 0.99))   # sliders + live figure, in Jupyter

Speed. A redraw must feel instant (the book's target is at most 50 ms for a 500-step path), so
nothing is re-plotted: the contours, axes and legend are rendered once into a cached background,
and an update only recomputes the paths, moves the existing line artists with ``set_data`` and
blits them onto the background (Agg), then encodes the canvas (JPEG) for the ``ipywidgets.Image``.
``bench/bench_widgets.py`` measures each part.

Static fallback. The HTML book has no kernel, so every widget page also shows ``ex.figure``
after an ``ex.update(...)`` with fixed parameters -- the same figure the widget shows.
"""

from __future__ import annotations

import inspect
import io
import time
from typing import Callable, Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dlopt.book import plots
from dlopt.optim.runner import Trajectory, run

__all__ = ["PathExplorer"]


def _accepted(rule: Callable) -> set[str] | None:
    """Keyword names a rule accepts (``None``: it accepts any)."""
    params = inspect.signature(rule).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


class PathExplorer:
    """Paths of several update rules on a 2-D objective, redrawn in place when parameters change.

    Parameters
    ----------
    objective
        A 2-D :class:`~dlopt.functions.Objective`.
    x0
        The common starting point.
    methods
        ``{label: rule}`` or ``{label: (rule, fixed_hyperparameters)}``. At each :meth:`update`
        a rule receives the parameters it accepts (``lr``, ``beta``, ...), the fixed ones taking
        precedence; so ``rules.gd`` ignores ``beta``.
    steps
        Number of iterations drawn.
    xlim, ylim
        The window of the contour plot.
    minimum
        ``f*`` for the loss panel (default: ``objective.minimum`` if it has one, else 0).
    loss_ylim
        Fixed limits of the log-scale loss panel (fixed so that the background can be cached).
    """

    def __init__(self, objective, x0, methods: Mapping[str, object], *, steps: int = 500,
                 xlim=(-2, 2), ylim=(-2, 2), minimum: float | None = None,
                 loss_ylim=(1e-10, 1e2), title: str | None = None, width: float = 9.0,
                 height: float = 3.8, contour_kw: dict | None = None, blowup: float = 1e12,
                 **initial):
        if objective.dim != 2:
            raise ValueError(f"PathExplorer needs a 2-D objective, got dim={objective.dim}")
        if not methods:
            raise ValueError("give at least one method")
        self.objective, self.x0, self.steps = objective, np.asarray(x0, dtype=float), int(steps)
        self.methods = {}
        for label, m in methods.items():
            rule, fixed = (m if isinstance(m, tuple) else (m, {}))
            self.methods[label] = (rule, dict(fixed), _accepted(rule))
        if minimum is None:
            minimum = getattr(objective, "minimum", 0.0)
            minimum = 0.0 if callable(minimum) or minimum is None else float(minimum)
        self.minimum = minimum
        self.title = title
        self.blowup = float(blowup)
        self.params: dict = dict(initial)
        self.trajectories: dict[str, Trajectory] = {}
        self.timings: dict[str, float] = {}

        self.figure = Figure(figsize=(width, height), layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax_path, self.ax_loss = self.figure.subplots(1, 2, width_ratios=[1.15, 1])
        plots.contour(objective, xlim=xlim, ylim=ylim, ax=self.ax_path, **(contour_kw or {}))
        self.ax_path.plot(*self.x0, marker="s", ms=6, color="k", zorder=6)
        self.ax_loss.set(yscale="log", xlim=(0, self.steps), ylim=loss_ylim, xlabel="iteration $k$",
                         ylabel="$f(x_k)-f^\\star$")
        self.lines, self.curves = {}, {}
        for i, label in enumerate(self.methods):
            color = plots.COLORS[i % len(plots.COLORS)]
            self.lines[label], = self.ax_path.plot([], [], marker="o", ms=2, lw=1.2, color=color,
                                                   label=label)
            self.curves[label], = self.ax_loss.plot([], [], lw=1.4, color=color, label=label)
        self.ax_loss.legend(loc="upper right")
        self.status = self.ax_loss.text(0.03, 0.03, "", transform=self.ax_loss.transAxes, va="bottom",
                                        fontsize=9)
        self._background = None
        self._image = None
        if initial:
            self.update(**initial)

    # -- computing ------------------------------------------------------------------------------
    def _kwargs(self, label: str, params: dict) -> dict:
        rule, fixed, accepted = self.methods[label]
        kw = {k: v for k, v in params.items() if accepted is None or k in accepted}
        kw.update(fixed)
        return kw

    def compute(self, **params) -> dict[str, Trajectory]:
        """Run every method with the given parameters; returns ``{label: Trajectory}``.

        Each path is :func:`dlopt.run` recording only the iterates; values and gradient norms are
        evaluated for the whole path in one batched call afterwards, and the path is cut where it
        blows up (as ``run`` does with a single run). That halves the time of a 500-step path.
        """
        out = {}
        for label, (rule, _, _) in self.methods.items():
            kw = self._kwargs(label, params)
            lr = float(kw.pop("lr"))
            xs = run(rule, self.objective, self.x0, self.steps, lr=lr, record=("x",), blowup=None,
                     **kw).xs
            assert xs is not None
            grad = self.objective.grad
            with np.errstate(over="ignore", invalid="ignore"):
                values = self.objective.value(xs)
                bad = ~np.isfinite(values) | (np.abs(values) > self.blowup)
                diverged = bool(bad.any())
                if diverged:
                    cut = int(np.argmax(bad)) + 1
                    xs, values = xs[:cut], values[:cut]
                grad_norms = np.linalg.norm(grad(xs), axis=-1)
            out[label] = Trajectory(xs=xs, values=values, grad_norms=grad_norms,
                                    lrs=np.full(len(xs) - 1, lr), diverged=diverged,
                                    info={"rule": getattr(rule, "__name__", repr(rule))})
        return out

    # -- drawing --------------------------------------------------------------------------------
    def _artists(self):
        return [*self.lines.values(), *self.curves.values(), self.status]

    def _capture_background(self) -> None:
        """Render everything except the moving artists once, and keep the pixels."""
        for a in self._artists():
            a.set_visible(False)
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        for a in self._artists():
            a.set_visible(True)

    def _status_text(self) -> str:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.params.items())
        diverged = [k for k, t in self.trajectories.items() if t.diverged]
        return shown + (f"\ndiverged: {', '.join(diverged)}" if diverged else "")

    def update(self, **params) -> None:
        """Recompute the paths for ``params`` (merged into the current ones) and redraw in place.

        ``self.timings`` records the seconds spent computing, blitting and encoding.
        """
        t0 = time.perf_counter()
        self.params.update(params)
        self.trajectories = self.compute(**self.params)
        t1 = time.perf_counter()
        for label, t in self.trajectories.items():
            xs = t.xs
            assert xs is not None and t.values is not None
            self.lines[label].set_data(xs[:, 0], xs[:, 1])
            gap = np.maximum(t.values - self.minimum, 1e-300)
            self.curves[label].set_data(np.arange(len(gap)), gap)
        self.status.set_text(self._status_text())
        if self.title is not None:
            self.ax_path.set_title(self.title)
        self.redraw()
        t2 = time.perf_counter()
        if self._image is not None:
            self._image.value = self._encode()
        t3 = time.perf_counter()
        self.timings = {"compute": t1 - t0, "draw": t2 - t1, "encode": t3 - t2, "total": t3 - t0}

    def redraw(self) -> None:
        """Blit the moving artists onto the cached background (no re-plotting)."""
        if self._background is None:
            self._capture_background()
        self.canvas.restore_region(self._background)
        for a in self._artists():
            a.axes.draw_artist(a)
        self.canvas.blit(self.figure.bbox)

    def _encode(self) -> bytes:
        """The current canvas as JPEG bytes: ten times faster to encode than PNG, and smaller."""
        from PIL import Image

        buf = io.BytesIO()
        rgba = Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba())
        rgba.convert("RGB").save(buf, format="jpeg", quality=90)
        return buf.getvalue()

    # -- the widget -----------------------------------------------------------------------------
    def widget(self, **sliders):
        """Sliders for the named parameters and the live figure, as an ``ipywidgets.VBox``.

        Each keyword is ``name=(low, high)`` (a linear slider), ``name=(low, high, "log")`` (a
        logarithmic one), or an ``ipywidgets`` widget. The initial value is the current
        parameter value.
        """
        import ipywidgets as w

        controls = {}
        for name, spec in sliders.items():
            value = self.params.get(name)
            if isinstance(spec, w.Widget):
                controls[name] = spec
            elif len(spec) == 3 and spec[2] == "log":
                lo, hi = np.log10(spec[0]), np.log10(spec[1])
                controls[name] = w.FloatLogSlider(value=value or 10 ** ((lo + hi) / 2), min=lo, max=hi,
                                                  step=(hi - lo) / 100, description=name,
                                                  readout_format=".2e", continuous_update=True)
            else:
                lo, hi = spec[:2]
                controls[name] = w.FloatSlider(value=value if value is not None else lo, min=lo, max=hi,
                                               step=(hi - lo) / 200, description=name,
                                               readout_format=".3f", continuous_update=True)
        self._image = w.Image(format="jpeg")
        self.update(**{k: c.value for k, c in controls.items()})
        self._image.value = self._encode()

        def on_change(change):
            self.update(**{k: c.value for k, c in controls.items()})

        for c in controls.values():
            c.observe(on_change, names="value")
        return w.VBox([w.HBox(list(controls.values())), self._image])

    def _repr_png_(self):
        """Display the figure itself (a full render) in notebooks, sized for the book's column."""
        buf = io.BytesIO()
        plots.fit_to_column(self.figure).savefig(buf, format="png")
        return buf.getvalue()


class ScheduleBasinExplorer:
    r"""Which basin do noisy runs end in under a decaying learning rate? (chapter *Stochastic
    gradient methods*, page *Learning-rate schedules*)

    SGD with gradient-noise variance ``sigma2`` runs at temperature :math:`T_k=\eta_k\sigma^2/2`. On a
    :class:`~dlopt.functions.TwoBasin` landscape, starting in the sharp minimum, the fraction of runs
    in the flat basin follows the two-state model of :func:`dlopt.stochastic.two_state_occupancy`
    with hopping probabilities :math:`\eta_k/\tau(T_k)` from the exact mean first-passage times.
    :meth:`update` recomputes that prediction for a schedule ``shape`` (``"exponential"``,
    ``"cosine"`` or ``"step"``) from ``eta0`` to ``eta_end`` in ``steps`` steps and redraws; the
    figure (``self.figure``) is the static fallback, :meth:`widget` the interactive version.
    """

    shapes = ("exponential", "cosine", "step")

    def __init__(self, objective=None, sigma2: float = 20.0, steps: int = 3000, shape: str = "cosine",
                 eta0: float = 0.04, eta_end: float = 4e-4):
        from dlopt.problems import functions
        from dlopt.book import stochastic

        self.objective = functions.TwoBasin() if objective is None else objective
        self.sigma2, self.steps = float(sigma2), int(steps)
        f = self.objective
        temps = np.geomspace(0.02, 1.0, 120)
        self._log_t = np.log(temps)
        self._log_sf = np.log([stochastic.mean_first_passage(f, f.x_sharp, f.x_flat, T) for T in temps])
        self._log_fs = np.log([stochastic.mean_first_passage(f, f.x_flat, f.x_sharp, T) for T in temps])
        self.figure = Figure(figsize=(10, 3.4), layout="constrained")
        FigureCanvasAgg(self.figure)
        self._ax_t, self._ax_p = self.figure.subplots(1, 2)
        k = np.arange(self.steps + 1)
        (self._line_t,) = self._ax_t.plot(k, np.ones_like(k, dtype=float), color=plots.COLORS[0])
        (self._line_p,) = self._ax_p.plot(k, np.zeros_like(k, dtype=float), color=plots.COLORS[1])
        self._ax_t.axhline(f.barrier_sharp / 10, color="0.5", ls="--", lw=1)
        self._ax_t.set(xlabel="step $k$", ylabel=r"temperature $T_k=\eta_k\sigma^2/2$", yscale="log",
                       ylim=(1e-4, 2.0), xlim=(0, self.steps))
        self._ax_p.set(xlabel="step $k$", ylabel="predicted fraction in the flat basin", ylim=(0, 1),
                       xlim=(0, self.steps))
        self.params: dict = {}
        self.update(shape=shape, eta0=eta0, eta_end=eta_end)

    def schedule(self, shape: str, eta0: float, eta_end: float):
        """The :mod:`dlopt.schedules` object for a shape with the given endpoints."""
        from dlopt.optim import schedules

        K = self.steps
        if shape == "exponential":
            return schedules.ExponentialDecay(eta0, gamma=(eta_end / eta0) ** (1 / K))
        if shape == "cosine":
            return schedules.CosineAnnealing(eta0, T_max=K, eta_min=eta_end)
        if shape == "step":
            return schedules.MultiStepDecay(eta0, milestones=[K // 3, 2 * K // 3],
                                            gamma=(eta_end / eta0) ** 0.5)
        raise ValueError(f"shape must be one of {self.shapes}, got {shape!r}")

    def predict(self, shape: str, eta0: float, eta_end: float):
        """``(lrs, p_flat)``: the step sizes and the predicted fraction in the flat basin per step."""
        from dlopt.book import stochastic

        lrs = self.schedule(shape, eta0, eta_end).values(self.steps + 1)
        log_t = np.log(lrs * self.sigma2 / 2)
        out = lrs[:-1] / np.exp(np.interp(log_t[:-1], self._log_t, self._log_sf))
        back = lrs[:-1] / np.exp(np.interp(log_t[:-1], self._log_t, self._log_fs))
        p_sharp = stochastic.two_state_occupancy(out.__getitem__, back.__getitem__, self.steps)
        return lrs, 1.0 - p_sharp

    def update(self, **params) -> "ScheduleBasinExplorer":
        """Recompute the prediction for ``shape``, ``eta0``, ``eta_end`` and redraw."""
        self.params.update(params)
        t0 = time.perf_counter()
        lrs, p_flat = self.predict(**self.params)
        self._line_t.set_ydata(lrs * self.sigma2 / 2)
        self._line_p.set_ydata(p_flat)
        p = self.params
        self._ax_p.set_title(f"{p['shape']}: {p_flat[-1]:.0%} end in the flat basin")
        self._ax_t.set_title(rf"$\eta_0={p['eta0']:.3g}$, $\eta_K={p['eta_end']:.3g}$, $\sigma^2={self.sigma2:g}$")
        self.figure.canvas.draw()
        self.last_redraw_ms = 1e3 * (time.perf_counter() - t0)
        self.final_fraction = float(p_flat[-1])
        if getattr(self, "_image", None) is not None:
            self._image.value = self._repr_png_()
        return self

    def widget(self):
        """A shape selector, two logarithmic sliders and the live figure (``ipywidgets.VBox``)."""
        import ipywidgets as w

        shape = w.Dropdown(options=self.shapes, value=self.params["shape"], description="shape")
        eta0 = w.FloatLogSlider(value=self.params["eta0"], min=-3, max=-1, step=0.02, description="eta0",
                                readout_format=".3g")
        eta_end = w.FloatLogSlider(value=self.params["eta_end"], min=-5, max=-2, step=0.02,
                                   description="eta_end", readout_format=".3g")
        self._image = w.Image(format="png", value=self._repr_png_())

        def on_change(change):
            self.update(shape=shape.value, eta0=eta0.value, eta_end=eta_end.value)

        for c in (shape, eta0, eta_end):
            c.observe(on_change, names="value")
        return w.VBox([w.HBox([shape, eta0, eta_end]), self._image])

    def _repr_png_(self):
        buf = io.BytesIO()
        plots.fit_to_column(self.figure).savefig(buf, format="png")
        return buf.getvalue()


__all__ += ["ScheduleBasinExplorer"]
