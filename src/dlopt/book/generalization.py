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
  fit (the limit of gradient descent from zero), for the double-descent experiment;
- :func:`weighted_min_norm`, :func:`wilson_example`, :func:`stacked_lsq_grad` -- the interpolant
  that gradient descent with a fixed diagonal preconditioner reaches, the data set of Wilson et al.
  (2017) on which adaptive methods converge to a sign-like interpolant that generalizes badly, and
  a (mini-batch) gradient oracle that runs many least-squares problems side by side.
"""

from __future__ import annotations

import numpy as np

from dlopt.optim import rules
from dlopt.optim.runner import run

__all__ = ["gd_filter", "ridge_filter", "ridge", "random_labels", "deep_linear_init",
           "deep_linear_loss_grads", "train_deep_linear", "end_to_end", "rank_floor",
           "logistic_sgd_pair", "bias_variance", "relu_features", "min_norm", "weighted_min_norm",
           "wilson_example", "stacked_lsq_grad"]


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
    shapes = [W.shape for W in weights]
    ends = np.cumsum([0] + [W.size for W in weights])

    def unflatten(theta):
        return [theta[a:b].reshape(shape) for a, b, shape in zip(ends[:-1], ends[1:], shapes)]

    losses = []

    def gradient(theta, k, rng):
        """The gradients of all layers, flat (the loss is kept on the way; an overflow ends the run)."""
        loss, grads = deep_linear_loss_grads(unflatten(theta), X, Y)
        losses.append(loss)
        if not np.isfinite(loss):
            raise StopIteration
        return np.concatenate([G.ravel() for G in grads])

    traj = run(rules.gd, gradient, np.concatenate([W.ravel() for W in weights]), steps, lr=lr, record=(),
               progress=progress, desc="deep linear GD")
    weights = [W.copy() for W in unflatten(traj.x)]
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

    def sample_gradients(pair, k, rng):
        """The two runs (rows) see sample order[k] of their own data set."""
        i = order[k]
        return np.stack([_logistic_sample_grad(pair[0], X[i], y[i]), _logistic_sample_grad(pair[1], X2[i], y2[i])])

    traj = run(rules.gd, sample_gradients, np.stack([w, w]), len(order), lr=lambda k: lrs[k], record="x")
    assert traj.xs is not None
    return traj.x[0], traj.x[1], np.array([float(np.linalg.norm(a - b)) for a, b in traj.xs])


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


# --------------------------------------------------------------------------------------------
# preconditioned and adaptive methods: which interpolant?
# --------------------------------------------------------------------------------------------

def weighted_min_norm(X, y, p) -> np.ndarray:
    r"""The interpolant of smallest weighted norm :math:`x^\top P^{-1}x`, with :math:`P=\operatorname{diag}(p)`.

    For ``X`` of shape ``(m, n)`` with full row rank ``m <= n`` and weights ``p > 0`` (shape
    ``(n,)``), returns :math:`PX^\top(XPX^\top)^{-1}y`, the unique minimiser of
    :math:`x^\top P^{-1}x` subject to :math:`Xx=y`. Preconditioned gradient descent
    :math:`x_{k+1}=x_k-\eta P\nabla\mathcal L(x_k)` on :math:`\mathcal L(x)=\frac1{2m}\lVert
    Xx-y\rVert^2` from :math:`x_0=0` converges to it for a stable step; ``p = 1`` gives
    :func:`min_norm`.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    p = np.asarray(p, dtype=float).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (m, n) and y (m,), got {X.shape} and {y.shape}")
    if p.shape != (X.shape[1],) or not np.all(p > 0):
        raise ValueError(f"p must hold {X.shape[1]} positive weights, got shape {p.shape}")
    XP = X * p  # X P
    return XP.T @ np.linalg.solve(XP @ X.T, y)


def _pm_labels(labels) -> np.ndarray:
    labels = np.asarray(labels, dtype=float).reshape(-1)
    if not np.all(np.abs(labels) == 1):
        raise ValueError("labels must be -1 or +1")
    return labels


def wilson_example(y_train, y_test=None):
    r"""Features of the data set of Wilson et al. (2017) for labels :math:`y_i\in\{-1,+1\}`.

    Training sample ``i`` has feature 0 equal to its label :math:`y_i`, features 1 and 2 equal to
    one, and a private block of five features (``3 + 5i`` to ``7 + 5i``) of which the first one
    (:math:`y_i=+1`) or all five (:math:`y_i=-1`) are one; all other entries are zero, so
    :math:`X\,\operatorname{sign}(X^\top y)=4y` whenever the positive labels outnumber the negative
    ones. Returns ``X_train`` of shape ``(m, 3 + 5m)``. With ``y_test`` it also returns ``X_test``
    built in the same way but restricted to the training features: a test sample's private block
    is new, no training gradient ever touches it, so every method started at zero gives it weight
    zero and it can be dropped.
    """
    y_train = _pm_labels(y_train)
    m = len(y_train)
    X = np.zeros((m, 3 + 5 * m))
    X[:, 0], X[:, 1], X[:, 2] = y_train, 1.0, 1.0
    for i, label in enumerate(y_train):
        X[i, 3 + 5 * i: 3 + 5 * i + (1 if label > 0 else 5)] = 1.0
    if y_test is None:
        return X
    y_test = _pm_labels(y_test)
    X_test = np.zeros((len(y_test), X.shape[1]))
    X_test[:, 0], X_test[:, 1], X_test[:, 2] = y_test, 1.0, 1.0
    return X, X_test


def stacked_lsq_grad(Xs, ys, batch_size: int | None = None, seed: int = 0):
    r"""Gradient oracle for :func:`dlopt.experiments.run_batch` on ``S`` least-squares problems at once.

    ``Xs`` is ``(S, m, n)`` and ``ys`` is ``(S, m)``: run ``s`` (row ``s`` of the stacked iterate
    ``W``) minimises its own :math:`\frac1{2m}\lVert X_sw-y_s\rVert^2`. Returns ``grad(W, k)``:
    the full gradients :math:`\frac1mX_s^\top(X_sw_s-y_s)` (``batch_size=None``), or mini-batch
    gradients over ``batch_size`` sample indices drawn uniformly with replacement, independently
    for every run, from a generator seeded with ``seed``.
    """
    Xs, ys = np.asarray(Xs, dtype=float), np.asarray(ys, dtype=float)
    if Xs.ndim != 3 or ys.shape != Xs.shape[:2]:
        raise ValueError(f"Xs must be (S, m, n) and ys (S, m), got {Xs.shape} and {ys.shape}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    S, m, _ = Xs.shape
    rows, rng = np.arange(S)[:, None], np.random.default_rng(seed)

    def grad(W, k):
        if batch_size is None:
            Xb, yb = Xs, ys
        else:
            idx = rng.integers(0, m, (S, batch_size))
            Xb, yb = Xs[rows, idx], ys[rows, idx]
        r = np.einsum("sbn,sn->sb", Xb, W) - yb
        return np.einsum("sb,sbn->sn", r, Xb) / Xb.shape[1]

    return grad
