r"""Line searches: choose the step size :math:`\eta` along a descent direction :math:`d`.

Each line search is a callable ``ls(objective, x, g, d) -> eta`` where ``g = ∇f(x)`` and ``d`` is
a descent direction (``gᵀd < 0``); pass one to :func:`dlopt.run` as ``line_search=``.

- :class:`ExactQuadratic` -- the exact minimiser of :math:`\eta\mapsto f(x+\eta d)` for a
  quadratic, :math:`\eta^\star = -g^\top d / d^\top A d`;
- :class:`Backtracking` -- start at :math:`\eta_0` and shrink by :math:`\rho` until the Armijo
  (sufficient decrease) condition :func:`armijo` holds;
- :class:`StrongWolfe` -- bracketing and zoom with cubic interpolation until both strong Wolfe
  conditions hold (:func:`wolfe_conditions`). Its core :func:`strong_wolfe` works on the
  one-dimensional function :math:`\varphi(t)=f(x+td)` only, so BFGS, L-BFGS
  (:mod:`dlopt.secondorder`) and :class:`dlopt.torch.LBFGS` share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "armijo",
    "ExactQuadratic",
    "Backtracking",
    "wolfe_conditions",
    "cubic_interpolate",
    "LineSearchResult",
    "strong_wolfe",
    "StrongWolfe",
]


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


# --------------------------------------------------------------------------------------------
# Strong Wolfe: bracketing + zoom with cubic interpolation (Nocedal & Wright, Alg. 3.5 / 3.6)
# --------------------------------------------------------------------------------------------


def wolfe_conditions(f0: float, gtd0: float, t: float, f_t: float, gtd_t: float,
                     c1: float = 1e-4, c2: float = 0.9) -> tuple[bool, bool]:
    r"""The two strong Wolfe conditions for the step ``t`` along ``d``, from
    :math:`\varphi(0)=f_0`, :math:`\varphi'(0)=g_0^\top d`, :math:`\varphi(t)` and :math:`\varphi'(t)`:

    - sufficient decrease :math:`\varphi(t)\le\varphi(0)+c_1t\varphi'(0)`;
    - curvature :math:`|\varphi'(t)|\le c_2|\varphi'(0)|`.
    """
    armijo_ok = bool(f_t <= f0 + c1 * t * gtd0)
    curvature_ok = bool(abs(gtd_t) <= -c2 * gtd0)
    return armijo_ok, curvature_ok


class _TensorScalar(float):
    """A float that rounds like a 0-d float64 torch tensor (``variant="torch"`` of :func:`strong_wolfe`).

    ``torch.optim.LBFGS`` keeps some of its scalars as 0-d tensors: every directional derivative,
    and every step computed from one. Arithmetic with a tensor gives a tensor, and a Python number
    divided by a tensor is computed as ``number * (1 / tensor)`` -- which differs from ``number /
    tensor`` in the last bit for about one pair in four. Tagging those scalars with this type makes
    the shared search reproduce torch's steps to the last bit; every other operation rounds as
    float arithmetic does.
    """

    __slots__ = ()

    def __add__(self, o): return _TensorScalar(float(self) + o)  # noqa: E704
    def __radd__(self, o): return _TensorScalar(o + float(self))  # noqa: E704
    def __sub__(self, o): return _TensorScalar(float(self) - o)  # noqa: E704
    def __rsub__(self, o): return _TensorScalar(o - float(self))  # noqa: E704
    def __mul__(self, o): return _TensorScalar(float(self) * o)  # noqa: E704
    def __rmul__(self, o): return _TensorScalar(o * float(self))  # noqa: E704
    def __truediv__(self, o): return _TensorScalar(float(self) / o)  # noqa: E704
    def __rtruediv__(self, o): return _TensorScalar(o * (1.0 / float(self)))  # noqa: E704
    def __neg__(self): return _TensorScalar(-float(self))  # noqa: E704
    def __abs__(self): return _TensorScalar(abs(float(self)))  # noqa: E704


def _tagged(*xs) -> bool:
    return any(isinstance(x, _TensorScalar) for x in xs)


def cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                      bounds: tuple[float, float] | None = None) -> float:
    r"""Minimiser of the cubic through :math:`(x_1,f_1,f'_1)` and :math:`(x_2,f_2,f'_2)`, clipped
    to ``bounds`` (default: the interval between the two points); the midpoint of the bounds when
    the cubic has no minimiser (or the data are not finite).

    .. math:: d_1 = f'_1+f'_2-3\frac{f_1-f_2}{x_1-x_2},\quad d_2=\sqrt{d_1^2-f'_1f'_2},\quad
              x^\star = x_2-(x_2-x_1)\frac{f'_2+d_2-d_1}{f'_2-f'_1+2d_2}.
    """
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    if x1 == x2:
        return min(max(x1, lo), hi)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        with np.errstate(all="ignore"):  # a zero denominator gives inf/nan: fall back to the midpoint
            if x1 <= x2:
                x_min = x2 - (x2 - x1) * (np.float64(g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            else:
                x_min = x1 - (x1 - x2) * (np.float64(g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        if math.isfinite(x_min):
            best: float = _TensorScalar(x_min) if _tagged(x1, g1, x2, g2) else float(x_min)
            return min(max(best, lo), hi)
    return (lo + hi) / 2.0


@dataclass
class LineSearchResult:
    """What :func:`strong_wolfe` found: the step ``t``, :math:`\\varphi(t)`, :math:`\\varphi'(t)`,
    the ``data`` that ``phi`` returned at ``t`` (e.g. the gradient there), the number of
    evaluations of ``phi``, whether both strong Wolfe conditions hold (``success``) and whether a
    non-finite value was met on the way."""

    t: float
    f: float
    gtd: float
    data: Any
    evaluations: int
    success: bool
    nonfinite: bool = False


def strong_wolfe(phi: Callable[[float], tuple], t: float, f0: float, gtd0: float, data0: Any = None,
                 *, c1: float = 1e-4, c2: float = 0.9, max_iter: int = 25,
                 tolerance_change: float = 1e-9, d_norm: float = 1.0,
                 variant: str = "nocedal-wright") -> LineSearchResult:
    r"""Find a step ``t`` satisfying the strong Wolfe conditions along a line.

    The search only sees the one-dimensional function :math:`\varphi(t)=f(x+td)`:
    ``phi(t)`` returns ``(φ(t), φ'(t), data)`` where ``φ'(t) = ∇f(x+td)ᵀd`` and ``data`` is
    anything the caller wants back for the accepted step (typically the gradient at
    ``x + t d``). So the same code serves numpy arrays and torch tensors.

    1. **Bracketing** (N&W Alg. 3.5): try ``t``; if sufficient decrease fails, or
       :math:`\varphi` stopped decreasing, or :math:`\varphi'(t)\ge0`, an interval containing an
       acceptable step is found; if the curvature condition holds, stop; otherwise extrapolate by
       cubic interpolation into :math:`[t+0.01(t-t_{\rm prev}),\,10t]`.
    2. **Zoom** (N&W Alg. 3.6): shrink the bracket by cubic interpolation (moved 10% away from
       an end when progress stalls) until a point satisfies both conditions.

    ``max_iter`` bounds the evaluations after the first; the search also stops when the bracket is
    shorter than ``tolerance_change / d_norm`` (``d_norm = ‖d‖∞``). It then returns the lowest
    point found (``success=False``). A non-finite :math:`\varphi(t)` counts as failed sufficient
    decrease, so the search backs off instead of looping on it.

    ``variant="torch"`` reproduces the search of ``torch.optim.LBFGS`` (ported from minFunc), which
    :class:`dlopt.torch.LBFGS` uses, with its two quirks: the "φ stopped decreasing" test starts at
    the third trial, and the zoom orders the bracket ends by :math:`\varphi` alone, so it can settle
    on a point that violates sufficient decrease. The default ``"nocedal-wright"`` keeps as the
    low end the best point *satisfying* sufficient decrease, as Alg. 3.6 does.
    """
    if variant not in ("nocedal-wright", "torch"):
        raise ValueError(f"unknown variant {variant!r}: use 'nocedal-wright' or 'torch'")
    torch_variant = variant == "torch"

    # torch's directional derivatives are 0-d tensors, as is a first step computed from a tensor
    scalar = _TensorScalar if torch_variant else float

    def evaluate(step):
        f_new, gtd_new, data = phi(float(step))
        f_new, gtd_new = float(f_new), scalar(gtd_new)
        if not math.isfinite(f_new) or not math.isfinite(gtd_new):
            nonfinite[0] = True
            f_new, gtd_new = math.inf, scalar(math.nan)
        return f_new, gtd_new, data

    nonfinite = [False]
    f0, gtd0 = float(f0), scalar(gtd0)
    if torch_variant and hasattr(t, "item"):  # a step that torch holds as a tensor
        t = _TensorScalar(t.item())
    f_new, gtd_new, data_new = evaluate(t)
    evaluations = 1

    # 1. bracketing
    t_prev, f_prev, data_prev, gtd_prev = 0.0, f0, data0, gtd0
    done = False
    it = 0
    while it < max_iter:
        armijo_fails = f_new > f0 + c1 * t * gtd0 or not math.isfinite(f_new)
        if armijo_fails or (it > (1 if torch_variant else 0) and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_data, bracket_gtd = [data_prev, data_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd0:
            bracket, bracket_f, bracket_data, bracket_gtd = [t], [f_new], [data_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_data, bracket_gtd = [data_prev, data_new], [gtd_prev, gtd_new]
            break
        # extrapolate
        min_step, max_step = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                         bounds=(min_step, max_step))
        f_prev, data_prev, gtd_prev = f_new, data_new, gtd_new
        f_new, gtd_new, data_new = evaluate(t)
        evaluations += 1
        it += 1
    if it == max_iter:  # no bracket: keep the better of 0 and t
        bracket, bracket_f = [0.0, t], [f0, f_new]
        bracket_data, bracket_gtd = [data0, data_new], [gtd0, gtd_new]

    # 2. zoom
    insufficient_progress = False
    if torch_variant or done:
        low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    else:  # the low end satisfies sufficient decrease: t only if it passed and is lower
        t_ok = bracket_f[1] <= f0 + c1 * bracket[1] * gtd0 and bracket_f[1] < bracket_f[0]
        low, high = (1, 0) if t_ok else (0, 1)
    while not done and it < max_iter:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # safeguard: stay 10% of the bracket away from its ends when progress stalls
        lo, hi = min(bracket), max(bracket)
        eps = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < eps:
            if insufficient_progress or t >= hi or t <= lo:
                t = hi - eps if abs(t - hi) < abs(t - lo) else lo + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, gtd_new, data_new = evaluate(t)
        evaluations += 1
        it += 1
        if f_new > f0 + c1 * t * gtd0 or f_new >= bracket_f[low]:
            # sufficient decrease fails, or no better than the low end: t is the new high end
            bracket[high], bracket_f[high] = t, f_new
            bracket_data[high], bracket_gtd[high] = data_new, gtd_new
            if torch_variant:
                low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd0:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_data[high], bracket_gtd[high] = bracket_data[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_data[low], bracket_gtd[low] = data_new, gtd_new

    return LineSearchResult(t=float(bracket[low]), f=bracket_f[low], gtd=float(bracket_gtd[low]),
                            data=bracket_data[low], evaluations=evaluations, success=done,
                            nonfinite=nonfinite[0])


class StrongWolfe:
    r"""Line search for a step satisfying the strong Wolfe conditions (:func:`wolfe_conditions`),
    by bracketing and zoom with cubic interpolation (:func:`strong_wolfe`).

    Called like :class:`Backtracking`: ``ls(objective, x, g, d) -> eta``. After each call,
    ``result`` holds the :class:`LineSearchResult` (``result.data`` is the gradient at the new
    point), ``evaluations`` the number of (value, gradient) evaluations and ``trials`` the steps
    tried; ``calls`` and ``total_evaluations`` accumulate over calls. Raises ``RuntimeError`` when
    no step satisfying both conditions is found within ``max_iter`` evaluations.

    Parameters
    ----------
    c1, c2 : the Wolfe constants, ``0 < c1 < c2 < 1``.
    max_iter : evaluations allowed after the first trial.
    eta0 : first trial step.
    tolerance_change : stop when the bracket is shorter than this (in units of ``‖d‖∞``).
    """

    def __init__(self, c1: float = 1e-4, c2: float = 0.9, max_iter: int = 25, eta0: float = 1.0,
                 tolerance_change: float = 1e-9):
        if not 0 < c1 < 1:
            raise ValueError(f"Invalid Wolfe constant c1: {c1} (need 0 < c1 < 1)")
        if not c1 < c2 < 1:
            raise ValueError(f"Invalid Wolfe constant c2: {c2} (need c1 < c2 < 1)")
        if int(max_iter) < 1:
            raise ValueError(f"Invalid max_iter: {max_iter} (need >= 1)")
        if not eta0 > 0:
            raise ValueError(f"Invalid initial step eta0: {eta0}")
        self.c1, self.c2, self.max_iter = float(c1), float(c2), int(max_iter)
        self.eta0, self.tolerance_change = float(eta0), float(tolerance_change)
        self.result: LineSearchResult | None = None
        self.evaluations = 0
        self.trials: list[float] = []
        self.calls = 0
        self.total_evaluations = 0

    def __call__(self, objective, x, g, d) -> float:
        x, g, d = (np.asarray(a, dtype=float) for a in (x, g, d))
        slope = _check_descent(g, d)
        self.trials = []

        def phi(t):
            self.trials.append(float(t))
            g_t = objective.grad(x + t * d)
            return objective.value(x + t * d), g_t @ d, g_t

        self.result = strong_wolfe(phi, self.eta0, float(objective.value(x)), slope, g,
                                   c1=self.c1, c2=self.c2, max_iter=self.max_iter,
                                   tolerance_change=self.tolerance_change,
                                   d_norm=float(np.max(np.abs(d))))
        self.evaluations = self.result.evaluations + 1
        self.calls += 1
        self.total_evaluations += self.evaluations
        if not self.result.success:
            raise RuntimeError(
                f"strong Wolfe search found no acceptable step in {self.max_iter} evaluations "
                f"(best step {self.result.t:.3g})"
            )
        return float(self.result.t)

    def __repr__(self) -> str:
        return f"StrongWolfe(c1={self.c1:g}, c2={self.c2:g}, max_iter={self.max_iter})"
