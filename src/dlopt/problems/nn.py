r"""Neural-network building blocks written out by hand: activations, losses, a multilayer
perceptron with backpropagation.

Everything here works on numpy arrays, and the forward computations also on torch tensors, so a
page can check the hand-written backward pass against ``torch.autograd``:

>>> net = MLP([2, 8, 1], activation="tanh", seed=0)
>>> X, y = np.random.default_rng(0).standard_normal((20, 2)), np.zeros(20)
>>> value, grad = net.loss_and_grad(net.theta, X, y, loss="squared")
>>> grad.shape == net.theta.shape
True

Conventions: a batch ``X`` has one example per row; a layer computes ``z = h @ W + b`` with
``W`` of shape ``(fan_in, fan_out)``; every loss is the *mean* over the rows of the batch, and its
``*_grad`` is the derivative of that mean with respect to the network output.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "relu",
    "relu_grad",
    "identity",
    "identity_grad",
    "softmax",
    "log_softmax",
    "softmax_jacobian",
    "ACTIVATIONS",
    "squared_loss",
    "squared_loss_grad",
    "cross_entropy",
    "cross_entropy_grad",
    "logistic_loss",
    "logistic_loss_grad",
    "hinge_loss",
    "hinge_loss_grad",
    "LOSSES",
    "clip_by_norm",
    "MLP",
    "MLPObjective",
]


def _is_torch(x) -> bool:
    return hasattr(x, "detach")


# ----------------------------------------------------------------------------------------------
# Activations and their derivatives
# ----------------------------------------------------------------------------------------------
def sigmoid(z):
    r"""The logistic sigmoid :math:`\sigma(z)=1/(1+e^{-z})`, computed without overflow."""
    if _is_torch(z):
        return z.sigmoid()
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(z):
    r""":math:`\sigma'(z)=\sigma(z)(1-\sigma(z))`, at most :math:`1/4` (at :math:`z=0`)."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z):
    r"""The hyperbolic tangent :math:`\tanh z = 2\sigma(2z)-1`."""
    return z.tanh() if _is_torch(z) else np.tanh(np.asarray(z, dtype=float))


def tanh_grad(z):
    r""":math:`\tanh'(z)=1-\tanh^2 z`, at most :math:`1` (at :math:`z=0`)."""
    t = tanh(z)
    return 1 - t * t


def relu(z):
    r"""The rectified linear unit :math:`\max(0,z)`."""
    return z.clamp(min=0) if _is_torch(z) else np.maximum(np.asarray(z, dtype=float), 0.0)


def relu_grad(z):
    r""":math:`\mathrm{relu}'(z)=\mathbb 1[z>0]` (we take the value :math:`0` at the kink :math:`z=0`)."""
    return (z > 0).to(z.dtype) if _is_torch(z) else (np.asarray(z) > 0).astype(float)


def identity(z):
    """The identity (a linear layer without activation)."""
    return z if _is_torch(z) else np.asarray(z, dtype=float)


def identity_grad(z):
    """Derivative of the identity: ones."""
    return z * 0 + 1 if _is_torch(z) else np.ones_like(np.asarray(z, dtype=float))


def softmax(z, axis: int = -1):
    r"""Softmax :math:`p_i=e^{z_i}/\sum_j e^{z_j}` along ``axis`` (shifted by the max for stability)."""
    if _is_torch(z):
        return z.softmax(dim=axis)
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z):
    r""":math:`\log\mathrm{softmax}(z)_i = z_i-\log\sum_j e^{z_j}` along the last axis, computed
    stably (shift by the maximum)."""
    z = np.asarray(z, dtype=float)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def softmax_jacobian(z) -> np.ndarray:
    r"""Jacobian :math:`\partial p_i/\partial z_j=p_i(\delta_{ij}-p_j)`, i.e.
    :math:`\mathrm{diag}(p)-pp^\top`, of the softmax of one vector ``z``."""
    p = softmax(np.asarray(z, dtype=float).reshape(-1))
    return np.diag(p) - np.outer(p, p)


