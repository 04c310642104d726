r"""Stochastic gradients: noisy oracles, ensembles of runs, noise floors, escape times, averaging.

The chapter *Stochastic gradient methods* asks questions about *distributions* of runs -- the mean
loss over hundreds of seeds, the time a noisy walker needs to leave a basin -- so this module runs
many independent copies of an update rule at once, as the rows of one array:

>>> f = dlopt.functions.TwoBasin()
>>> ens = ensemble(f, np.full((500, 1), f.x_sharp), steps=2000, lr=0.02, temperature=0.2,
...                stop=f.in_flat_basin, rng=np.random.default_rng(0))
>>> ens.hit  # first step at which each run entered the flat basin (-1: not within 2000 steps)

The update itself is a rule from :mod:`dlopt.rules` (default :func:`~dlopt.rules.gd`) applied to
the stacked iterates, with the gradient replaced by a noisy estimate; nothing here re-implements
an update. Helpers compute what theory predicts for these runs: the stationary covariance of SGD
on a quadratic (:func:`stationary_covariance`), Kramers' escape time (:func:`kramers_time`), a fit
of the Arrhenius law (:func:`arrhenius_fit`), and Polyak--Ruppert averages (:func:`polyak_average`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlopt.optim.runner import gradient_noise, run
from dlopt.optim.rules import gd
from dlopt.optim.schedules import as_schedule

__all__ = [
    "noisy_oracle",
    "minibatch_oracle",
    "Ensemble",
    "ensemble",
    "langevin_sigma",
    "stationary_covariance",
    "stationary_excess",
    "least_squares_stationary",
    "expected_excess",
    "kramers_time",
    "mean_first_passage",
    "arrhenius_fit",
    "polyak_average",
    "mean_ci",
    "mean_halfwidth",
    "escape_time_mean",
    "two_state_occupancy",
]


def noisy_oracle(objective, sigma: float, rng: np.random.Generator, cov=None):
    r"""A gradient oracle ``g(x, k, rng) = ∇f(x) + ξ`` with ``ξ ~ N(0, σ² I)`` (or ``N(0, cov)``),
    drawn from its own ``rng``.

    Additive, state-independent noise: the simplest model of a stochastic gradient, for which the
    stationary behaviour of SGD on a quadratic is known exactly (:func:`stationary_covariance`).
    Pass it to :func:`dlopt.run` as ``grad=``.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be non-negative, got {sigma}")
    chol = None if cov is None else np.linalg.cholesky(np.asarray(cov, dtype=float))

    def oracle(x, k, rng_=None):
        g = np.asarray(objective.grad(x), dtype=float)
        xi = rng.standard_normal(g.shape)
        return g + (sigma * xi if chol is None else xi @ chol.T)

    return oracle


