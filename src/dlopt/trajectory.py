"""Iterate an update rule on an objective and record where it went.

:func:`run` is the one loop the book's numpy demos use::

    traj = dlopt.run(dlopt.rules.gd, f, x0=[-1.5, 2.0], steps=200, lr=1e-3)
    traj.xs      # (steps+1, n) iterates, x0 first
    traj.values  # f at each iterate
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .rules import gd

__all__ = ["Trajectory", "run"]


@dataclass
class Trajectory:
    """The record of one run: iterates, objective values, gradient norms and step sizes.

    ``xs[k]`` is the k-th iterate (``xs[0]`` is the starting point), ``values[k] = f(xs[k])``,
    ``grad_norms[k] = ‖∇f(xs[k])‖`` (of the true gradient, also for stochastic runs) and
    ``lrs[k]`` the step size used to go from ``xs[k]`` to ``xs[k+1]``.
    """

    xs: np.ndarray
    values: np.ndarray
    grad_norms: np.ndarray
    lrs: np.ndarray
    diverged: bool = False
    converged: bool = False
    info: dict = field(default_factory=dict)

    @property
    def x(self) -> np.ndarray:
        """The last iterate."""
        return self.xs[-1]

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return len(self.xs) - 1

    def __repr__(self) -> str:
        status = "diverged" if self.diverged else "converged" if self.converged else "stopped"
        return (
            f"Trajectory({self.steps} steps, {status}, f(x)={self.values[-1]:.6g}, "
            f"|grad|={self.grad_norms[-1]:.3g})"
        )


def run(
    rule: Callable = gd,
    objective=None,
    x0=None,
    steps: int = 100,
    *,
    lr: float | Callable[[int], float] = 0.1,
    line_search: Callable | None = None,
    grad: Callable | None = None,
    tol: float | None = None,
    blowup: float = 1e12,
    progress: bool = False,
    **hyperparameters,
) -> Trajectory:
    """Run ``steps`` iterations of ``rule`` on ``objective`` from ``x0``.

    Parameters
    ----------
    rule
        An update rule from :mod:`dlopt.rules` (``rule(param, grad, state, lr=..., **hp)``).
    objective
        An :class:`~dlopt.functions.Objective` (needs ``value`` and ``grad``).
    lr
        A constant step size, or a schedule ``lr(k)`` called with the step index ``k``.
    line_search
        A line search from :mod:`dlopt.linesearch`, called as ``line_search(objective, x, g, d)``
        with the direction ``d = -g``; it overrides ``lr`` at every step. Only for steepest
        descent, whose direction is the negative gradient.
    grad
        A gradient oracle ``grad(x, k)`` replacing ``objective.grad`` in the update -- a
        mini-batch sampler for stochastic methods. The recorded ``grad_norms`` always use the true
        gradient.
    tol
        Stop once ``‖∇f(x)‖ ≤ tol``.
    blowup
        Stop and flag ``diverged`` once ``|f(x)|`` exceeds this or is not finite.
    progress
        Show a tqdm progress bar.
    """
    if objective is None or x0 is None:
        raise ValueError("run() needs an objective and a starting point x0")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if line_search is not None and rule is not gd:
        raise ValueError("a line search chooses the step of steepest descent; use rule=dlopt.rules.gd")
    x = np.array(x0, dtype=float)
    if x.shape != (objective.dim,):
        raise ValueError(f"x0 has shape {x.shape}, the objective expects ({objective.dim},)")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 must be finite")

    schedule = lr if callable(lr) else (lambda k, _lr=float(lr): _lr)
    state: dict = {}
    xs, values, grad_norms, lrs = [x.copy()], [float(objective.value(x))], [], []
    g_true = objective.grad(x)
    grad_norms.append(float(np.linalg.norm(g_true)))
    diverged = converged = False

    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=getattr(rule, "__name__", "run"), leave=False)

    with np.errstate(over="ignore", invalid="ignore"):
        for k in iterator:
            if tol is not None and grad_norms[-1] <= tol:
                converged = True
                break
            g = g_true if grad is None else np.asarray(grad(x, k), dtype=float)
            eta = line_search(objective, x, g, -g) if line_search is not None else schedule(k)
            rule(x, g, state, lr=eta, **hyperparameters)
            fx = float(objective.value(x))
            g_true = objective.grad(x)
            xs.append(x.copy())
            values.append(fx)
            grad_norms.append(float(np.linalg.norm(g_true)))
            lrs.append(float(eta))
            if not np.isfinite(fx) or abs(fx) > blowup:
                diverged = True
                break
        else:
            converged = tol is not None and grad_norms[-1] <= tol

    return Trajectory(
        xs=np.array(xs),
        values=np.array(values),
        grad_norms=np.array(grad_norms),
        lrs=np.array(lrs),
        diverged=diverged,
        converged=converged,
        info={"rule": getattr(rule, "__name__", repr(rule)), "state": state},
    )