#: name -> (activation, derivative)
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "linear": (identity, identity_grad),
}


# ----------------------------------------------------------------------------------------------
# Losses (means over the batch) and their gradients with respect to the output
# ----------------------------------------------------------------------------------------------
def _as_column_like(y, out):
    """Reshape targets ``y`` to the shape of the outputs ``out`` (``(m,)`` vs ``(m, 1)``)."""
    if _is_torch(out):
        import torch

        y = torch.as_tensor(y, dtype=out.dtype, device=out.device)
    else:
        y = np.asarray(y, dtype=float)
    return y.reshape(out.shape)


def squared_loss(out, y):
    r"""Mean squared error :math:`\frac1m\sum_i\tfrac12\lVert\hat y_i-y_i\rVert^2`."""
    r = out - _as_column_like(y, out)
    return 0.5 * (r * r).sum() / out.shape[0]


def squared_loss_grad(out, y):
    r"""Gradient of :func:`squared_loss` with respect to ``out``: :math:`(\hat y-y)/m`."""
    return (out - _as_column_like(y, out)) / out.shape[0]


def _labels(labels, m: int) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != m or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"cross entropy needs {m} integer class labels, got {labels.dtype} {labels.shape}")
    return labels


def cross_entropy(logits, labels):
    r"""Softmax cross-entropy :math:`\frac1m\sum_i\big(\log\sum_j e^{z_{ij}}-z_{i,y_i}\big)`
    for logits of shape ``(m, k)`` and integer labels in ``{0, …, k-1}``."""
    if _is_torch(logits):
        import torch

        lab = torch.as_tensor(np.asarray(labels).reshape(-1), device=logits.device, dtype=torch.long)
        return torch.nn.functional.cross_entropy(logits, lab)
    z = np.asarray(logits, dtype=float)
    lab = _labels(labels, z.shape[0])
    return float(-np.mean(log_softmax(z)[np.arange(z.shape[0]), lab]))


def cross_entropy_grad(logits, labels):
    r"""Gradient of :func:`cross_entropy`: :math:`(\mathrm{softmax}(z)-\mathrm{onehot}(y))/m`."""
    z = np.asarray(logits, dtype=float)
    lab = _labels(labels, z.shape[0])
    g = softmax(z)
    g[np.arange(z.shape[0]), lab] -= 1.0
    return g / z.shape[0]


def logistic_loss(out, y):
    r"""Logistic (log) loss :math:`\frac1m\sum_i\log(1+e^{-y_iz_i})` for labels :math:`y_i\in\{-1,+1\}`."""
    margin = _as_column_like(y, out) * out
    if _is_torch(out):
        import torch

        return torch.nn.functional.softplus(-margin).mean()
    return float(np.mean(np.logaddexp(0.0, -margin)))


def logistic_loss_grad(out, y):
    r"""Gradient of :func:`logistic_loss`: :math:`-y_i\,\sigma(-y_iz_i)/m`."""
    y = _as_column_like(y, out)
    return -y * sigmoid(-y * out) / out.shape[0]


def hinge_loss(out, y):
    r"""Hinge loss :math:`\frac1m\sum_i\max(0,1-y_iz_i)` for labels :math:`y_i\in\{-1,+1\}`."""
    margin = _as_column_like(y, out) * out
    if _is_torch(out):
        return (1 - margin).clamp(min=0).mean()
    return float(np.mean(np.maximum(0.0, 1.0 - margin)))


def hinge_loss_grad(out, y):
    r"""A subgradient of :func:`hinge_loss`: :math:`-y_i\mathbb 1[y_iz_i<1]/m` (0 at the kink)."""
    y = _as_column_like(y, out)
    return -y * ((y * out) < 1) / out.shape[0]


#: name -> (mean loss, gradient of the mean loss with respect to the output)
LOSSES: dict[str, tuple[Callable, Callable]] = {
    "squared": (squared_loss, squared_loss_grad),
    "cross_entropy": (cross_entropy, cross_entropy_grad),
    "logistic": (logistic_loss, logistic_loss_grad),
    "hinge": (hinge_loss, hinge_loss_grad),
}


