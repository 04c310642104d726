r"""Optimization and generalization: implicit regularization, interpolation, algorithmic stability.

- :func:`gd_filter`, :func:`ridge_filter`, :func:`ridge` -- gradient descent from zero on least
  squares as a spectral filter, compared with ridge regression (early stopping as regularization);
- :func:`random_labels`, :func:`deep_linear_init`, :func:`deep_linear_loss_grads`,
  :func:`train_deep_linear`, :func:`end_to_end`, :func:`rank_floor` -- deep linear networks
  trained by full-batch gradient descent with hand-written (matrix) backpropagation, and the exact
  lowest training loss a rank-``r`` network can reach;
- :func:`logistic_sgd_pair` -- SGD on two data sets that differ in one sample, with the same sample
  order, and the distance between the two parameter vectors after every step (algorithmic stability);
- :func:`bias_variance` -- squared bias and variance of predictions over resampled training sets;
- :func:`relu_features`, :func:`min_norm` -- random ReLU features and the minimum-norm least-squares
  fit (the limit of gradient descent from zero), for the double-descent experiment.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gd_filter", "ridge_filter", "ridge", "random_labels", "deep_linear_init",
           "deep_linear_loss_grads", "train_deep_linear", "end_to_end", "rank_floor",
           "logistic_sgd_pair", "bias_variance", "relu_features", "min_norm"]


# --------------------------------------------------------------------------------------------
# implicit regularization of gradient descent on least squares
# --------------------------------------------------------------------------------------------

def gd_filter(eigenvalues, lr: float, steps: int) -> np.ndarray:
    r"""Filter factors :math:`1-(1-\eta\lambda_i)^k` of ``steps`` GD steps from zero.

    On :math:`\mathcal L(w)=\frac1{2m}\lVert Xw-y\rVert^2` with :math:`H=X^\top X/m=\sum_i\lambda_i
    u_iu_i^\top`, gradient descent from :math:`w_0=0` gives
    :math:`w_k=\sum_i\big(1-(1-\eta\lambda_i)^k\big)\,\frac{u_i^\top X^\top y/m}{\lambda_i}\,u_i`.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    return 1.0 - (1.0 - lr * lam) ** int(steps)


def ridge_filter(eigenvalues, lam: float) -> np.ndarray:
    r"""Filter factors :math:`\lambda_i/(\lambda_i+\lambda)` of ridge regression with penalty ``lam``."""
    ev = np.asarray(eigenvalues, dtype=float)
    return ev / (ev + lam)


def ridge(X, y, lam: float) -> np.ndarray:
    r"""Minimiser of :math:`\frac1{2m}\lVert Xw-y\rVert^2+\frac\lambda2\lVert w\rVert^2` (``lam > 0``)."""
    if lam <= 0:
        raise ValueError(f"lam must be positive, got {lam}")
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    m, n = X.shape
    return np.linalg.solve(X.T @ X / m + lam * np.eye(n), X.T @ y / m)


# --------------------------------------------------------------------------------------------
# deep linear networks
# --------------------------------------------------------------------------------------------

def random_labels(n: int, d_out: int = 1, seed: int = 0) -> np.ndarray:
    """Labels with no relation to any input: a ``(d_out, n)`` standard normal matrix."""
    return np.random.default_rng(seed).standard_normal((d_out, n))


