r"""Second-order and quasi-Newton methods, Hessian approximations, and :func:`minimize`.

Each method's step is a small function that reads like its formula (the chapter shows them):

- :func:`newton_step` -- :math:`d=-H^{-1}g`; :func:`regularized_newton_step` -- :math:`d=-(H+\lambda I)^{-1}g`;
- :func:`bfgs_update` -- the BFGS update of the inverse Hessian
  :math:`H_{k+1}=(I-\rho sy^\top)H_k(I-\rho ys^\top)+\rho ss^\top`, :math:`\rho=1/y^\top s`;
- :func:`two_loop` -- the L-BFGS two-loop recursion for :math:`-H_kg` from the last ``m`` pairs
  :math:`(s_i, y_i)` and :math:`H_0=\gamma I`, :math:`\gamma=s^\top y/y^\top y`;
  :func:`lbfgs_remember` keeps that memory;
- :func:`truncated_cg` -- conjugate gradients on :math:`Hd=-g` from Hessian-vector products,
  stopped early (Newton-CG);
- Hessian approximations: :func:`hessian_diagonal`, :func:`hutchinson_diagonal`,
  :func:`fd_hvp` (finite-difference Hessian-vector product), :func:`fd_hessian`,
  :func:`subsampled_hessian` (finite sums).

:func:`minimize` runs them with scipy's interface and returns a ``scipy.optimize.OptimizeResult``::

    res = dlopt.minimize(dlopt.functions.Rosenbrock(), [-1.2, 1.0], method="l-bfgs")
    res.x, res.nit, res.nfev

The strong-Wolfe line search and the two-loop recursion are shared with
:class:`dlopt.torch.LBFGS`.
"""

from __future__ import annotations

import math

import numpy as np

from dlopt.analysis import calculus
from dlopt.analysis.calculus import fd_step
from dlopt.analysis.calculus import hessian_vector_product as fd_hvp
from dlopt.optim.linesearch import Backtracking, strong_wolfe

__all__ = [
    "newton_step",
    "regularized_newton_step",
    "bfgs_update",
    "two_loop",
    "lbfgs_remember",
    "truncated_cg",
    "hessian_diagonal",
    "hutchinson_diagonal",
    "fd_hvp",
    "fd_hessian",
    "subsampled_hessian",
    "minimize",
    "METHODS",
]

METHODS = ("l-bfgs", "bfgs", "newton", "newton-cg", "lm", "gd")
"""The methods :func:`minimize` knows."""


# ------------------------------------------------------------------------------------------------
# The steps, one formula each
# ------------------------------------------------------------------------------------------------


def newton_step(g, H):
    r"""The Newton direction :math:`d=-H^{-1}g`: the minimiser of the quadratic model
    :math:`g^\top d+\tfrac12d^\top Hd` when :math:`H\succ0`."""
    return -np.linalg.solve(H, g)


def regularized_newton_step(g, H, lam: float):
    r"""The regularised (Levenberg--Marquardt) direction :math:`d=-(H+\lambda I)^{-1}g`:
    Newton for :math:`\lambda\to0`, a short gradient step :math:`-g/\lambda` for large
    :math:`\lambda`."""
    return -np.linalg.solve(H + lam * np.eye(len(g)), g)


def bfgs_update(H, s, y):
    r"""BFGS update of the inverse-Hessian approximation from the step :math:`s=x_{k+1}-x_k`
    and the gradient change :math:`y=g_{k+1}-g_k`:

    .. math:: H_{k+1}=(I-\rho sy^\top)H_k(I-\rho ys^\top)+\rho ss^\top,\qquad \rho=\frac1{y^\top s}.

    :math:`H_{k+1}` satisfies the secant equation :math:`H_{k+1}y=s` and stays positive definite
    when :math:`y^\top s>0`. Multiplied out (``H`` is symmetric, so :math:`y^\top H=(Hy)^\top`) the
    update is a sum of rank-one terms and costs :math:`O(n^2)` operations:

    .. math:: H_{k+1}=H_k-\rho\,(s\,(H_ky)^\top+H_ky\,s^\top)+(\rho^2\,y^\top H_ky+\rho)\,ss^\top.
    """
    rho = 1.0 / (y @ s)
    Hy = H @ y
    return (H - rho * (np.outer(s, Hy) + np.outer(Hy, s))
            + (rho**2 * (y @ Hy) + rho) * np.outer(s, s))