# ----------------------------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------------------------
def clip_by_norm(g, max_norm: float):
    r"""Clip a gradient by its Euclidean norm: :math:`g\,\min(1, c/\lVert g\rVert)` with
    :math:`c` = ``max_norm``.

    The result points in the direction of ``g`` and has norm :math:`\min(\lVert g\rVert, c)`:
    gradients no longer than ``max_norm`` are returned unchanged (as a copy), longer ones are
    scaled down to length ``max_norm``. The norm is taken over all entries (the Frobenius norm of
    a matrix), so clipping the flat parameter vector of an :class:`MLP` is what
    ``torch.nn.utils.clip_grad_norm_`` does to a model's list of parameters (torch adds
    :math:`10^{-6}` to the norm in the denominator). It is computed without overflow even for
    entries near the largest float; a gradient with ``inf`` or ``nan`` entries gives ``nan``.
    Works on numpy arrays and torch tensors.

    >>> clip_by_norm(np.array([3.0, 4.0]), 1.0)
    array([0.6, 0.8])
    >>> clip_by_norm(np.array([0.3, 0.4]), 1.0)
    array([0.3, 0.4])
    """
    max_norm = float(max_norm)
    if not max_norm >= 0.0:
        raise ValueError(f"max_norm must be non-negative, got {max_norm}")
    if _is_torch(g):
        norm = float(g.detach().double().norm())
        if not np.isfinite(norm):
            return g * float("nan")
        return g * min(1.0, max_norm / norm) if norm > max_norm else g.clone()
    g = np.array(g, dtype=float)
    scale = float(np.max(np.abs(g))) if g.size else 0.0
    if not np.isfinite(scale):
        return np.full_like(g, np.nan)
    if scale == 0.0:
        return g
    norm = scale * float(np.sqrt(np.sum((g / scale) ** 2)))  # no overflow of g * g
    if norm > max_norm:
        g *= max_norm / norm
    return g


