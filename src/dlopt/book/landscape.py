r"""Tools for looking at loss landscapes: a two-weight network with symmetric minima, critical
points found by Newton's method on :math:`\nabla f=0`, the index (fraction of negative Hessian
eigenvalues), sharpness and the loss under random weight perturbations.

>>> f = TwoUnitNetwork()                 # f(w1, w2) = f(w2, w1): two mirror-image minima
>>> f.value(f.minimizers)                # both are global minimisers
array([0., 0.])
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dlopt.analysis.calculus import hessian, hessian_vector_product, newton_critical_points
from dlopt.problems.functions import Objective

__all__ = [
    "TwoUnitNetwork",
    "hessian_from_grad",
    "index",
    "RandomField",
    "newton_critical_points",
    "sharpness",
    "perturbed_loss",
]


class TwoUnitNetwork(Objective):
    r"""The squared loss of a network with two tanh hidden units and unit output weights,
    :math:`f(w_1,w_2)=\frac1{2m}\sum_i\big(\tanh(w_1x_i)+\tanh(w_2x_i)-y_i\big)^2`, fitted to a
    teacher :math:`y_i=\tanh(ax_i)+\tanh(bx_i)` at the inputs ``x`` (default: 41 points in
    :math:`[-2,2]`).

    Swapping the two hidden units does not change the network, so :math:`f(w_1,w_2)=f(w_2,w_1)`
    and the two global minimisers :math:`(a,b)` and :math:`(b,a)` are mirror images.
    """

    dim = 2

    def __init__(self, a: float = 2.0, b: float = -0.5, x=None):
        self.a, self.b = float(a), float(b)
        self.x = np.linspace(-2, 2, 41) if x is None else np.asarray(x, dtype=float).reshape(-1)
        self.y = np.tanh(self.a * self.x) + np.tanh(self.b * self.x)
        self.name = "two-unit network"

    @property
    def minimizers(self) -> np.ndarray:
        """The two global minimisers ``(a, b)`` and ``(b, a)``; the minimum value is 0."""
        return np.array([[self.a, self.b], [self.b, self.a]])

    minimum = 0.0

    def _parts(self, w):
        w = np.asarray(w, dtype=float)
        t1 = np.tanh(w[..., 0, None] * self.x)
        t2 = np.tanh(w[..., 1, None] * self.x)
        return t1, t2, t1 + t2 - self.y

    def value(self, w):
        _, _, r = self._parts(w)
        return 0.5 * np.mean(r * r, axis=-1)

    def grad(self, w):
        t1, t2, r = self._parts(w)
        g1 = np.mean(r * (1 - t1**2) * self.x, axis=-1)
        g2 = np.mean(r * (1 - t2**2) * self.x, axis=-1)
        return np.stack([g1, g2], axis=-1)

    def hess(self, w):
        t1, t2, r = self._parts(w)
        x = self.x
        d1, d2 = (1 - t1**2) * x, (1 - t2**2) * x  # d r / d w_k
        dd1 = -2 * t1 * (1 - t1**2) * x * x  # d^2 r / d w_1^2
        dd2 = -2 * t2 * (1 - t2**2) * x * x
        h11 = np.mean(d1 * d1 + r * dd1, axis=-1)
        h22 = np.mean(d2 * d2 + r * dd2, axis=-1)
        h12 = np.mean(d1 * d2, axis=-1)
        return np.stack([np.stack([h11, h12], -1), np.stack([h12, h22], -1)], -2)


def hessian_from_grad(grad: Callable, theta, h: float = 1e-5) -> np.ndarray:
    r"""Symmetrised central-difference Jacobian of an exact gradient: the Hessian, error
    :math:`O(h^2)` (:func:`dlopt.calculus.hessian` with ``grad=``)."""
    return hessian(None, theta, h, grad=grad)


def index(H, tol: float = 1e-8) -> float:
    r"""The *index* of a critical point as a fraction: the share of eigenvalues of the symmetric
    matrix ``H`` below :math:`-\mathrm{tol}\cdot\max(1,\lVert H\rVert_2)`. 0 at a minimum, 1 at a maximum."""
    lam = np.linalg.eigvalsh(0.5 * (np.asarray(H, dtype=float) + np.asarray(H, dtype=float).T))
    return float(np.mean(lam < -tol * max(1.0, float(np.abs(lam).max()))))


class RandomField(Objective):
    r"""A smooth random function on :math:`\mathbb R^n`, approximately a stationary Gaussian
    random field (random Fourier features):
    :math:`f(x)=\sqrt{2/K}\sum_{k=1}^K a_k\cos(\omega_k^\top x+\varphi_k)`, with
    :math:`a_k\sim\mathcal N(0,1)`, :math:`\omega_k\sim\mathcal N(0,\ell^{-2}I)`,
    :math:`\varphi_k\sim\mathcal U[0,2\pi)`. It is the kind of landscape studied by Bray and
    Dean: a random function with a huge number of critical points of every index.
    """

    def __init__(self, n: int = 10, features: int = 400, length_scale: float = 1.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = int(n)
        self.a = rng.standard_normal(features) * np.sqrt(2.0 / features)
        self.omega = rng.standard_normal((features, n)) / length_scale
        self.phi = rng.uniform(0, 2 * np.pi, features)
        self.name = f"random field (n={n})"

    def _phase(self, x):
        return np.asarray(x, dtype=float) @ self.omega.T + self.phi

    def value(self, x):
        return np.cos(self._phase(x)) @ self.a

    def grad(self, x):
        return -(np.sin(self._phase(x)) * self.a) @ self.omega

    def hess(self, x):
        c = np.cos(self._phase(x)) * self.a
        return -(self.omega.T * c[..., None, :]) @ self.omega


def sharpness(grad: Callable, theta, iters: int = 100, h: float = 1e-4, seed: int = 0,
              return_vector: bool = False):
    r"""The largest Hessian eigenvalue :math:`\lambda_{\max}(\nabla^2 f(\theta))` by power iteration
    on finite-difference Hessian--vector products
    :math:`Hv\approx(\nabla f(\theta+hv)-\nabla f(\theta-hv))/(2h)`; two gradients per iteration,
    no Hessian is formed. (Power iteration finds the eigenvalue of largest modulus; at a minimum
    that is :math:`\lambda_{\max}`.) With ``return_vector=True`` returns ``(lambda, v)``, ``v``
    the unit eigenvector estimate."""
    theta = np.asarray(theta, dtype=float)
    v = np.random.default_rng(seed).standard_normal(theta.size)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        Hv = hessian_vector_product(grad, theta, v, eps=h)
        lam = float(v @ Hv)
        norm = np.linalg.norm(Hv)
        if norm == 0:
            return (0.0, v) if return_vector else 0.0
        v = Hv / norm
    return (lam, v) if return_vector else lam


def perturbed_loss(f: Callable, theta, sigma: float, samples: int = 200, seed: int = 0) -> float:
    r"""Mean loss increase :math:`\mathbb E\,f(\theta+\sigma\xi)-f(\theta)` over ``samples`` draws of
    :math:`\xi\sim\mathcal N(0,I)`: how much a random weight perturbation of size
    :math:`\sigma` costs. Near a minimum it is about :math:`\tfrac{\sigma^2}2\operatorname{tr}\nabla^2f(\theta)`."""
    theta = np.asarray(theta, dtype=float)
    rng = np.random.default_rng(seed)
    base = float(f(theta))
    return float(np.mean([float(f(theta + sigma * rng.standard_normal(theta.size))) for _ in range(samples)]) - base)