def two_loop(g, S, Y, rho, gamma):
    r"""The L-BFGS two-loop recursion: the direction :math:`d=-H_kg`, where :math:`H_k` is the
    BFGS inverse Hessian built from :math:`H_0=\gamma I` and the stored pairs
    ``S[i]`` :math:`=s_i`, ``Y[i]`` :math:`=y_i`, ``rho[i]`` :math:`=1/y_i^\top s_i`
    (oldest first), in :math:`O(mn)` operations.

    Works on numpy arrays and torch tensors alike (only ``@``, ``*``, ``+``, ``-``).
    """
    q = -g
    alpha = [None] * len(S)
    for i in reversed(range(len(S))):  # newest to oldest
        alpha[i] = (S[i] @ q) * rho[i]
        _add_scaled_(q, -alpha[i], Y[i])  # q ← q − αᵢ yᵢ
    r = q * gamma  # r ← H₀ q
    for i in range(len(S)):  # oldest to newest
        beta = (Y[i] @ r) * rho[i]
        _add_scaled_(r, alpha[i] - beta, S[i])  # r ← r + (αᵢ − βᵢ) sᵢ
    return r


def _add_scaled_(v, a, w):
    """``v += a * w`` in place; on torch tensors the single fused ``add_`` that
    ``torch.optim.LBFGS`` uses (so that :class:`dlopt.torch.LBFGS` matches it to the last bit)."""
    if hasattr(v, "add_"):
        v.add_(w, alpha=a)
    else:
        v += a * w


def lbfgs_remember(S, Y, rho, s, y, m: int, min_curvature: float = 1e-10, relative: bool = False):
    r"""Store the pair :math:`(s, y)` in the L-BFGS memory (lists ``S``, ``Y``, ``rho``; the
    oldest pair is dropped beyond ``m``) and return the new scale
    :math:`\gamma=s^\top y/y^\top y` of :math:`H_0=\gamma I`.

    The pair is skipped (returns ``None``) unless the curvature :math:`y^\top s` exceeds
    ``min_curvature`` -- an absolute threshold (``torch.optim.LBFGS``: ``1e-10``) or, with
    ``relative=True``, a multiple of :math:`y^\top y` (L-BFGS-B: machine epsilon), which does not
    stall when the steps become small.
    """
    ys = y @ s
    if not ys > (min_curvature * (y @ y) if relative else min_curvature):
        return None
    if len(S) == m:
        S.pop(0)
        Y.pop(0)
        rho.pop(0)
    S.append(s)
    Y.append(y)
    rho.append(1.0 / ys)
    return ys / (y @ y)


def truncated_cg(hessp, g, tol: float, maxiter: int):
    r"""Approximately solve the Newton system :math:`Hd=-g` by conjugate gradients using only
    Hessian-vector products ``hessp(v)`` :math:`=Hv`; stop when the residual
    :math:`\lVert Hd+g\rVert\le` ``tol``, after ``maxiter`` iterations, or at negative curvature
    (then return the last iterate, or :math:`-g` if that happens at once). Returns
    ``(d, iterations)``.
    """
    d = np.zeros_like(g)
    r = g.copy()  # residual H d + g
    p = -r
    rr = r @ r
    for j in range(maxiter):
        Hp = hessp(p)
        curvature = p @ Hp
        if curvature <= 0:  # negative curvature: the quadratic model is unbounded along p
            return (-g if j == 0 else d), j + 1
        a = rr / curvature
        d = d + a * p
        r = r + a * Hp
        rr_new = r @ r
        if math.sqrt(rr_new) <= tol:
            return d, j + 1
        p = -r + (rr_new / rr) * p
        rr = rr_new
    return d, maxiter


# ------------------------------------------------------------------------------------------------
# Hessian approximations
# ------------------------------------------------------------------------------------------------


def hessian_diagonal(hess, x):
    r"""The exact diagonal :math:`(\partial^2 f/\partial x_i^2)_i` from ``hess(x)`` (a callable or
    an objective with ``.hess``) -- the preconditioner of diagonal second-order methods."""
    hess = hess.hess if hasattr(hess, "hess") else hess
    return np.diag(np.asarray(hess(np.asarray(x, dtype=float)))).copy()


