"""Synthetic data sets. Nothing here touches the network."""

from __future__ import annotations

import numpy as np

__all__ = ["linear_regression"]


def linear_regression(m: int = 200, n: int = 2, noise: float = 0.1, seed: int = 0, condition: float = 1.0):
    """Samples ``y = X w* + ε`` for least squares.

    Returns ``(X, y, w_star)`` with ``X`` of shape ``(m, n)``. Columns of ``X`` are Gaussian with
    standard deviations spread log-uniformly over ``[1/sqrt(condition), 1]``, so the empirical
    Hessian ``XᵀX/m`` has condition number about ``condition``; ``ε ~ N(0, noise²)``.
    """
    if m < 1 or n < 1:
        raise ValueError(f"need m >= 1 samples and n >= 1 features, got m={m}, n={n}")
    if condition < 1:
        raise ValueError(f"condition must be >= 1, got {condition}")
    rng = np.random.default_rng(seed)
    scales = np.logspace(-0.5 * np.log10(condition), 0, n) if n > 1 else np.ones(1)
    X = rng.standard_normal((m, n)) * scales
    w_star = rng.standard_normal(n)
    y = X @ w_star + noise * rng.standard_normal(m)
    return X, y, w_star