def minibatch_oracle(X, y, batch_size: int):
    r"""Per-run mini-batch gradients of least squares for :func:`ensemble` (``grad=``).

    Returns ``grad(W, k, rng)`` for stacked parameters ``W`` of shape ``(runs, n)``: each run
    draws its own ``batch_size`` sample indices uniformly *with* replacement and gets
    :math:`\frac1b\sum_{i\in B}(x_i^\top w-y_i)x_i`, an unbiased estimate of the gradient of
    :math:`\frac1{2m}\lVert Xw-y\rVert^2` whose covariance is :math:`\Sigma(w)/b`, with
    :math:`\Sigma(w)` the covariance of a single-sample gradient.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    m = X.shape[0]
    if not 1 <= batch_size:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def grad(W, k, rng):
        idx = rng.integers(0, m, (W.shape[0], batch_size))
        Xb = X[idx]  # (runs, b, n)
        r = np.einsum("rbn,rn->rb", Xb, W) - y[idx]
        return np.einsum("rb,rbn->rn", r, Xb) / batch_size

    return grad


def langevin_sigma(temperature: float, lr: float) -> float:
    r"""Gradient-noise level that turns ``x - η(∇f + σξ)`` into Langevin dynamics at temperature T.

    The discretised Langevin equation is :math:`x_{k+1}=x_k-\eta\nabla f(x_k)+\sqrt{2\eta T}\,\xi_k`,
    i.e. SGD with gradient noise of standard deviation :math:`\sigma=\sqrt{2T/\eta}`; conversely SGD
    with noise level :math:`\sigma` runs at temperature :math:`T=\eta\sigma^2/2`.
    """
    if temperature < 0 or lr <= 0:
        raise ValueError("need temperature >= 0 and lr > 0")
    return float(np.sqrt(2.0 * temperature / lr))


@dataclass
class Ensemble:
    """Independent runs of one method, stacked.

    ``x``: final iterates ``(runs, n)``; ``values``: ``f`` of every run at every step,
    ``(steps+1, runs)``; ``xs``: all iterates ``(steps+1, runs, n)`` when recorded, else ``None``;
    ``hit``: for runs with a ``stop`` condition, the first step at which it held (``-1`` if never);
    ``lrs``: the step sizes used.
    """

    x: np.ndarray
    values: np.ndarray
    xs: np.ndarray | None
    hit: np.ndarray
    lrs: np.ndarray

    @property
    def runs(self) -> int:
        return self.x.shape[0]

    @property
    def escaped(self) -> np.ndarray:
        """Boolean mask of runs whose stop condition was met."""
        return self.hit >= 0


def ensemble(objective, x0, steps: int, *, lr: float | Callable[[int], float], sigma: float = 0.0,
             cov=None, temperature: float | None = None, grad: Callable | None = None,
             rng: np.random.Generator | None = None, rule: Callable = gd, stop: Callable | None = None,
             record: bool = False, record_values: bool = True, progress: bool = False,
             **hyperparameters) -> Ensemble:
    r"""Run ``rule`` on many independent copies at once; the rows of ``x0`` are the runs.

    The gradient handed to the rule is ``∇f(X) + σ_k ξ_k`` with fresh standard normal ``ξ_k`` per
    run and step, where ``σ_k = sigma`` (SGD with additive noise; temperature ``η_kσ²/2``; with
    ``cov`` the noise is ``N(0, σ² cov)`` instead of ``N(0, σ² I)``) or,
    with ``temperature=T``, ``σ_k = sqrt(2T/η_k)`` so that every step is a Langevin step
    :math:`x-\eta\nabla f(x)+\sqrt{2\eta T}\xi` at fixed temperature whatever the step size.
    ``grad(X, k, rng)`` replaces ``∇f(X) + noise`` entirely (e.g. per-run mini-batches).

    ``lr`` is a constant or a schedule ``lr(k)``. ``stop(X)`` returns a boolean per run; a run
    that meets it is frozen and its first such step stored in ``hit`` (first-passage times). The
    loop ends early once every run has stopped. Rules with state (momentum, Adam) work too: their
    state is elementwise, so stacking runs as rows is harmless.

    ``temperature`` may be an array with one temperature per run (several experiments in one
    loop). With ``record_values=False`` only the first and last values are kept (faster).
    """
    X = np.array(x0, dtype=float)
    if X.ndim != 2 or X.shape[1] != objective.dim:
        raise ValueError(f"x0 must have shape (runs, {objective.dim}), got {X.shape}")
    hooks = [] if grad is not None else [gradient_noise(sigma, temperature=temperature, cov=cov)]
    schedule = as_schedule(lr)
    traj = run(rule, objective if grad is None else grad, X, steps, objective=objective,
               lr=lambda k: float(schedule(k)), rng=np.random.default_rng() if rng is None else rng,
               hooks=hooks, stop=stop, blowup=None,
               record=("lr", *(("value",) if record_values else ()), *(("x",) if record else ())),
               progress=progress, desc="ensemble", **hyperparameters)
    values = traj.values if record_values else np.array([objective.value(X), objective.value(traj.x)])
    assert values is not None and traj.lrs is not None
    hit = traj.hit if traj.hit is not None else np.full(X.shape[0], -1, dtype=int)
    return Ensemble(x=traj.x, values=values, xs=traj.xs, hit=hit, lrs=traj.lrs)


def stationary_covariance(H, C, lr: float) -> np.ndarray:
    r"""Stationary covariance :math:`S` of SGD on a quadratic with Hessian ``H`` and additive
    gradient noise of covariance ``C``: the solution of
    :math:`S=(I-\eta H)S(I-\eta H)+\eta^2C`, which exists iff :math:`0<\eta<2/\lambda_{\max}(H)`.
    """
    from scipy.linalg import solve_discrete_lyapunov

    H, C = np.atleast_2d(np.asarray(H, dtype=float)), np.atleast_2d(np.asarray(C, dtype=float))
    lam = np.linalg.eigvalsh(H)
    if lam[0] <= 0:
        raise ValueError("H must be positive definite")
    if not 0 < lr < 2 / lam[-1]:
        raise ValueError(f"SGD has no stationary distribution for lr={lr} (need 0 < lr < 2/L = {2 / lam[-1]:.4g})")
    M = np.eye(H.shape[0]) - lr * H
    S = solve_discrete_lyapunov(M, lr**2 * C)
    return 0.5 * (S + S.T)


def stationary_excess(H, C, lr: float) -> float:
    r"""Expected excess loss :math:`\tfrac12\operatorname{tr}(HS)` in the stationary regime of
    :func:`stationary_covariance` -- the *noise floor* of SGD with a constant step."""
    H = np.atleast_2d(np.asarray(H, dtype=float))
    return 0.5 * float(np.trace(H @ stationary_covariance(H, C, lr)))


def expected_excess(H, C, e0, lrs) -> np.ndarray:
    r"""Exact :math:`\E f(x_k)-f^\star` of SGD on a quadratic with additive noise, for any steps.

    For :math:`e_{k+1}=(I-\eta_kH)e_k-\eta_k\xi_k` with :math:`\operatorname{Cov}\xi_k=C` the mean
    and second moment evolve deterministically, :math:`\bar e_{k+1}=(I-\eta_kH)\bar e_k` and
    :math:`P_{k+1}=(I-\eta_kH)P_k(I-\eta_kH)+\eta_k^2C`, and
    :math:`\E f(x_k)-f^\star=\tfrac12\operatorname{tr}(HP_k)`. ``e0 = x0 - x*``; ``lrs`` is the
    sequence of step sizes. Returns an array of length ``len(lrs) + 1``.
    """
    H, C = np.atleast_2d(np.asarray(H, dtype=float)), np.atleast_2d(np.asarray(C, dtype=float))
    e0 = np.asarray(e0, dtype=float).reshape(-1)
    lam, Q = np.linalg.eigh(H)
    Ct = Q.T @ C @ Q  # work in the eigenbasis of H: (I - eta H) is diagonal there
    et = Q.T @ e0
    P = np.outer(et, et)
    out = [0.5 * float(np.sum(lam * np.diag(P)))]
    for eta in np.asarray(lrs, dtype=float):
        d = 1.0 - eta * lam
        P = d[:, None] * P * d[None, :] + eta**2 * Ct
        out.append(0.5 * float(np.sum(lam * np.diag(P))))
    return np.array(out)


def least_squares_stationary(X, y, lr: float, batch_size: int = 1) -> np.ndarray:
    r"""Exact stationary covariance of mini-batch SGD on least squares (sampling with replacement).

    With :math:`H_i=x_ix_i^\top`, :math:`H=\frac1m\sum_iH_i`, the residual gradients at the
    minimiser :math:`u_i=(x_i^\top w^\star-y_i)x_i` and :math:`\Sigma^\star=\frac1m\sum_iu_iu_i^\top`,
    the error :math:`e_k=w_k-w^\star` has a stationary covariance :math:`S` solving the linear
    equation

    .. math:: S=(I-\eta H)S(I-\eta H)+\frac{\eta^2}{b}\Big(\Sigma^\star+\frac1m\sum_iH_iSH_i-HSH\Big),

    whose last two terms are the *multiplicative* part of the noise (it grows with the spread of
    the iterates); without them it is :func:`stationary_covariance` with :math:`C=\Sigma^\star/b`.
    Solved by vectorisation (:math:`n^2` unknowns). Raises ``ValueError`` if no stationary
    covariance exists (the step is too large for the noise).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    m, n = X.shape
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    U = (X @ w_star - y)[:, None] * X
    sigma_star = U.T @ U / m
    H = X.T @ X / m
    M = np.eye(n) - lr * H
    Hi = X[:, :, None] * X[:, None, :]
    K = np.einsum("iab,icd->acbd", Hi, Hi).reshape(n * n, n * n) / m  # vec(H_i S H_i), row-major
    A = np.eye(n * n) - np.kron(M, M) - lr**2 / batch_size * (K - np.kron(H, H))
    S = np.linalg.solve(A, (lr**2 / batch_size * sigma_star).ravel()).reshape(n, n)
    S = 0.5 * (S + S.T)
    # stationary only if the second-moment recursion contracts
    B = np.kron(M, M) + lr**2 / batch_size * (K - np.kron(H, H))
    if np.max(np.abs(np.linalg.eigvals(B))) >= 1 or np.linalg.eigvalsh(S)[0] < 0:
        raise ValueError(f"mini-batch SGD has no stationary covariance at lr={lr}, batch_size={batch_size}")
    return S