def hutchinson_diagonal(hessp, n: int, samples: int = 100, rng=None):
    r"""Hutchinson-style estimate of :math:`\mathrm{diag}(H)` from Hessian-vector products:

    .. math:: \mathrm{diag}(H)\approx\frac1S\sum_{s=1}^S v_s\odot Hv_s,\qquad v_s\in\{\pm1\}^n
              \text{ uniform (Rademacher)},

    unbiased because :math:`\mathbb E[v_iv_j]=\delta_{ij}`. ``hessp(v)`` returns :math:`Hv`.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    rng = np.random.default_rng(rng)
    total = np.zeros(n)
    for _ in range(samples):
        v = rng.choice([-1.0, 1.0], size=n)
        total += v * np.asarray(hessp(v), dtype=float)
    return total / samples


def fd_hessian(grad, x, eps: float | None = None):
    """The full Hessian from ``2n`` gradients (:func:`dlopt.calculus.hessian` with ``grad=``),
    symmetrised; by default the step is the one :func:`fd_hvp` takes along a coordinate vector."""
    grad = grad.grad if hasattr(grad, "grad") else grad
    x = np.asarray(x, dtype=float)
    h = fd_step(x, np.eye(x.size)[0]) if eps is None else float(eps)
    return calculus.hessian(None, x, h, grad=grad)


def subsampled_hessian(objective, w, idx):
    r"""Sub-sampled Hessian of a finite-sum objective :math:`f=\frac1m\sum_i f_i`:
    :math:`\frac1{|S|}\sum_{i\in S}\nabla^2 f_i(w)` (+ the regulariser), over the sample indices
    ``idx``. With all indices it equals the exact Hessian.

    Knows :class:`~dlopt.functions.LeastSquares` (:math:`X_S^\top X_S/|S|`) and
    :class:`~dlopt.functions.LogisticRegression` (:math:`X_S^\top D_SX_S/|S|+\lambda I`); any other
    objective must provide ``batch_hess(w, idx)``.
    """
    from dlopt.problems.functions import LeastSquares, LogisticRegression

    idx = np.asarray(idx)
    if idx.size == 0:
        raise ValueError("the sample idx is empty")
    w = np.asarray(w, dtype=float)
    if isinstance(objective, LeastSquares):
        Xs = objective.X[idx]
        return Xs.T @ Xs / idx.size
    if isinstance(objective, LogisticRegression):
        Xs, ys = objective.X[idx], objective.y[idx]
        z = ys * (Xs @ w)
        p = np.exp(-np.logaddexp(0.0, -z))  # σ(z)
        return (Xs.T * (p * (1 - p))) @ Xs / idx.size + objective.l2 * np.eye(objective.dim)
    if hasattr(objective, "batch_hess"):
        return np.asarray(objective.batch_hess(w, idx))
    raise ValueError(f"subsampled_hessian does not know {type(objective).__name__}: give it batch_hess(w, idx)")


# ------------------------------------------------------------------------------------------------
# minimize
# ------------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised by a method's iteration to end the run with a status and a message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _Problem:
    """The function to minimise, with counted value/gradient/Hessian evaluations."""

    def __init__(self, fun, x0, args, jac, hess, hessp, eps):
        self.nfev = self.njev = self.nhev = 0
        self.args, self.eps, self.n = tuple(args), eps, x0.size
        self._hess, self._hessp = hess, hessp
        if hasattr(fun, "value") and hasattr(fun, "grad") and not callable(jac):
            from dlopt.problems.functions import Objective

            objective = fun
            if getattr(objective, "dim", x0.size) != x0.size:
                raise ValueError(f"x0 has {x0.size} entries, the objective expects {objective.dim}")
            self._value, self._grad, self._both = objective.value, objective.grad, None
            if hess is None and hessp is None and hasattr(objective, "hess") and (
                not isinstance(objective, Objective) or type(objective).hess is not Objective.hess
            ):  # an objective's own Hessian (one with value and grad only, e.g. a network's, has none)
                self._hess = objective.hess
        elif jac is True:
            self._value = self._grad = None
            self._both = fun
        elif callable(jac):
            self._value, self._grad, self._both = fun, jac, None
        elif jac is None or jac is False:
            self._value, self._grad, self._both = fun, None, None
        else:
            raise ValueError(f"jac must be True, a callable or None, got {jac!r}")

    _cache_f = _cache_g = _cache_fg = (None, None)  # the last point asked for, and the answer

    @staticmethod
    def _cached(cache, x):
        return cache[0] is not None and cache[0].shape == x.shape and np.array_equal(cache[0], x)

    def _f(self, x):
        if self._cached(self._cache_f, x):
            return self._cache_f[1]
        self.nfev += 1
        f = float(np.asarray(self._value(x, *self.args)).item())
        self._cache_f = (x.copy(), f)
        return f

    def _g(self, x):
        if self._cached(self._cache_g, x):
            return self._cache_g[1]
        g = self._g_uncached(x)
        self._cache_g = (x.copy(), g)
        return g

    def _g_uncached(self, x):
        if self._grad is None:  # central differences, 2n function values
            h = np.finfo(float).eps ** (1 / 3) * np.maximum(1.0, np.abs(x))
            return np.array([(self._f(x + h[i] * e) - self._f(x - h[i] * e)) / (2 * h[i])
                             for i, e in enumerate(np.eye(x.size))])
        self.njev += 1
        return self._check(np.asarray(self._grad(x, *self.args), dtype=float), x)

    def _check(self, g, x):
        if g.shape != x.shape:
            raise ValueError(f"the gradient has shape {g.shape} but x0 has shape {x.shape}")
        return g

    def fg(self, x):
        """f(x) and ∇f(x)."""
        if self._both is not None:
            if self._cached(self._cache_fg, x):
                return self._cache_fg[1]
            self.nfev += 1
            self.njev += 1
            f, g = self._both(x, *self.args)
            fg = float(np.asarray(f).item()), self._check(np.asarray(g, dtype=float), x)
            self._cache_fg = (x.copy(), fg)
            return fg
        return self._f(x), self._g(x)

    def value(self, x):
        return self.fg(x)[0] if self._both is not None else self._f(x)

    def grad(self, x):
        return self.fg(x)[1] if self._both is not None else self._g(x)

    def hess(self, x):
        self.nhev += 1
        if self._hess is not None:
            return np.asarray(self._hess(x, *self.args), dtype=float)
        if self._hessp is not None:
            return np.column_stack([np.asarray(self._hessp(x, e, *self.args), dtype=float)
                                    for e in np.eye(x.size)])
        self.nhev -= 1
        return fd_hessian(self.grad, x, self.eps)

    def hessp(self, x, p):
        if self._hessp is not None:
            self.nhev += 1
            return np.asarray(self._hessp(x, p, *self.args), dtype=float)
        if self._hess is not None:
            self.nhev += 1
            return np.asarray(self._hess(x, *self.args), dtype=float) @ p
        return fd_hvp(self.grad, x, p, self.eps)

    def phi(self, x, d):
        """The line function t ↦ (f(x+td), ∇f(x+td)ᵀd, ∇f(x+td))."""

        def phi(t):
            f, g = self.fg(x + t * d)
            return f, g @ d, g

        return phi


def _wolfe_step(P, x, f, g, d, t0, o):
    """A strong-Wolfe line search along d; returns (x_new, f_new, g_new, step s)."""
    gtd = float(g @ d)
    with np.errstate(over="ignore", invalid="ignore"):
        ls = strong_wolfe(P.phi(x, d), t0, f, gtd, g, c1=o["c1"], c2=o["c2"], max_iter=o["max_ls"],
                          tolerance_change=o["tolerance_change"], d_norm=float(np.max(np.abs(d))))
    if not ls.success and not ls.f < f:
        if ls.nonfinite:
            raise _Stop(3, "the line search met a non-finite function value and found no better point")
        raise _Stop(2, "the line search found no acceptable step (loss of precision?)")
    s = ls.t * d
    return x + s, ls.f, ls.data, s


def _lbfgs(P, x, f, g, o):
    """L-BFGS: d = -H_k g by the two-loop recursion, step by strong Wolfe."""
    S, Y, rho, gamma = [], [], [], 1.0
    while True:
        d = two_loop(g, S, Y, rho, gamma)
        if not g @ d < 0:  # memory gave no descent direction: restart from steepest descent
            S.clear(), Y.clear(), rho.clear()
            d, gamma = -g, 1.0
        t0 = 1.0 if S else min(1.0, 1.0 / float(np.linalg.norm(g)))
        x_new, f_new, g_new, s = _wolfe_step(P, x, f, g, d, t0, o)
        gamma = lbfgs_remember(S, Y, rho, s, g_new - g, o["m"], np.finfo(float).eps, relative=True) or gamma
        x, f, g = x_new, f_new, g_new
        yield x, f, g, {}


def _bfgs(P, x, f, g, o):
    """BFGS: d = -H g, strong Wolfe, inverse-Hessian update (H_0 scaled after the first step)."""
    H = np.eye(x.size)
    first = True
    while True:
        d = -H @ g
        if not g @ d < 0:
            H, first, d = np.eye(x.size), True, -g
        t0 = min(1.0, 1.0 / float(np.linalg.norm(g))) if first else 1.0
        x_new, f_new, g_new, s = _wolfe_step(P, x, f, g, d, t0, o)
        y = g_new - g
        if y @ s > np.finfo(float).eps * (y @ y):
            if first:
                H = (y @ s) / (y @ y) * np.eye(x.size)
                first = False
            H = bfgs_update(H, s, y)
        x, f, g = x_new, f_new, g_new
        yield x, f, g, {"hess_inv": H}


def _modified_cholesky_direction(g, H):
    """Newton direction with H + τI, τ ≥ 0 the smallest of 0, β, 2β, … making it positive definite
    (Nocedal & Wright, Alg. 3.3)."""
    beta = 1e-3 * max(1.0, float(np.max(np.abs(H))))
    tau = 0.0 if np.min(np.diag(H)) > 0 else beta
    for _ in range(100):
        try:
            L = np.linalg.cholesky(H + tau * np.eye(len(g)))
            return -np.linalg.solve(L.T, np.linalg.solve(L, g))
        except np.linalg.LinAlgError:
            tau = max(2 * tau, beta)
    return -g


def _backtrack(ls, P, x, g, d):
    """``x + t d`` with the step ``t`` the backtracking line search ``ls`` accepts; a search that
    finds no decrease ends the run."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return x + ls(P, x, g, d) * d
    except RuntimeError:
        raise _Stop(2, "the backtracking line search found no decrease (loss of precision?)") from None


