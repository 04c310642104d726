"""Synthetic data sets. Nothing here touches the network."""

from __future__ import annotations

import numpy as np

__all__ = ["digits", "linear_regression"]


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


def digits(test_size: float = 0.2, seed: int = 0):
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes; no download).

    Returns ``(X_train, y_train, X_test, y_test)`` as numpy arrays: images of shape
    ``(m, 1, 8, 8)`` as float32 scaled to ``[0, 1]`` (pixel values 0..16 divided by 16), labels
    as int64. The split is stratified by class and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    bunch = load_digits()
    X = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed,
                                                        stratify=y)
    return X_train, y_train, X_test, y_test