# ----------------------------------------------------------------------------------------------
# A multilayer perceptron with a hand-written backward pass
# ----------------------------------------------------------------------------------------------
class MLP:
    r"""A fully connected network :math:`h_0=x,\ z_l=h_{l-1}W_l+b_l,\ h_l=\phi(z_l)` for
    :math:`l<L`, output :math:`z_L` (no activation on the last layer).

    The parameters live in one flat vector :attr:`theta` (``W_1, b_1, W_2, b_2, …``, each ``W``
    row-major), so that the network's loss is an ordinary function of a vector: it can be checked
    against finite differences, handed to :func:`dlopt.run`, or differentiated by torch.

    ``init_scale`` multiplies the usual initial standard deviation :math:`1/\sqrt{\text{fan-in}}`
    (``"he"`` uses :math:`\sqrt{2/\text{fan-in}}`); biases start at zero.
    """

    def __init__(self, sizes, activation: str = "tanh", seed: int = 0, init_scale: float | str = 1.0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output width >= 1, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.sizes = sizes
        self.activation = activation
        self.shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.n_params = sum(a * b + b for a, b in self.shapes)
        rng = np.random.default_rng(seed)
        parts = []
        for a, b in self.shapes:
            std = np.sqrt(2.0 / a) if init_scale == "he" else float(init_scale) / np.sqrt(a)
            parts += [rng.standard_normal(a * b) * std, np.zeros(b)]
        self.theta = np.concatenate(parts)

    @property
    def depth(self) -> int:
        """Number of weight layers :math:`L`."""
        return len(self.shapes)

    def __repr__(self) -> str:
        return f"MLP({self.sizes}, activation={self.activation!r}, {self.n_params} parameters)"

    def unflatten(self, theta):
        """Split a flat parameter vector into ``[(W_1, b_1), …, (W_L, b_L)]`` (views, no copies)."""
        if theta.shape[-1] != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters, got {theta.shape[-1]}")
        layers, i = [], 0
        for a, b in self.shapes:
            W = theta[i:i + a * b].reshape(a, b)
            i += a * b
            layers.append((W, theta[i:i + b]))
            i += b
        return layers

    def flatten(self, layers) -> np.ndarray:
        """Inverse of :meth:`unflatten` for numpy arrays."""
        return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)]) for W, b in layers])

    def forward(self, theta, X, cache: bool = False):
        """Network output for the batch ``X`` (numpy or torch). With ``cache=True`` also return the
        pre-activations ``zs`` and activations ``hs`` (``hs[0] = X``) that the backward pass needs."""
        phi = ACTIVATIONS[self.activation][0]
        h = X
        zs, hs = [], [X]
        layers = self.unflatten(theta)
        for l, (W, b) in enumerate(layers):
            z = h @ W + b
            zs.append(z)
            h = phi(z) if l < len(layers) - 1 else z
            hs.append(h)
        return (h, zs, hs) if cache else h

    def loss(self, theta, X, y, loss: str = "squared"):
        """The empirical risk: mean ``loss`` of the network's outputs on the batch ``(X, y)``."""
        out = self.forward(theta, X)
        if self.sizes[-1] == 1 and loss != "cross_entropy":
            out = out[:, 0]
        return LOSSES[loss][0](out, y)

    def backward(self, theta, X, y, loss: str = "squared"):
        r"""Backpropagation. Returns ``(value, grads, deltas)``: the loss, the list of
        ``(dW_l, db_l)`` and the list of :math:`\delta_l=\partial(\text{loss})/\partial z_l`.

        With :math:`\delta_L=\partial\ell/\partial z_L`, the chain rule gives, for
        :math:`l=L,\dots,1`:
        :math:`\partial\ell/\partial W_l=h_{l-1}^\top\delta_l`,
        :math:`\partial\ell/\partial b_l=\mathbf 1^\top\delta_l`,
        :math:`\delta_{l-1}=(\delta_lW_l^\top)\odot\phi'(z_{l-1})`.
        """
        theta = np.asarray(theta, dtype=float)
        X = np.asarray(X, dtype=float)
        value_fn, grad_fn = LOSSES[loss]
        out, zs, hs = self.forward(theta, X, cache=True)
        dphi = ACTIVATIONS[self.activation][1]
        if self.sizes[-1] == 1 and loss != "cross_entropy":
            value = value_fn(out[:, 0], y)
            delta = grad_fn(out[:, 0], y)[:, None]
        else:
            value = value_fn(out, y)
            delta = grad_fn(out, y)
        layers = self.unflatten(theta)
        grads: list = [None] * len(layers)
        deltas: list = [None] * len(layers)
        for l in range(len(layers) - 1, -1, -1):
            W, _ = layers[l]
            deltas[l] = delta
            grads[l] = (hs[l].T @ delta, delta.sum(axis=0))
            if l > 0:
                delta = (delta @ W.T) * dphi(zs[l - 1])
        return float(value), grads, deltas

    def loss_and_grad(self, theta, X, y, loss: str = "squared"):
        """The loss and its gradient with respect to the flat parameter vector."""
        value, grads, _ = self.backward(theta, X, y, loss)
        return value, self.flatten(grads)

    def objective(self, X, y, loss: str = "squared") -> "MLPObjective":
        """The empirical risk on ``(X, y)`` as an objective with ``value`` and ``grad``."""
        return MLPObjective(self, X, y, loss)


class MLPObjective:
    """The empirical risk of an :class:`MLP` as a function of its flat parameters, with
    ``value(theta)`` and ``grad(theta)`` (by backpropagation), usable with :func:`dlopt.run`."""

    def __init__(self, net: MLP, X, y, loss: str = "squared"):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        self.net, self.X, self.y, self.loss = net, np.asarray(X, dtype=float), y, loss
        self.dim = net.n_params
        self.name = f"{loss} loss of {net!r}"

    def value(self, theta):
        return float(self.net.loss(np.asarray(theta, dtype=float), self.X, self.y, self.loss))

    def grad(self, theta):
        return self.net.loss_and_grad(theta, self.X, self.y, self.loss)[1]

    def __call__(self, theta):
        return self.value(theta)