def _newton(P, x, f, g, o):
    """Newton: pure (x += -H⁻¹g) or damped (modified Newton direction + Armijo backtracking)."""
    ls = Backtracking(eta0=1.0, c=o["c1"], rho=0.5) if o["line_search"] else None
    while True:
        H = P.hess(x)
        if ls is None:
            try:
                x = x + newton_step(g, H)
            except np.linalg.LinAlgError as err:
                raise _Stop(2, f"singular Hessian: {err}") from None
        else:
            d = _modified_cholesky_direction(g, H)
            x = _backtrack(ls, P, x, g, d)
        f, g = P.fg(x)
        yield x, f, g, {}


def _lm(P, x, f, g, o):
    """Levenberg–Marquardt / regularised Newton: d = -(H+λI)⁻¹g, accepted when the actual decrease
    is a fair share of the model's; λ shrinks after good steps and grows after bad ones (Nielsen)."""
    H = P.hess(x)
    lam = o["lam0"] * max(1e-12, float(np.max(np.abs(np.diag(H)))))
    nu = 2.0
    while True:
        nonfinite = False
        for _ in range(40):  # λ grows by 2, 4, 8, ...: after 40 rejections the step is nil
            with np.errstate(all="ignore"):
                try:
                    d = regularized_newton_step(g, H, lam)
                except np.linalg.LinAlgError:
                    lam, nu = lam * nu, 2 * nu
                    continue
                predicted = -(g @ d + 0.5 * d @ H @ d)
                f_new, g_new = P.fg(x + d)
                ratio = (f - f_new) / predicted if predicted > 0 else -1.0
            nonfinite |= not np.isfinite(f_new)
            if np.isfinite(f_new) and ratio > 1e-4:
                lam *= max(1 / 3, 1 - (2 * ratio - 1) ** 3)
                nu = 2.0
                break
            lam, nu = lam * nu, 2 * nu
        else:
            if nonfinite:
                raise _Stop(3, "Levenberg-Marquardt met non-finite function values and found no decrease")
            raise _Stop(2, "Levenberg-Marquardt found no decrease in 40 trials (loss of precision?)")
        x, f, g = x + d, f_new, g_new
        H = P.hess(x)
        yield x, f, g, {"lam": lam}