def deep_linear_init(widths, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    r"""Weights ``[W_1, ..., W_L]`` for layer widths ``widths = [d_in, h_1, ..., d_out]``.

    Entries are normal with variance ``scale**2 / fan_in``, so each layer roughly preserves norms.
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must list at least two positive sizes, got {widths}")
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i])
            for i in range(len(widths) - 1)]


def end_to_end(weights) -> np.ndarray:
    r"""The linear map :math:`W_L\cdots W_1` that the network computes."""
    M = weights[0]
    for W in weights[1:]:
        M = W @ M
    return M


def deep_linear_loss_grads(weights, X, Y):
    r"""Loss :math:`\frac1{2n}\lVert W_L\cdots W_1X-Y\rVert_F^2` and its gradients.

    ``X`` is ``(d_in, n)`` (one sample per column), ``Y`` is ``(d_out, n)``. Matrix
    backpropagation: with :math:`A_0=X`, :math:`A_l=W_lA_{l-1}` and :math:`G_L=(A_L-Y)/n`,
    :math:`\nabla_{W_l}=G_lA_{l-1}^\top` and :math:`G_{l-1}=W_l^\top G_l`.
    """
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    n = X.shape[1]
    acts = [X]
    for W in weights:
        acts.append(W @ acts[-1])
    R = acts[-1] - Y
    loss = 0.5 * float(np.sum(R ** 2)) / n
    G = R / n
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        grads[l] = G @ acts[l].T
        G = weights[l].T @ G
    return loss, grads


def train_deep_linear(X, Y, widths, lr: float = 0.1, steps: int = 2000, seed: int = 0,
                      scale: float = 1.0, progress: bool = False):
    """Full-batch gradient descent on a deep linear network; returns ``(weights, losses)``.

    ``widths`` are the hidden widths only (input and output sizes are taken from ``X`` and ``Y``).
    ``losses`` has ``steps + 1`` entries (before the first and after every step).
    """
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    weights = deep_linear_init([X.shape[0], *widths, Y.shape[0]], seed=seed, scale=scale)
    losses = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="deep linear GD", leave=False)
    for _ in it:
        loss, grads = deep_linear_loss_grads(weights, X, Y)
        losses.append(loss)
        if not np.isfinite(loss):
            break
        weights = [W - lr * g for W, g in zip(weights, grads)]
    losses.append(deep_linear_loss_grads(weights, X, Y)[0])
    return weights, np.array(losses)


def rank_floor(X, Y, rank: int | None = None) -> float:
    r"""Smallest :math:`\frac1{2n}\lVert MX-Y\rVert_F^2` over linear maps ``M`` of rank at most ``rank``.

    With :math:`\hat Y=YX^+X` (the least-squares fit, rows in the row space of :math:`X`) the loss
    splits as :math:`\lVert Y-\hat Y\rVert^2+\lVert\hat Y-MX\rVert^2`, and by Eckart--Young the
    second term's minimum over rank-``r`` maps is the sum of the squared singular values of
    :math:`\hat Y` beyond the ``r``-th. ``rank=None`` means no rank constraint.
    """
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    n = X.shape[1]
    Yhat = Y @ np.linalg.pinv(X) @ X
    floor = float(np.sum((Y - Yhat) ** 2))
    if rank is not None:
        s = np.linalg.svd(Yhat, compute_uv=False)
        floor += float(np.sum(s[int(rank):] ** 2))
    return 0.5 * floor / n


# --------------------------------------------------------------------------------------------
# algorithmic stability of SGD
# --------------------------------------------------------------------------------------------

def _logistic_sample_grad(w, x, y):
    # gradient of log(1 + exp(-y x.w)) : -y x sigma(-y x.w)
    z = -y * (x @ w)
    return -y * x * (0.5 * (1.0 + np.tanh(0.5 * z)))


def logistic_sgd_pair(X, y, X2, y2, lr: float, order, w0=None):
    r"""Run single-sample SGD on the logistic loss on two data sets with the same sample order.

    ``X, y`` and ``X2, y2`` are ``(n, d)`` inputs with labels in :math:`\{-1,+1\}`, typically
    neighbours (one sample replaced); ``order`` is the sequence of sample indices (one per step);
    ``lr`` is a number or a sequence of step sizes. Returns ``(w, w2, dist)`` with the final
    parameters of both runs and ``dist[t]`` :math:`=\lVert w_t-w'_t\rVert` for ``t = 0..T``.
    """
    X, X2 = np.asarray(X, dtype=float), np.asarray(X2, dtype=float)
    y, y2 = np.asarray(y, dtype=float), np.asarray(y2, dtype=float)
    order = np.asarray(order, dtype=int)
    lrs = np.broadcast_to(np.asarray(lr, dtype=float), order.shape)
    w = np.zeros(X.shape[1]) if w0 is None else np.array(w0, dtype=float)
    w2 = w.copy()
    dist = [0.0 if w0 is None else float(np.linalg.norm(w - w2))]
    for i, eta in zip(order, lrs):
        w = w - eta * _logistic_sample_grad(w, X[i], y[i])
        w2 = w2 - eta * _logistic_sample_grad(w2, X2[i], y2[i])
        dist.append(float(np.linalg.norm(w - w2)))
    return w, w2, np.array(dist)


# --------------------------------------------------------------------------------------------
# bias-variance decomposition
# --------------------------------------------------------------------------------------------

def bias_variance(predictions, target) -> tuple[float, float]:
    r"""Squared bias and variance of an ensemble of predictions, averaged over the test points.

    ``predictions`` is ``(R, m)``: row ``r`` holds the predictions at ``m`` test points of the model
    trained on the ``r``-th training set; ``target`` is the noiseless regression function
    :math:`f` at those points, shape ``(m,)``. With :math:`\bar p=\frac1R\sum_rp_r`, returns
    :math:`\big(\operatorname{mean}(\bar p-f)^2,\ \operatorname{mean}\frac1R\sum_r(p_r-\bar p)^2\big)`,
    whose sum equals the mean squared distance :math:`\frac1{Rm}\sum_r\lVert p_r-f\rVert^2` exactly.
    """
    P = np.atleast_2d(np.asarray(predictions, dtype=float))
    f = np.asarray(target, dtype=float)
    if P.shape[1:] != f.shape:
        raise ValueError(f"predictions must be (R, {f.shape}), got {P.shape}")
    mean = P.mean(axis=0)
    return float(np.mean((mean - f) ** 2)), float(np.mean(P.var(axis=0)))


# --------------------------------------------------------------------------------------------
# random features and the minimum-norm fit (double descent)
# --------------------------------------------------------------------------------------------

def relu_features(X, W) -> np.ndarray:
    r"""Random ReLU features :math:`\phi(x)=\max(0, Wx/\sqrt d)/\sqrt p` of the rows of ``X``.

    ``X`` is ``(m, d)``, ``W`` is ``(p, d)`` (in the book: standard normal, drawn once per model and
    used for training and test inputs alike); returns the ``(m, p)`` feature matrix. The scaling
    keeps :math:`\lVert\phi(x)\rVert` of order one whatever ``d`` and ``p``.
    """
    X, W = np.atleast_2d(np.asarray(X, dtype=float)), np.atleast_2d(np.asarray(W, dtype=float))
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} columns but W has {W.shape[1]}")
    p, d = W.shape
    return np.maximum(0.0, X @ W.T / np.sqrt(d)) / np.sqrt(p)


def min_norm(X, y) -> np.ndarray:
    r"""The minimum-norm least-squares solution :math:`X^+y`.

    Among all minimisers of :math:`\lVert Xw-y\rVert^2` it has the smallest :math:`\lVert w\rVert`;
    when ``X`` has more columns than rows and full row rank it interpolates (:math:`Xw=y`). Gradient
    descent from :math:`w_0=0` with a stable step converges to it (see :func:`gd_filter`).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    return np.linalg.lstsq(X, y, rcond=None)[0]
