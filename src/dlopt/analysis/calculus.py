r"""Derivatives by finite differences, Taylor models and critical points.

The book's objectives (:mod:`dlopt.functions`) carry exact gradients and Hessians; the tools here
check them, and give derivatives of functions that have none written out:

>>> f = lambda x: x[0] ** 2 * x[1]
>>> gradient(f, [1.0, 2.0])            # central differences, error O(h^2)
array([4., 1.])
>>> classify(hessian(f, [1.0, 0.0]))   # eigenvalues of opposite sign
'saddle'

Every function takes a plain callable ``f(x)`` of a numpy vector (an
:class:`~dlopt.functions.Objective` works too, it is callable).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "gradient",
    "jacobian",
    "hessian",
    "hessian_vector_product",
    "fd_step",
    "directional_derivative",
    "gradient_error",
    "taylor",
    "classify",
    "critical_points",
    "newton_critical_points",
    "CRITICAL_POINT_KINDS",
]

#: The labels :func:`classify` returns.
CRITICAL_POINT_KINDS = ("minimum", "maximum", "saddle", "degenerate")


def _vector(x) -> np.ndarray:
    x = np.array(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x must be a vector, got shape {x.shape}")
    return x


def gradient(f: Callable, x, h: float = 1e-6) -> np.ndarray:
    r"""Central-difference gradient :math:`\partial_i f\approx\frac{f(x+he_i)-f(x-he_i)}{2h}`.

    The truncation error is :math:`O(h^2)`; rounding adds about :math:`\varepsilon|f|/h`, so
    :math:`h\approx10^{-6}` balances the two in double precision.
    """
    x = _vector(x)
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


def jacobian(F: Callable, x, h: float = 1e-6) -> np.ndarray:
    r"""Central-difference Jacobian of a vector field :math:`F:\mathbb R^n\to\mathbb R^m`.

    Returns the ``(m, n)`` matrix :math:`J_{ij}=\partial F_i/\partial x_j` (a scalar ``F`` gives
    one row, the transposed gradient).
    """
    x = _vector(x)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((np.atleast_1d(np.asarray(F(x + e), dtype=float))
                     - np.atleast_1d(np.asarray(F(x - e), dtype=float))) / (2 * h))
    return np.stack(cols, axis=-1)


def hessian(f: Callable | None, x, h: float = 1e-4, grad: Callable | None = None) -> np.ndarray:
    r"""Finite-difference Hessian, symmetrised: the one implementation (``landscape.hessian_from_grad``
    and ``secondorder.fd_hessian`` call it).

    With ``grad`` (an exact gradient) it is the central-difference Jacobian of the gradient,
    step ``h``; otherwise second differences of ``f``:
    :math:`\frac{f(x+he_i+he_j)-f(x+he_i-he_j)-f(x-he_i+he_j)+f(x-he_i-he_j)}{4h^2}`.
    Both have truncation error :math:`O(h^2)`.
    """
    x = _vector(x)
    n = x.size
    if grad is not None:
        H = jacobian(lambda z: np.asarray(grad(z), dtype=float), x, h)
    elif f is None:
        raise ValueError("hessian() needs f or grad")
    else:
        H = np.empty((n, n))
        E = np.eye(n) * h
        for i in range(n):
            for j in range(i, n):
                H[i, j] = H[j, i] = (float(f(x + E[i] + E[j])) - float(f(x + E[i] - E[j]))
                                     - float(f(x - E[i] + E[j])) + float(f(x - E[i] - E[j]))) / (4 * h * h)
    return 0.5 * (H + H.T)


def fd_step(x, v) -> float:
    r"""The central-difference step along ``v`` at ``x`` that :func:`hessian_vector_product` takes:
    the cube root of the machine epsilon, times :math:`\max(1,\lVert x\rVert)/\lVert v\rVert`
    (it balances the :math:`O(\varepsilon^2)` truncation error against rounding)."""
    vnorm = float(np.linalg.norm(v))
    return np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.linalg.norm(x))) / max(vnorm, 1e-300)


def hessian_vector_product(grad, x, v, eps: float | None = None):
    r"""Finite-difference Hessian-vector product from two gradients,

    .. math:: \nabla^2f(x)\,v\approx\frac{\nabla f(x+\varepsilon v)-\nabla f(x-\varepsilon v)}{2\varepsilon},

    exact for quadratics and accurate to :math:`O(\varepsilon^2)` otherwise. ``grad`` is a
    callable or an objective with ``.grad``; by default :math:`\varepsilon` is the cube root of the
    machine epsilon, scaled by :math:`\max(1,\lVert x\rVert)/\lVert v\rVert`.
    """
    grad = grad.grad if hasattr(grad, "grad") else grad
    x, v = np.asarray(x, dtype=float), np.asarray(v, dtype=float)
    if not np.any(v):
        return np.zeros_like(x)
    eps = fd_step(x, v) if eps is None else float(eps)
    return (np.asarray(grad(x + eps * v)) - np.asarray(grad(x - eps * v))) / (2 * eps)


def directional_derivative(f: Callable, x, v, h: float = 1e-6) -> float:
    r"""Central-difference :math:`\frac{d}{dt}f(x+tv)\big|_{t=0}` (``v`` is used as given, not
    normalised)."""
    x, v = _vector(x), _vector(v)
    return (float(f(x + h * v)) - float(f(x - h * v))) / (2 * h)


def gradient_error(f: Callable, grad: Callable, x, h: float = 1e-6) -> float:
    r"""Relative error :math:`\lVert g-\hat g\rVert/\max(1,\lVert g\rVert)` between ``grad(x)`` and
    the finite-difference gradient -- a gradient check; below about ``1e-6`` the two agree."""
    g = np.asarray(grad(_vector(x)), dtype=float)
    return float(np.linalg.norm(g - gradient(f, x, h)) / max(1.0, float(np.linalg.norm(g))))


def taylor(objective, x, d, order: int = 2):
    r"""Taylor model of ``objective`` at ``x`` evaluated at the displacement ``d``.

    ``order=0``: :math:`f(x)`; ``order=1``: :math:`f(x)+\nabla f(x)^\top d`; ``order=2``: adds
    :math:`\tfrac12 d^\top\nabla^2f(x)d`. ``d`` may be a stack of displacements of shape
    ``(..., n)``. The objective needs ``value``, ``grad`` and (for order 2) ``hess``.
    """
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    x = _vector(x)
    d = np.asarray(d, dtype=float)
    out = np.full(d.shape[:-1], float(objective.value(x)))
    if order >= 1:
        out = out + d @ objective.grad(x)
    if order == 2:
        out = out + 0.5 * np.einsum("...i,ij,...j->...", d, objective.hess(x), d)
    return out if out.ndim else float(out)


def classify(H, tol: float = 1e-8) -> str:
    r"""Classify a critical point by the eigenvalues of its (symmetric) Hessian ``H``.

    Returns ``"minimum"`` if all eigenvalues exceed ``tol`` (positive definite: a strict local
    minimum), ``"maximum"`` if all are below ``-tol``, ``"saddle"`` if there are eigenvalues
    above ``tol`` *and* below ``-tol`` (indefinite), and ``"degenerate"`` otherwise -- some
    eigenvalue is (numerically) zero and the second-order test is inconclusive.
    """
    H = np.asarray(H, dtype=float)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {H.shape}")
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    scale = max(1.0, float(np.abs(lam).max()))
    t = tol * scale
    if np.all(lam > t):
        return "minimum"
    if np.all(lam < -t):
        return "maximum"
    if lam.min() < -t and lam.max() > t:
        return "saddle"
    return "degenerate"


def _rowwise(fn: Callable) -> Callable:
    """``fn`` of one point, applied to each row of a stack of points."""
    return lambda X: np.stack([np.asarray(fn(x), dtype=float) for x in X])


def newton_critical_points(objective, starts, steps: int = 50, damping: float | None = 1e-2,
                           tol: float = 1e-9, *, hess: Callable | None = None,
                           rcond: float | None = None) -> dict:
    r"""Critical points of ``objective`` (:math:`\nabla f=0`) found from every row of ``starts`` at
    once by a Newton-type method; the one critical-point search of the package.

    With ``damping`` :math:`\lambda` (default) a damped Gauss--Newton method on
    :math:`\tfrac12\lVert\nabla f(x)\rVert^2`:

    .. math:: x \leftarrow x-(H^2+\lambda I)^{-1}H\,g,\qquad g=\nabla f(x),\ H=\nabla^2 f(x),

    where the damping of each start shrinks after a step that reduced :math:`\lVert g\rVert` and
    grows otherwise. With ``damping=None`` Newton's method on the equation :math:`\nabla f(x)=0`,
    steps :math:`-\nabla^2f(x)^{+}\nabla f(x)` (pseudo-inverse, so a singular Hessian is allowed);
    a start stops once its step is below ``1e-13`` (relative) or it leaves ``|x| <= 1e6``;
    singular values below ``rcond`` times the largest are cut (numpy's default without it). Both
    are attracted to critical points of *every* index (minima, saddles, maxima) -- what we want when
    surveying them, and a few Newton steps polish a minimiser that another method found to
    machine precision. The objective's ``grad`` and ``hess`` must accept stacks of points
    ``(k, n)``; or give ``hess``, the Hessian of one point (e.g. ``lambda x: hessian(None, x,
    grad=objective.grad)`` for an objective with a gradient only): then ``value``, ``grad`` and
    ``hess`` are evaluated point by point.

    Returns a dict of numpy arrays: ``x`` (points), ``value``, ``grad_norm``, ``eigenvalues`` (of
    the Hessian, ascending, one row per point; NaN for points that blew up) and ``converged``
    (``grad_norm <= tol``).
    """
    x = np.array(starts, dtype=float, ndmin=2)
    k, n = x.shape
    if hess is not None:
        objective = _PointwiseObjective(objective, hess)
    pinv = np.linalg.pinv if rcond is None else (lambda H: np.linalg.pinv(H, rcond=rcond))
    if damping is None:
        active = np.ones(k, dtype=bool)
        with np.errstate(all="ignore"):
            for _ in range(steps):
                if not active.any():
                    break
                xa = x[active]
                step = (pinv(objective.hess(xa)) @ objective.grad(xa)[..., None])[..., 0]
                step[~np.isfinite(step).all(axis=1)] = 0.0
                x[active] = xa - step
                small = np.linalg.norm(step, axis=1) <= 1e-13 * (1 + np.linalg.norm(x[active], axis=1))
                blown = ~np.isfinite(x[active]).all(axis=1) | (np.abs(x[active]).max(axis=1) > 1e6)
                idx = np.flatnonzero(active)
                active[idx[small | blown]] = False
            finite = np.isfinite(x).all(axis=1)
            gn = np.full(k, np.nan)
            gn[finite] = np.linalg.norm(objective.grad(x[finite]), axis=1)
        eig = np.full((k, n), np.nan)
        if finite.any():
            eig[finite] = np.linalg.eigvalsh(objective.hess(x[finite]))
        with np.errstate(all="ignore"):
            value = np.asarray(objective.value(x), dtype=float)
        return {"x": x, "value": value, "grad_norm": gn, "eigenvalues": eig, "converged": gn <= tol}
    lam = np.full(k, float(damping))
    g = objective.grad(x)
    gn = np.linalg.norm(g, axis=1)
    eye = np.eye(n)
    for _ in range(steps):
        H = objective.hess(x)
        A = H @ H + lam[:, None, None] * eye
        step = np.linalg.solve(A, (H @ g[:, :, None]))[:, :, 0]
        trial = x - step
        g_new = objective.grad(trial)
        gn_new = np.linalg.norm(g_new, axis=1)
        ok = np.isfinite(gn_new) & (gn_new < gn)
        x = np.where(ok[:, None], trial, x)
        g = np.where(ok[:, None], g_new, g)
        gn = np.where(ok, gn_new, gn)
        lam = np.clip(np.where(ok, lam / 3, lam * 4), 1e-14, 1e8)
    eig = np.linalg.eigvalsh(objective.hess(x))
    return {"x": x, "value": np.asarray(objective.value(x), dtype=float), "grad_norm": gn,
            "eigenvalues": eig, "converged": gn <= tol}


class _PointwiseObjective:
    """An objective of one point seen as one of stacks of points (for
    :func:`newton_critical_points` with ``hess=``)."""

    def __init__(self, objective, hess: Callable):
        self.value, self.grad, self.hess = _rowwise(objective.value), _rowwise(objective.grad), _rowwise(hess)


def critical_points(objective, xlim=(-2, 2), ylim=(-2, 2), num: int = 15, tol: float = 1e-10,
                    max_iter: int = 100, merge: float = 1e-3) -> np.ndarray:
    r"""All critical points (:math:`\nabla f=0`) of a 2-D objective found inside a box.

    Newton's method on the equation :math:`\nabla f(x)=0` (:func:`newton_critical_points` with
    ``damping=None``) is started from a ``num × num`` grid over the box; converged points
    (``‖∇f‖ ≤ tol``) inside the box are merged when they lie within ``merge`` of each other.
    Returns an ``(k, 2)`` array sorted by ``x₁`` then ``x₂``. Newton converges to a critical point
    of *any* type, which is why it finds saddles and maxima as well as minima. At degenerate
    critical points it converges only linearly, which ``max_iter`` must allow for.
    """
    if objective.dim != 2:
        raise ValueError(f"critical_points needs a 2-D objective, {objective.name} has dim={objective.dim}")
    gx, gy = np.meshgrid(np.linspace(xlim[0], xlim[1], num), np.linspace(ylim[0], ylim[1], num))
    res = newton_critical_points(objective, np.stack([gx.ravel(), gy.ravel()], axis=1), steps=max_iter,
                                 damping=None, tol=tol)
    X = res["x"][res["converged"]]
    inside = (X[:, 0] >= xlim[0]) & (X[:, 0] <= xlim[1]) & (X[:, 1] >= ylim[0]) & (X[:, 1] <= ylim[1])
    found: list[np.ndarray] = []
    for x in X[inside]:
        if all(np.linalg.norm(x - p) > merge for p in found):
            found.append(x.copy())
    pts = np.array(found).reshape(-1, 2)
    return pts[np.lexsort((pts[:, 1], pts[:, 0]))] if len(pts) else pts