def _newton_cg(P, x, f, g, o):
    """Newton-CG: truncated CG on Hessian-vector products (forcing term min(½, √‖g‖)‖g‖), strong Wolfe."""
    while True:
        gnorm = float(np.linalg.norm(g))
        d, _ = truncated_cg(lambda v, x=x: P.hessp(x, v), g, min(0.5, math.sqrt(gnorm)) * gnorm,
                            o["cg_maxiter"] or 2 * x.size)
        if not g @ d < 0:
            d = -g
        x, f, g, _ = _wolfe_step(P, x, f, g, d, 1.0, o)
        yield x, f, g, {}


def _gd(P, x, f, g, o):
    """Gradient descent: fixed step ``lr``, or Armijo backtracking from 1 when ``lr`` is None."""
    ls = Backtracking(eta0=1.0, c=o["c1"], rho=0.5) if o["lr"] is None else None
    while True:
        if ls is None:
            x = x - o["lr"] * g
        else:
            x = _backtrack(ls, P, x, g, -g)
        f, g = P.fg(x)
        yield x, f, g, {}


_ITERATIONS = {"l-bfgs": _lbfgs, "bfgs": _bfgs, "newton": _newton, "newton-cg": _newton_cg, "lm": _lm, "gd": _gd}
_ALIASES = {"lbfgs": "l-bfgs", "l_bfgs": "l-bfgs", "newton_cg": "newton-cg", "newtoncg": "newton-cg",
            "levenberg-marquardt": "lm", "gradient-descent": "gd"}
