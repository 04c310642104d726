r"""Convergence theory: the worst-case function of first-order methods, Nesterov's accelerated
gradient for convex problems, and the rate bounds the chapter *Convergence theory* proves.

- :class:`WorstCaseQuadratic` -- Nesterov's tridiagonal quadratic, on which no method whose
  iterates stay in the span of the gradients seen so far can converge faster than
  :math:`O(1/k^2)`;
- :func:`accelerated_gradient` -- Nesterov's method with the step-dependent momentum
  :math:`(t_k-1)/t_{k+1}` (an update rule with the signature of :mod:`dlopt.rules`);
- the bounds, as formulas of the step count ``k`` (they broadcast over arrays):

=========================  ==========================================================================
``stationarity_bound``     :math:`\min_{j<k}\lVert\nabla f(x_j)\rVert^2\le 2L(f(x_0)-f^\star)/k` (GD, non-convex)
``gd_convex_bound``        :math:`f(x_k)-f^\star\le L\lVert x_0-x^\star\rVert^2/(2k)` (GD, convex)
``sgd_convex_bound``       :math:`\mathbb E f(\bar x_T)-f^\star\le(R^2+G^2\sum\eta_k^2)/(2\sum\eta_k)` (SGD, convex)
``accelerated_bound``      :math:`f(x_k)-f^\star\le 2L\lVert x_0-x^\star\rVert^2/(k+1)^2` (Nesterov, convex)
``krylov_lower_bound``     :math:`f(x_k)-f^\star\ge 3L\lVert x_0-x^\star\rVert^2/(32(k+1)^2)` (any Krylov method)
=========================  ==========================================================================
"""

from __future__ import annotations

import copy

import numpy as np

from dlopt.problems.functions import Objective, as_point

__all__ = [
    "WorstCaseQuadratic",
    "accelerated_gradient",
    "stationarity_bound",
    "gd_convex_bound",
    "sgd_convex_bound",
    "accelerated_bound",
    "krylov_lower_bound",
]