def kramers_time(barrier: float, curv_min: float, curv_saddle: float, temperature) -> np.ndarray:
    r"""Kramers' mean escape time for overdamped Langevin dynamics
    :math:`dx=-f'(x)\,dt+\sqrt{2T}\,dW`:

    .. math:: \tau(T)=\frac{2\pi}{\sqrt{f''(x_{\min})\,\lvert f''(x_{\rm saddle})\rvert}}\;e^{\Delta E/T}.

    Time is in units of the continuous dynamics; divide by the step size for a number of steps.
    Accurate when :math:`\Delta E/T` is large (a few units or more).
    """
    if barrier <= 0 or curv_min <= 0:
        raise ValueError("need a positive barrier and a positive curvature at the minimum")
    T = np.asarray(temperature, dtype=float)
    return 2 * np.pi / np.sqrt(curv_min * abs(curv_saddle)) * np.exp(barrier / T)


def mean_first_passage(objective, start: float, target: float, temperature: float,
                       num: int = 4001, left: float | None = None) -> float:
    r"""Exact mean first-passage time of 1-D overdamped Langevin dynamics from ``start`` to
    ``target`` (for ``target > start``; a leftward passage is computed on the mirrored landscape):

    .. math:: \tau=\frac1T\int_{a}^{b}e^{f(y)/T}\int_{-\infty}^{y}e^{-f(z)/T}\,dz\,dy ,

    evaluated by the trapezoidal rule on ``num`` points (the inner integral starts at ``left``,
    by default 3 units behind ``start``, where :math:`e^{-f/T}` is negligible for confining f).
    """
    if target == start:
        return 0.0
    sign = 1.0 if target > start else -1.0  # leftward passage: mirror the landscape
    start, target = sign * start, sign * target
    T = float(temperature)
    lo = start - 3.0 if left is None else sign * float(left)
    z = np.linspace(lo, target, num)
    fz = np.asarray(objective.value(sign * z[:, None]), dtype=float)
    shift = fz.min()
    trapezoids = 0.5 * (np.exp(-(fz[1:] - shift) / T) + np.exp(-(fz[:-1] - shift) / T)) * np.diff(z)
    inner = np.concatenate([[0.0], np.cumsum(trapezoids)])
    with np.errstate(over="ignore", invalid="ignore"):
        outer = np.exp((fz - shift) / T) * inner / T  # inf when the time is astronomically long
    mask = z >= start
    zz, oo = z[mask], outer[mask]
    with np.errstate(over="ignore", invalid="ignore"):
        tau = float(np.sum(0.5 * (oo[1:] + oo[:-1]) * np.diff(zz)))
    return tau if np.isfinite(tau) else np.inf