_DEFAULTS = {
    "gtol": 1e-5,  # stop when ‖∇f‖∞ ≤ gtol
    "maxiter": None,  # iterations (default: 15000 for l-bfgs and gd, 200·n for the others)
    "disp": False,  # print a summary at the end
    "path": False,  # record res.path (iterates), res.fun_path and res.grad_norms (‖g‖∞)
    "m": 10,  # l-bfgs memory
    "c1": 1e-4,  # sufficient-decrease constant
    "c2": 0.9,  # curvature constant (strong Wolfe)
    "max_ls": 25,  # evaluations per strong-Wolfe search
    "tolerance_change": 1e-12,  # strong Wolfe: minimal bracket width (times ‖d‖∞)
    "line_search": True,  # newton: damped Newton with backtracking (False: pure Newton)
    "lr": None,  # gd: fixed step (None: Armijo backtracking)
    "lam0": 1e-3,  # lm: initial λ relative to max|diag H|
    "cg_maxiter": None,  # newton-cg: CG iterations per step (default 2n)
    "eps": None,  # finite-difference step for Hessians / Hessian-vector products
}
_MESSAGES = {
    0: "Optimization terminated successfully: ‖∇f‖∞ ≤ gtol.",
    1: "Maximum number of iterations has been exceeded.",
    99: "The callback raised StopIteration.",
}


