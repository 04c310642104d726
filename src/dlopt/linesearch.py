r"""Line searches: choose the step size :math:`\eta` along a descent direction :math:`d`.

Each line search is a callable ``ls(objective, x, g, d) -> eta`` where ``g = ∇f(x)`` and ``d`` is
a descent direction (``gᵀd < 0``); pass one to :func:`dlopt.run` as ``line_search=``.

- :class:`ExactQuadratic` -- the exact minimiser of :math:`\eta\mapsto f(x+\eta d)` for a
  quadratic, :math:`\eta^\star = -g^\top d / d^\top A d`;
- :class:`Backtracking` -- start at :math:`\eta_0` and shrink by :math:`\rho` until the Armijo
  (sufficient decrease) condition :func:`armijo` holds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["armijo", "ExactQuadratic", "Backtracking"]


def armijo(objective, x, g, d, eta: float, c: float = 1e-4, fx: float | None = None) -> bool:
    r"""The Armijo (sufficient-decrease) condition
    :math:`f(x+\eta d) \le f(x) + c\,\eta\, g^\top d`."""
    fx = float(objective.value(x)) if fx is None else fx
    return bool(float(objective.value(x + eta * d)) <= fx + c * eta * float(g @ d))


def _check_descent(g, d) -> float:
    slope = float(np.dot(g, d))
    if not np.isfinite(slope):
        raise ValueError("the directional derivative gᵀd is not finite")
    if slope >= 0:
        raise ValueError(f"d is not a descent direction: gᵀd = {slope:.3g} >= 0")
    return slope


class ExactQuadratic:
    r"""Exact line search on a quadratic :math:`\tfrac12x^\top Ax-b^\top x`:
    :math:`\eta^\star=\arg\min_{\eta}f(x+\eta d) = -g^\top d/(d^\top A d)`.

    Needs the objective to expose its Hessian ``A`` (as :class:`dlopt.functions.Quadratic` does).
    """

    def __call__(self, objective, x, g, d) -> float:
        A = getattr(objective, "A", None)
        if A is None:
            raise ValueError("ExactQuadratic needs a quadratic objective with a matrix attribute A")
        slope = _check_descent(g, d)
        curvature = float(d @ A @ d)
        if curvature <= 0:
            raise ValueError("f is unbounded below along d (dᵀAd <= 0): no exact minimiser")
        return -slope / curvature

    def __repr__(self) -> str:
        return "ExactQuadratic()"


class Backtracking:
    r"""Backtracking line search with the Armijo condition.

    Tries :math:`\eta_0, \rho\eta_0, \rho^2\eta_0, \ldots` and returns the first step with
    :math:`f(x+\eta d)\le f(x)+c\,\eta\,g^\top d`.

    Parameters
    ----------
    eta0 : initial trial step (> 0).
    c : sufficient-decrease constant in (0, 1).
    rho : shrink factor in (0, 1).
    max_iter : give up (``RuntimeError``) after this many shrinks.

    After each call, ``evaluations`` holds the number of function values it computed and
    ``trials`` the step sizes it tried; ``calls`` and ``total_evaluations`` accumulate over calls.
    """

    def __init__(self, eta0: float = 1.0, c: float = 1e-4, rho: float = 0.5, max_iter: int = 60):
        if not eta0 > 0:
            raise ValueError(f"Invalid initial step eta0: {eta0}")
        if not 0 < c < 1:
            raise ValueError(f"Invalid Armijo constant c: {c} (need 0 < c < 1)")
        if not 0 < rho < 1:
            raise ValueError(f"Invalid shrink factor rho: {rho} (need 0 < rho < 1)")
        self.eta0, self.c, self.rho, self.max_iter = float(eta0), float(c), float(rho), int(max_iter)
        self.evaluations = 0
        self.trials: list[float] = []
        self.calls = 0
        self.total_evaluations = 0

    def __call__(self, objective, x, g, d) -> float:
        slope = _check_descent(g, d)
        fx = float(objective.value(x))
        eta = self.eta0
        self.trials = []
        self.evaluations = 1
        self.calls += 1
        self.total_evaluations += 1
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(self.max_iter + 1):
                self.trials.append(eta)
                f_trial = float(objective.value(x + eta * d))
                self.evaluations += 1
                self.total_evaluations += 1
                if f_trial <= fx + self.c * eta * slope:  # False for NaN: keep shrinking
                    return eta
                eta *= self.rho
        raise RuntimeError(
            f"backtracking found no step satisfying Armijo after {self.max_iter} shrinks "
            f"(last trial {self.trials[-1]:.3g})"
        )

    def __repr__(self) -> str:
        return f"Backtracking(eta0={self.eta0:g}, c={self.c:g}, rho={self.rho:g})"