def arrhenius_fit(temperatures, times) -> tuple[float, float]:
    r"""Least-squares fit of :math:`\log\tau = \log A + \Delta E/T`; returns ``(ΔE, A)``.

    The slope of :math:`\log\tau` against :math:`1/T` estimates the barrier height.
    """
    T, tau = np.asarray(temperatures, dtype=float), np.asarray(times, dtype=float)
    if T.shape != tau.shape or T.size < 2:
        raise ValueError("need at least two (temperature, time) pairs of equal length")
    if np.any(T <= 0) or np.any(tau <= 0):
        raise ValueError("temperatures and times must be positive")
    slope, intercept = np.polyfit(1.0 / T, np.log(tau), 1)
    return float(slope), float(np.exp(intercept))


def polyak_average(xs, start: int = 0) -> np.ndarray:
    r"""Running Polyak--Ruppert averages :math:`\bar x_k=\frac1{k-s+1}\sum_{j=s}^{k}x_j` along axis 0.

    ``xs`` has the iterates along its first axis (``(steps+1, ...)``: one run, or an ensemble's
    ``xs``); the result has ``len(xs) - start`` entries, the average up to each ``k >= start``.
    """
    xs = np.asarray(xs, dtype=float)
    if not 0 <= start < len(xs):
        raise ValueError(f"start must be in [0, {len(xs)}), got {start}")
    tail = xs[start:]
    counts = np.arange(1, len(tail) + 1).reshape((-1,) + (1,) * (tail.ndim - 1))
    return np.cumsum(tail, axis=0) / counts