def minimize(fun, x0, args=(), jac=None, hess=None, hessp=None, method: str = "l-bfgs",
             options: dict | None = None, callback=None):
    r"""Minimise ``fun`` from ``x0`` with one of :data:`METHODS`, scipy-style.

    Parameters
    ----------
    fun
        ``fun(x, *args) -> float`` -- or ``-> (float, gradient)`` with ``jac=True`` -- or an
        :class:`~dlopt.functions.Objective` (its ``value``, ``grad`` and ``hess`` are used).
    x0
        Starting point, shape ``(n,)``, finite.
    jac
        ``True`` (``fun`` returns the gradient too), a callable ``jac(x, *args)``, or ``None``
        (central finite differences).
    hess, hessp
        ``hess(x, *args)`` (matrix) or ``hessp(x, p, *args)`` (:math:`\nabla^2f(x)p`) for
        ``'newton'``, ``'lm'``, ``'newton-cg'``; without them finite differences of the gradient.
    method
        ``'l-bfgs'`` (two-loop recursion, memory ``m``, :math:`H_0=\gamma I`, strong Wolfe),
        ``'bfgs'``, ``'newton'`` (damped: modified Cholesky + backtracking; pure with
        ``options={'line_search': False}``), ``'newton-cg'``, ``'lm'`` (Levenberg--Marquardt,
        adaptive :math:`\lambda`), ``'gd'``.
    options
        ``gtol`` (``‖∇f‖∞`` tolerance, 1e-5), ``maxiter``, ``disp``, ``path``, ``m``, ``c1``,
        ``c2``, ``max_ls``, ``tolerance_change``, ``line_search``, ``lr``, ``lam0``,
        ``cg_maxiter``, ``eps``.
    callback
        ``callback(xk)`` after every iteration; raising ``StopIteration`` ends the run.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, nit, nfev, njev, nhev, success, status, message`` (status 0: converged,
        1: ``maxiter`` reached, 2: line search failed / precision loss, 3: non-finite function
        value, 99: callback stopped), plus ``hess_inv`` (bfgs) and with ``path=True``: ``path``
        (iterates), ``fun_path`` (their values), ``grad_norms`` (their ``‖∇f‖∞``).
    """
    name = str(method).lower()
    name = _ALIASES.get(name, name)
    if name not in _ITERATIONS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    options = dict(options or {})
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
    o = {**_DEFAULTS, **options}
    x = np.asarray(x0, dtype=float)
    if x.ndim > 1:
        raise ValueError(f"x0 must be one-dimensional, got shape {x.shape}")
    x = x.reshape(-1).copy()
    if x.size == 0:
        raise ValueError("x0 is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 must be finite (it contains nan or inf)")
    if o["maxiter"] is None:
        o["maxiter"] = 15000 if name in ("l-bfgs", "gd") else 200 * x.size
    if int(o["maxiter"]) != o["maxiter"] or o["maxiter"] < 0:
        raise ValueError(f"maxiter must be a non-negative integer, got {o['maxiter']}")
    if not o["gtol"] >= 0:
        raise ValueError(f"gtol must be non-negative, got {o['gtol']}")
    if int(o["m"]) < 1:
        raise ValueError(f"the memory m must be >= 1, got {o['m']}")
    if not 0 < o["c1"] < o["c2"] < 1:
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={o['c1']}, c2={o['c2']}")
    if o["lr"] is not None and not o["lr"] > 0:
        raise ValueError(f"lr must be positive, got {o['lr']}")

    P = _Problem(fun, x, args, jac, hess, hessp, o["eps"])
    f, g = P.fg(x)
    path, values, grad_norms = [x.copy()], [f], [float(np.max(np.abs(g)))]
    nit, extra = 0, {}
    if not (math.isfinite(f) and np.all(np.isfinite(g))):
        status, message = 3, "The function value or gradient at x0 is not finite."
    else:
        iterations = _ITERATIONS[name](P, x, f, g, o)
        status, message = 1, _MESSAGES[1]
        while True:
            if float(np.max(np.abs(g))) <= o["gtol"]:
                status, message = 0, _MESSAGES[0]
                break
            if nit >= o["maxiter"]:
                break
            try:
                x_new, f_new, g_new, extra = next(iterations)
            except _Stop as stop:
                status, message = stop.status, stop.message
                break
            nit += 1
            if not (math.isfinite(f_new) and np.all(np.isfinite(g_new))):
                status, message = 3, f"A non-finite function value or gradient appeared at iteration {nit}."
                break
            x, f, g = x_new, f_new, g_new
            if o["path"]:
                path.append(x.copy())
                values.append(f)
                grad_norms.append(float(np.max(np.abs(g))))
            if callback is not None:
                try:
                    callback(np.copy(x))
                except StopIteration:
                    status, message = 99, _MESSAGES[99]
                    break

    from scipy.optimize import OptimizeResult

    res = OptimizeResult(x=x, fun=f, jac=g, nit=nit, nfev=P.nfev, njev=P.njev, nhev=P.nhev,
                         success=status == 0, status=status, message=message, method=name)
    if "hess_inv" in extra:
        res.hess_inv = extra["hess_inv"]
    if o["path"]:
        res.path, res.fun_path, res.grad_norms = np.array(path), np.array(values), np.array(grad_norms)
    if o["disp"]:
        print(f"{message}\n         Current function value: {f:.6g}\n         Iterations: {nit}\n"
              f"         Function evaluations: {P.nfev}\n         Gradient evaluations: {P.njev}")
    return res