class WorstCaseQuadratic(Objective):
    r"""Nesterov's worst function in the world for smooth convex minimisation.

    On :math:`\mathbb R^n`, with :math:`p\le n` active coordinates,

    .. math::

        f(x)=\frac L4\Big(\tfrac12x^\top A_px-x_1\Big),\qquad
        \tfrac12x^\top A_px=\tfrac12\Big(x_1^2+\sum_{i=1}^{p-1}(x_i-x_{i+1})^2+x_p^2\Big),

    i.e. :math:`A_p` is the tridiagonal matrix :math:`\mathrm{tridiag}(-1,2,-1)` in its upper-left
    :math:`p\times p` block and zero elsewhere. Its eigenvalues lie in :math:`[0,4)`, so ``f`` is
    convex and :math:`L`-smooth. The minimiser with the smallest norm is
    :math:`x^\star_i=1-i/(p+1)` for :math:`i\le p` and :math:`0` beyond, with
    :math:`f^\star=-\frac{L}{8}\big(1-\frac1{p+1}\big)`.

    The point of the function: the gradient at a point whose coordinates beyond the :math:`j`-th
    vanish has non-zero coordinates only up to the :math:`(j+1)`-th, so from :math:`x_0=0` any
    method whose iterates lie in the span of the gradients seen so far has
    :math:`x_k\in\mathrm{span}(e_1,\dots,e_k)`, where :math:`f` is at least :meth:`subspace_min`.
    """

    def __init__(self, n: int, p: int | None = None, L: float = 1.0):
        p = n if p is None else int(p)
        if n < 1 or not 1 <= p <= n:
            raise ValueError(f"need n >= 1 and 1 <= p <= n, got n={n}, p={p}")
        if L <= 0:
            raise ValueError(f"L must be positive, got {L}")
        self.dim, self.p, self.L = int(n), p, float(L)
        self.name = f"worst-case quadratic (n={n}, p={p})"

    @property
    def A(self) -> np.ndarray:
        """The ``n × n`` matrix :math:`A_p` (the Hessian is ``L/4 · A``)."""
        A = np.zeros((self.dim, self.dim))
        i = np.arange(self.p)
        A[i, i] = 2.0
        A[i[:-1], i[:-1] + 1] = A[i[:-1] + 1, i[:-1]] = -1.0
        return A

    @property
    def minimizer(self) -> np.ndarray:
        """:math:`x^\\star_i=1-i/(p+1)` for :math:`i\\le p`, zero beyond (the minimum-norm one)."""
        x = np.zeros(self.dim)
        x[: self.p] = 1.0 - np.arange(1, self.p + 1) / (self.p + 1)
        return x

    @property
    def minimum(self) -> float:
        """:math:`f^\\star=-\\frac L8\\big(1-\\frac1{p+1}\\big)`."""
        return -self.L / 8.0 * (1.0 - 1.0 / (self.p + 1))

    def subspace_min(self, k):
        r"""The minimum of ``f`` over :math:`\mathrm{span}(e_1,\dots,e_k)`, :math:`0\le k\le p`:
        :math:`-\frac L8\big(1-\frac1{k+1}\big)` (on that subspace ``f`` is the same function with
        :math:`p=k`)."""
        k = np.asarray(k, dtype=float)
        if np.any(k < 0) or np.any(k > self.p):
            raise ValueError(f"k must lie in [0, p={self.p}]")
        return -self.L / 8.0 * (1.0 - 1.0 / (k + 1.0))

    def value(self, x):
        x = as_point(x)
        xp = x[..., : self.p]
        d = xp[..., 1:] - xp[..., :-1]
        quad = xp[..., 0] ** 2 + (d * d).sum(-1) + xp[..., -1] ** 2
        return self.L / 4.0 * (0.5 * quad - x[..., 0])

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        g = np.zeros_like(x)
        xp = x[..., : self.p]
        Ax = 2.0 * xp
        Ax[..., 1:] -= xp[..., :-1]
        Ax[..., :-1] -= xp[..., 1:]
        g[..., : self.p] = Ax
        g[..., 0] -= 1.0
        return self.L / 4.0 * g

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        H = self.L / 4.0 * self.A
        return np.broadcast_to(H, x.shape[:-1] + H.shape).copy()


def accelerated_gradient(param, grad, state, *, lr, t_sequence: str = "linear"):
    r"""Nesterov's accelerated gradient for convex problems, momentum :math:`(t_k-1)/t_{k+1}`.

    Like :func:`dlopt.rules.nesterov`, the rule holds the look-ahead point :math:`y_k` (``param``)
    and receives :math:`\nabla f(y_k)` (``grad``). With :math:`y_0=x_0` and :math:`t_0=1`:

    .. math::

        x_{k+1} &= y_k-\eta\,\nabla f(y_k),\\
        y_{k+1} &= x_{k+1}+\frac{t_k-1}{t_{k+1}}\,(x_{k+1}-x_k),

    with :math:`t_{k+1}=(k+3)/2` for ``t_sequence="linear"`` -- momentum :math:`k/(k+3)`, i.e.
    :math:`y_k=x_k+\frac{k-1}{k+2}(x_k-x_{k-1})` -- or
    :math:`t_{k+1}=\big(1+\sqrt{1+4t_k^2}\big)/2` for ``"fista"``. The textbook iterate
    :math:`x_k`, whose value the convergence theorem bounds, is kept in ``state["x"]``; also
    ``state["t"]`` (:math:`t_k`) and ``state["step"]`` (:math:`k`).

    The look-ahead points are those of :func:`dlopt.rules.nesterov` run with the momentum
    schedule :math:`\beta_k=(t_k-1)/t_{k+1}` (``dlopt.run(rules.nesterov, f, x0, steps, lr=lr,
    beta=lambda k: k / (k + 3))`` for ``"linear"``); this two-sequence form also keeps the
    textbook iterate :math:`x_k` and :math:`t_k`, which the convergence theorem is stated in.
    """
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if t_sequence not in ("linear", "fista"):
        raise ValueError(f"t_sequence must be 'linear' or 'fista', got {t_sequence!r}")
    if "x" not in state:
        state["x"], state["t"], state["step"] = copy.deepcopy(param), 1.0, 0  # numpy or torch
    k, t, x_old = state["step"], state["t"], state["x"]
    x_new = param - lr * grad                                            # x_{k+1} = y_k - η ∇f(y_k)
    t_new = (k + 3) / 2 if t_sequence == "linear" else (1 + (1 + 4 * t * t) ** 0.5) / 2
    param[...] = x_new + ((t - 1) / t_new) * (x_new - x_old)            # y_{k+1}
    state["x"], state["t"], state["step"] = x_new, t_new, k + 1