def mean_ci(samples, axis: int = 0, z: float | None = None, *, level: float | None = None):
    """Mean and normal-approximation confidence half-width ``z·std/√n`` along ``axis``: returns
    ``(mean, halfwidth)``; the interval is ``mean ± halfwidth``.

    ``z`` defaults to 1.96 (95 %); ``level=`` gives ``z`` as the two-sided normal quantile of that
    confidence level instead. Non-finite samples (diverged runs) are kept: one NaN or inf makes
    that mean non-finite, so a diverging configuration cannot hide behind an average.
    """
    if z is not None and level is not None:
        raise ValueError("give either z or level, not both")
    if level is not None:
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
    z = 1.96 if z is None else z
    a = np.asarray(samples, dtype=float)
    n = a.shape[axis]
    if n < 2:
        raise ValueError("need at least two samples for a confidence interval")
    with np.errstate(invalid="ignore", over="ignore"):
        return a.mean(axis=axis), z * a.std(axis=axis, ddof=1) / np.sqrt(n)


mean_halfwidth = mean_ci  # the name some pages use


def escape_time_mean(hit, horizon: int, level: float = 0.95) -> tuple[float, float, float]:
    r"""Mean first-passage time from right-censored observations, with a confidence interval.

    ``hit`` holds the first-passage step of each run, ``-1`` for runs still inside after
    ``horizon`` steps. Escape from a deep basin is close to a Poisson event, so the times are
    modelled as exponential: the maximum-likelihood mean is (total observed time, censored runs
    counted with ``horizon``) / (number of escapes), and :math:`2\,d\,\hat\tau/\tau` is
    :math:`\chi^2_{2d}`-distributed for ``d`` escapes, which gives ``(mean, low, high)``.
    """
    from scipy.stats import chi2

    hit = np.asarray(hit)
    d = int(np.sum(hit >= 0))
    if d == 0:
        raise ValueError("no run escaped: increase the horizon")
    total = float(hit[hit >= 0].sum()) + float(np.sum(hit < 0)) * horizon
    mean = total / d
    a = 1 - level
    return mean, 2 * total / chi2.ppf(1 - a / 2, 2 * d), 2 * total / chi2.ppf(a / 2, 2 * d)


def two_state_occupancy(rate_out: Callable[[int], float], rate_back: Callable[[int], float],
                        steps: int, p0: float = 1.0) -> np.ndarray:
    r"""Probability of being in basin A after each step of a two-state (Kramers) model.

    Runs :math:`p_{k+1}=p_k-\kappa_{AB}(k)\,p_k+\kappa_{BA}(k)(1-p_k)` where ``rate_out(k)`` and
    ``rate_back(k)`` are per-step hopping probabilities A→B and B→A (e.g. ``η_k / τ(T_k)`` from
    :func:`kramers_time`). Returns ``p`` of length ``steps + 1``.
    """
    p = np.empty(steps + 1)
    p[0] = p0
    for k in range(steps):
        a, b = min(float(rate_out(k)), 1.0), min(float(rate_back(k)), 1.0)
        p[k + 1] = p[k] - a * p[k] + b * (1.0 - p[k])
    return p
