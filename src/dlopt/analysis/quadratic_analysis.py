r"""Momentum methods on quadratics, one eigendirection at a time.

On :math:`f(x)=\tfrac12x^\top Ax-b^\top x` every method of the momentum chapter is a *linear*
recursion for the error :math:`e_k=x_k-x^\star`. In the eigenbasis of ``A`` the coordinates
decouple, and along an eigenvector with eigenvalue :math:`\lambda` the pair
:math:`(e_k, e_{k-1})` is multiplied at every step by a :math:`2\times2` *iteration matrix*:

heavy ball :math:`x_{k+1}=x_k-\alpha\nabla f(x_k)+\beta(x_k-x_{k-1})`
    .. math:: T_{\mathrm{HB}}(\lambda)=\begin{pmatrix}1+\beta-\alpha\lambda & -\beta\\ 1 & 0\end{pmatrix}

Nesterov :math:`y_k=x_k+\beta(x_k-x_{k-1}),\ x_{k+1}=y_k-\alpha\nabla f(y_k)`
    .. math:: T_{\mathrm{NAG}}(\lambda)=\begin{pmatrix}(1+\beta)(1-\alpha\lambda) & -\beta(1-\alpha\lambda)\\ 1 & 0\end{pmatrix}

gradient descent is the heavy ball with :math:`\beta=0`. The asymptotic rate of the method on the
quadratic is the largest spectral radius :math:`\max_i\rho(T(\lambda_i))`.

Everything here is vectorised: ``lam``, ``lr`` and ``beta`` broadcast against each other, so a
whole rate map over a grid of :math:`(\alpha,\beta)` is one call.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "METHODS",
    "iteration_matrix",
    "characteristic_roots",
    "spectral_radius",
    "rate",
    "rate_map",
    "stable",
    "heavy_ball_optimal",
    "nesterov_standard",
    "nesterov_optimal",
    "measured_rate",
]

#: The methods this module analyses.
METHODS = ("gd", "heavy_ball", "nesterov")


def _coefficients(lam, lr, beta, method: str):
    """``(a, c)`` with the recursion ``e_{k+1} = a e_k + c e_{k-1}`` along eigenvalue ``lam``."""
    lam, lr, beta = (np.asarray(v, dtype=float) for v in (lam, lr, beta))
    if method == "gd":
        return 1.0 - lr * lam + 0.0 * beta, 0.0 * beta * lam * lr
    if method == "heavy_ball":
        return 1.0 + beta - lr * lam, -beta + 0.0 * lam * lr
    if method == "nesterov":
        s = 1.0 - lr * lam
        return (1.0 + beta) * s, -beta * s
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def iteration_matrix(lam: float, lr: float, beta: float = 0.0, method: str = "heavy_ball") -> np.ndarray:
    r"""The :math:`2\times2` matrix mapping :math:`(e_k, e_{k-1})` to :math:`(e_{k+1}, e_k)` along
    an eigenvector with eigenvalue ``lam`` (scalar inputs)."""
    a, c = _coefficients(lam, lr, beta, method)
    return np.array([[float(a), float(c)], [1.0, 0.0]])


def characteristic_roots(lam, lr, beta=0.0, method: str = "heavy_ball"):
    r"""The two eigenvalues of the iteration matrix, roots of :math:`z^2-az-c=0`.

    Returns a complex array of shape ``broadcast(lam, lr, beta).shape + (2,)``.
    """
    a, c = _coefficients(lam, lr, beta, method)
    root = np.sqrt(a * a + 4.0 * c + 0j)
    return np.stack([(a + root) / 2, (a - root) / 2], axis=-1)


def spectral_radius(lam, lr, beta=0.0, method: str = "heavy_ball"):
    """Spectral radius of the iteration matrix (broadcasts over its arguments)."""
    return np.abs(characteristic_roots(lam, lr, beta, method)).max(axis=-1)


def rate(eigenvalues, lr, beta=0.0, method: str = "heavy_ball"):
    r"""Asymptotic rate :math:`\max_i\rho(T(\lambda_i))` on a quadratic with the given eigenvalues.

    ``lr`` and ``beta`` may be arrays (of one common shape); the result has their shape.
    """
    lam = np.asarray(eigenvalues, dtype=float).reshape(-1)
    lr, beta = np.broadcast_arrays(np.asarray(lr, dtype=float), np.asarray(beta, dtype=float))
    rho = spectral_radius(lam, lr[..., None], beta[..., None], method)
    return rho.max(axis=-1)


def rate_map(eigenvalues, lrs, betas, method: str = "heavy_ball") -> np.ndarray:
    """Rates on the grid ``lrs × betas``: an array of shape ``(len(betas), len(lrs))`` (rows are
    momentum values, columns step sizes, ready for ``imshow``/``pcolormesh``)."""
    LR, B = np.meshgrid(np.asarray(lrs, dtype=float), np.asarray(betas, dtype=float))
    return rate(eigenvalues, LR, B, method)


def stable(lam, lr, beta=0.0, method: str = "heavy_ball"):
    r"""Closed-form stability test (spectral radius below one) along eigenvalue ``lam > 0``.

    Heavy ball: :math:`0\le\beta<1` and :math:`0<\alpha\lambda<2(1+\beta)`; Nesterov:
    :math:`0\le\beta<1` and :math:`0<\alpha\lambda<2(1+\beta)/(1+2\beta)`; gradient descent:
    :math:`0<\alpha\lambda<2`.
    """
    lam, lr, beta = (np.asarray(v, dtype=float) for v in (lam, lr, beta))
    h = lr * lam
    if method == "gd":
        return (h > 0) & (h < 2)
    ok_beta = (beta >= 0) & (beta < 1)
    if method == "heavy_ball":
        return ok_beta & (h > 0) & (h < 2 * (1 + beta))
    if method == "nesterov":
        return ok_beta & (h > 0) & (h < 2 * (1 + beta) / (1 + 2 * beta))
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def _check_mu_L(mu: float, L: float) -> None:
    if not 0 < mu <= L:
        raise ValueError(f"need 0 < mu <= L, got mu={mu}, L={L}")


def heavy_ball_optimal(mu: float, L: float) -> tuple[float, float, float]:
    r"""Polyak's optimal heavy-ball parameters for eigenvalues in :math:`[\mu,L]`.

    Returns ``(lr, beta, rate)`` with :math:`\alpha^\star=4/(\sqrt L+\sqrt\mu)^2`,
    :math:`\beta^\star=\big(\tfrac{\sqrt\kappa-1}{\sqrt\kappa+1}\big)^2` and rate
    :math:`\sqrt{\beta^\star}=\tfrac{\sqrt\kappa-1}{\sqrt\kappa+1}`.
    """
    _check_mu_L(mu, L)
    sk = np.sqrt(L / mu)
    q = (sk - 1) / (sk + 1)
    return 4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2, q * q, q


def nesterov_standard(mu: float, L: float) -> tuple[float, float, float]:
    r"""The textbook choice for Nesterov's method on a strongly convex function,
    :math:`\alpha=1/L`, :math:`\beta=\tfrac{\sqrt\kappa-1}{\sqrt\kappa+1}`, and its guaranteed
    rate :math:`1-1/\sqrt\kappa` (:cite:`nesterov2018`). Returns ``(lr, beta, rate)``."""
    _check_mu_L(mu, L)
    sk = np.sqrt(L / mu)
    return 1.0 / L, (sk - 1) / (sk + 1), 1.0 - 1.0 / sk


def nesterov_optimal(mu: float, L: float) -> tuple[float, float, float]:
    r"""The parameters minimising Nesterov's worst-case rate on quadratics with spectrum in
    :math:`[\mu,L]` (Lessard, Recht and Packard, 2016): :math:`\alpha=4/(3L+\mu)`,
    :math:`\beta=\tfrac{\sqrt{3\kappa+1}-2}{\sqrt{3\kappa+1}+2}`, rate :math:`1-2/\sqrt{3\kappa+1}`.
    Returns ``(lr, beta, rate)``."""
    _check_mu_L(mu, L)
    r = np.sqrt(3 * L / mu + 1)
    return 4.0 / (3 * L + mu), (r - 2) / (r + 2), 1.0 - 2.0 / r


def measured_rate(xs, x_star=None, start: float = 0.5) -> float:
    r"""Estimate the linear rate of a run from its iterates.

    Fits :math:`\log\lVert(e_k,e_{k-1})\rVert` against :math:`k` by least squares over the last
    ``1 - start`` fraction of the run (:math:`e_k=x_k-x^\star`) and returns :math:`e^{\text{slope}}`.
    Using the pair :math:`(e_k,e_{k-1})` -- the state of a momentum method -- and a fit rather than
    a ratio keeps the estimate steady when the error spirals (complex roots). Iterates whose error
    is zero or not finite are left out.
    """
    xs = np.asarray(getattr(xs, "xs", xs), dtype=float)
    if xs.ndim == 1:
        xs = xs[:, None]
    e = xs - (0.0 if x_star is None else np.asarray(x_star, dtype=float))
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.sum(e * e, axis=1)
        state = np.sqrt(sq[1:] + sq[:-1])
    k = np.arange(1, len(xs))
    keep = (k >= start * (len(xs) - 1)) & np.isfinite(state) & (state > 0)
    if keep.sum() < 2:
        raise ValueError("not enough finite, non-zero errors to estimate a rate")
    slope = np.polyfit(k[keep], np.log(state[keep]), 1)[0]
    return float(np.exp(slope))