def _steps(k):
    return np.asarray(k, dtype=float)


def stationarity_bound(L, gap, k):
    r""":math:`2L\,(f(x_0)-f^\star)/k`: gradient descent with :math:`\eta=1/L` on an
    :math:`L`-smooth function bounded below has :math:`\min_{j<k}\lVert\nabla f(x_j)\rVert^2` at most
    this (``gap`` :math:`=f(x_0)-f^\star`, or :math:`f(x_0)` minus any lower bound); ``inf`` at
    :math:`k=0`."""
    k = _steps(k)
    with np.errstate(divide="ignore"):
        return 2.0 * L * gap / k


def gd_convex_bound(L, R, k):
    r""":math:`L R^2/(2k)` with :math:`R=\lVert x_0-x^\star\rVert`: gradient descent with
    :math:`\eta=1/L` on a convex :math:`L`-smooth function; ``inf`` at :math:`k=0`."""
    k = _steps(k)
    with np.errstate(divide="ignore"):
        return L * R**2 / (2.0 * k)


def sgd_convex_bound(R, G, lrs):
    r"""The bound :math:`\big(R^2+G^2\sum_{j<t}\eta_j^2\big)/\big(2\sum_{j<t}\eta_j\big)` on
    :math:`\mathbb E f(\bar x_t)-f^\star` for :math:`t=1,\dots,T`, where ``lrs`` holds
    :math:`\eta_0,\dots,\eta_{T-1}` and :math:`\bar x_t` is the :math:`\eta`-weighted average of
    :math:`x_0,\dots,x_{t-1}`; returns an array of length ``T``. With the constant step
    :math:`\eta=R/(G\sqrt T)` its last entry is :math:`RG/\sqrt T`."""
    lrs = np.asarray(lrs, dtype=float).reshape(-1)
    if lrs.size == 0 or np.any(lrs <= 0):
        raise ValueError("lrs must be a non-empty sequence of positive step sizes")
    return (R**2 + G**2 * np.cumsum(lrs**2)) / (2.0 * np.cumsum(lrs))


def accelerated_bound(L, R, k):
    r""":math:`2LR^2/(k+1)^2`: :func:`accelerated_gradient` with :math:`\eta=1/L` and either
    :math:`t_k` sequence (the linear one or FISTA's; any with :math:`t_{k-1}\ge(k+1)/2`) on a convex
    :math:`L`-smooth function (:math:`R=\lVert x_0-x^\star\rVert`)."""
    return 2.0 * L * R**2 / (_steps(k) + 1.0) ** 2


def krylov_lower_bound(L, R, k):
    r""":math:`3LR^2/(32(k+1)^2)`: no method whose iterates stay in the span of the gradients does
    better at step :math:`k` on :class:`WorstCaseQuadratic` with :math:`p=2k+1` (from
    :math:`x_0=0`, :math:`R=\lVert x^\star\rVert`)."""
    return 3.0 * L * R**2 / (32.0 * (_steps(k) + 1.0) ** 2)
