r"""Entropy, cross-entropy and Kullback--Leibler divergence of discrete distributions.

Also the classifier's loss with soft targets: :func:`cross_entropy_with_logits` (and its gradient)
scores the softmax of a batch of logits against target distributions, for instance the
label-smoothed targets of :func:`smooth_labels`.

Distributions are arrays of probabilities along the last axis (a stack of distributions is
allowed). Logarithms are natural (nats) unless ``base`` is given; ``base=2`` gives bits. The
conventions :math:`0\log0=0` and :math:`p\log(p/0)=+\infty` for :math:`p>0` are built in.

>>> entropy([0.5, 0.5], base=2)
1.0
>>> kl_divergence([0.5, 0.5], [0.9, 0.1]) >= 0
True
"""

from __future__ import annotations

import numpy as np

from dlopt.problems.nn import log_softmax, softmax  # one definition each, shared with dlopt.nn

__all__ = ["entropy", "cross_entropy", "kl_divergence", "mutual_information", "empirical_mutual_information",
           "softmax", "log_softmax", "smooth_labels",
           "cross_entropy_with_logits", "cross_entropy_with_logits_grad"]


def _distribution(p, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim == 0:
        raise ValueError(f"{name} must be an array of probabilities")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must have finite, non-negative entries")
    if not np.allclose(p.sum(-1), 1.0, rtol=0, atol=1e-8):
        raise ValueError(f"{name} must sum to 1 along the last axis")
    return p


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _log(x, base):
    with np.errstate(divide="ignore"):
        out = np.log(x)
    return out if base is None else out / np.log(base)


def entropy(p, base: float | None = None):
    r"""Shannon entropy :math:`H(p)=-\sum_i p_i\log p_i` (terms with :math:`p_i=0` count 0)."""
    p = _distribution(p, "p")
    terms = np.where(p > 0, -p * _log(np.where(p > 0, p, 1.0), base), 0.0)
    return _scalar(terms.sum(-1))


def cross_entropy(p, q, base: float | None = None):
    r"""Cross-entropy :math:`H(p,q)=-\sum_i p_i\log q_i`: the average code length (or negative
    log-likelihood) when outcomes drawn from ``p`` are scored with the model ``q``. It is
    :math:`+\infty` if ``q`` gives probability 0 to an outcome that ``p`` does not."""
    p, q = _distribution(p, "p"), _distribution(q, "q")
    terms = np.where(p > 0, -p * _log(np.where(p > 0, q, 1.0), base), 0.0)
    return _scalar(terms.sum(-1))


def kl_divergence(p, q, base: float | None = None):
    r"""Kullback--Leibler divergence :math:`D_{\mathrm{KL}}(p\,\|\,q)=\sum_i p_i\log(p_i/q_i)
    = H(p,q)-H(p)\ge0`, zero exactly when ``p == q``."""
    p, q = _distribution(p, "p"), _distribution(q, "q")
    safe_p = np.where(p > 0, p, 1.0)
    with np.errstate(divide="ignore"):
        ratio = np.where(p > 0, safe_p / np.where(p > 0, q, 1.0), 1.0)
    terms = np.where(p > 0, p * _log(ratio, base), 0.0)
    return _scalar(terms.sum(-1))


def mutual_information(joint, base: float | None = None) -> float:
    r"""Mutual information :math:`I(X;Y)=D_{\mathrm{KL}}(p_{XY}\,\|\,p_X\otimes p_Y)` of a joint
    probability table ``joint[i, j]`` :math:`=P(X=i,Y=j)` (a 2-D array that sums to 1)."""
    joint = np.asarray(joint, dtype=float)
    if joint.ndim != 2:
        raise ValueError(f"joint must be a 2-D table of probabilities, got shape {joint.shape}")
    joint = _distribution(joint.ravel(), "joint").reshape(joint.shape)
    product = np.outer(joint.sum(axis=1), joint.sum(axis=0))
    return float(kl_divergence(joint.ravel(), product.ravel(), base=base))


def empirical_mutual_information(x, y, base: float | None = None) -> float:
    r"""Plug-in estimate of :math:`I(X;Y)` from paired samples of two discrete variables: the
    mutual information of the table of relative frequencies of the pairs ``(x[i], y[i])``.

    Its bias is about :math:`(|X|-1)(|Y|-1)/(2n)` nats for ``n`` samples (it is positive even for
    independent variables); continuous features must be binned first (``np.digitize``).
    """
    x, y = np.asarray(x).reshape(-1), np.asarray(y).reshape(-1)
    if x.size != y.size or x.size == 0:
        raise ValueError(f"x and y must be non-empty and of the same length, got {x.size} and {y.size}")
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    counts = np.zeros((xi.max() + 1, yi.max() + 1))
    np.add.at(counts, (xi, yi), 1.0)
    return mutual_information(counts / x.size, base=base)


def smooth_labels(labels, classes: int, alpha: float) -> np.ndarray:
    r"""Label-smoothed targets :math:`t_i=(1-\alpha)\,e_{y_i}+\alpha\,u`, with :math:`e_y` the
    one-hot vector of class :math:`y` and :math:`u=(1/K,\dots,1/K)` uniform over the
    :math:`K` = ``classes`` classes; ``alpha = 0`` gives the one-hot targets.

    ``labels`` are integers in ``{0, ..., K-1}``; the result has shape ``labels.shape + (K,)``.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if classes < 1 or np.any(labels < 0) or np.any(labels >= classes):
        raise ValueError(f"labels must lie in {{0, ..., {classes - 1}}}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    onehot = np.eye(classes)[labels]
    return (1.0 - alpha) * onehot + alpha / classes


def _logits_and_targets(logits, targets):
    z = np.asarray(logits, dtype=float)
    t = _distribution(targets, "targets")
    if z.shape != t.shape:
        raise ValueError(f"logits {z.shape} and targets {t.shape} must have the same shape")
    return z, t


def cross_entropy_with_logits(logits, targets):
    r"""Mean cross-entropy :math:`\frac1m\sum_i H\big(t_i,\operatorname{softmax}(z_i)\big)
    =-\frac1m\sum_i\sum_k t_{ik}\log\operatorname{softmax}(z_i)_k` between target distributions
    ``targets`` and the softmax of ``logits`` (both of shape ``(m, K)``; a single vector counts as
    ``m = 1``), computed with :func:`log_softmax`, so that large logits do not overflow.

    With one-hot targets it is the usual classification loss :func:`dlopt.nn.cross_entropy`;
    with soft targets (label smoothing, distillation) it is the same formula.
    """
    z, t = _logits_and_targets(logits, targets)
    per_row = -(t * log_softmax(z)).sum(-1)
    return float(np.mean(per_row))


def cross_entropy_with_logits_grad(logits, targets) -> np.ndarray:
    r"""Gradient of :func:`cross_entropy_with_logits` with respect to the logits:
    :math:`\big(\operatorname{softmax}(z)-t\big)/m`. Each row sums to zero, because the loss does
    not change when the same constant is added to all logits of a row."""
    z, t = _logits_and_targets(logits, targets)
    m = int(np.prod(z.shape[:-1]))
    return (softmax(z) - t) / m
