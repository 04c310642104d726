r"""Test objectives with value, gradient and Hessian.

Every objective is an :class:`Objective`: ``f.value(x)``, ``f.grad(x)`` and ``f.hess(x)`` take a
point ``x`` of shape ``(n,)`` -- or a stack of points of shape ``(..., n)``, so that a whole grid
can be evaluated at once for a contour plot:

>>> f = Rosenbrock()
>>> X, Y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1, 3, 5))
>>> f.value(np.stack([X, Y], axis=-1)).shape
(5, 5)

``value`` and ``grad`` also accept torch tensors (they only use arithmetic and indexing), which is
how the training chapters reuse the same objectives with autograd.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Objective",
    "Quadratic",
    "Rosenbrock",
    "Beale",
    "Himmelblau",
    "DoubleWell",
    "LeastSquares",
    "LogisticRegression",
    "RobustRegression",
    "OnlineLinear",
    "level_set",
    "random_rotation",
]


class Objective:
    """A twice-differentiable function :math:`f:\\mathbb{R}^n\\to\\mathbb{R}`.

    Subclasses implement :meth:`value`, :meth:`grad` and :meth:`hess` for inputs of shape
    ``(..., n)``; ``grad`` returns shape ``(..., n)`` and ``hess`` shape ``(..., n, n)``.
    """

    name: str = "objective"
    dim: int = 2

    def value(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define value()")

    def grad(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define grad()")

    def hess(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define hess()")

    def __call__(self, x):
        return self.value(x)

    def on_grid(self, xlim, ylim, num: int = 200):
        """Evaluate a 2-D objective on a ``num × num`` grid; returns ``(X, Y, Z)``."""
        if self.dim != 2:
            raise ValueError(f"on_grid needs a 2-D objective, {self.name} has dim={self.dim}")
        X, Y = np.meshgrid(np.linspace(xlim[0], xlim[1], num), np.linspace(ylim[0], ylim[1], num))
        return X, Y, self.value(np.stack([X, Y], axis=-1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


def as_point(x):
    """A point for an objective: numpy input (or a list) as a float array; a torch tensor as it
    is (the objectives work on both)."""
    return x if hasattr(x, "detach") else np.asarray(x, dtype=float)


def random_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random orthogonal ``n × n`` matrix (QR of a Gaussian matrix, sign-fixed)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


class _Spectral:
    """``L``, ``mu`` and ``kappa`` of an objective with a constant Hessian whose ascending
    ``eigenvalues`` it stores (a quadratic, least squares)."""

    eigenvalues: np.ndarray

    @property
    def L(self) -> float:
        """Smoothness constant: the largest eigenvalue of the Hessian."""
        return float(self.eigenvalues[-1])

    @property
    def mu(self) -> float:
        """Strong-convexity constant: the smallest eigenvalue of the Hessian."""
        return float(self.eigenvalues[0])

    @property
    def kappa(self) -> float:
        """Condition number ``L / μ`` (infinite unless the Hessian is positive definite)."""
        return self.L / self.mu if self.mu > 0 else np.inf


class Quadratic(_Spectral, Objective):
    r"""The quadratic :math:`f(x) = \tfrac12 x^\top A x - b^\top x + c` with symmetric ``A``.

    Its gradient is :math:`Ax - b` and its Hessian is ``A`` everywhere, so it is
    :math:`L`-smooth with :math:`L=\lambda_{\max}(A)` and, when ``A`` is positive definite,
    :math:`\mu`-strongly convex with :math:`\mu=\lambda_{\min}(A)`.
    """

    def __init__(self, A, b=None, c: float = 0.0, name: str = "quadratic"):
        A = np.array(A, dtype=float)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {A.shape}")
        if not np.allclose(A, A.T, rtol=1e-12, atol=1e-12):
            raise ValueError("A must be symmetric")
        self.A = 0.5 * (A + A.T)
        self.dim = A.shape[0]
        self.b = np.zeros(self.dim) if b is None else np.array(b, dtype=float).reshape(self.dim)
        self.c = float(c)
        self.name = name
        self.eigenvalues = np.linalg.eigvalsh(self.A)

    @classmethod
    def from_eigenvalues(cls, eigenvalues, b=None, rotation=None, seed=None, **kw):
        """``A = Q diag(eigenvalues) Qᵀ``; ``Q`` is ``rotation``, a random rotation when ``seed``
        is given, else the identity (axis-aligned ellipses)."""
        lam = np.asarray(eigenvalues, dtype=float)
        n = lam.size
        if rotation is None:
            rotation = np.eye(n) if seed is None else random_rotation(n, np.random.default_rng(seed))
        Q = np.asarray(rotation, dtype=float)
        return cls((Q * lam) @ Q.T, b=b, **kw)

    @classmethod
    def from_condition_number(cls, kappa: float, n: int = 2, L: float = 1.0, seed=None, b=None, **kw):
        """A positive definite quadratic with ``λ_max = L`` and ``λ_min = L/κ``.

        The eigenvalues are spread log-uniformly between the two; with ``seed`` the eigenbasis is
        a random rotation.
        """
        if kappa < 1:
            raise ValueError(f"condition number must be >= 1, got {kappa}")
        lam = L * np.logspace(-np.log10(kappa), 0, n) if n > 1 else np.array([L])
        return cls.from_eigenvalues(lam, b=b, seed=seed, **kw)


    @property
    def minimizer(self) -> np.ndarray:
        """The unique minimiser ``A⁻¹ b`` (requires ``A`` positive definite)."""
        if self.mu <= 0:
            raise ValueError("the quadratic has no unique minimiser: A is not positive definite")
        return np.linalg.solve(self.A, self.b)

    @property
    def minimum(self) -> float:
        return float(self.value(self.minimizer))

    def value(self, x):
        x = as_point(x)
        Ax = x @ self.A if isinstance(x, np.ndarray) else x @ _like(self.A, x)
        b = self.b if isinstance(x, np.ndarray) else _like(self.b, x)
        return 0.5 * (x * Ax).sum(-1) - (x * b).sum(-1) + self.c

    def grad(self, x):
        x = as_point(x)
        if isinstance(x, np.ndarray):
            return x @ self.A - self.b
        return x @ _like(self.A, x) - _like(self.b, x)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(self.A, x.shape[:-1] + self.A.shape).copy()


def _like(array: np.ndarray, tensor):
    """Convert a numpy constant to a tensor with ``tensor``'s dtype and device."""
    import torch

    return torch.as_tensor(array, dtype=tensor.dtype, device=tensor.device)


class Rosenbrock(Objective):
    r"""The Rosenbrock function :math:`\sum_{i<n} b(x_{i+1}-x_i^2)^2 + (a-x_i)^2`.

    Minimum 0 at :math:`(a, a^2, \ldots)`; for ``a=1`` at the all-ones vector. Its curved, narrow
    valley makes it the classic test of how an optimizer copes with ill-conditioning.
    """

    def __init__(self, n: int = 2, a: float = 1.0, b: float = 100.0):
        if n < 2:
            raise ValueError(f"Rosenbrock needs n >= 2, got {n}")
        self.dim, self.a, self.b = n, float(a), float(b)
        self.name = "Rosenbrock" if n == 2 else f"Rosenbrock-{n}"

    @property
    def minimizer(self) -> np.ndarray:
        """``(a, a²)`` for n = 2; the all-ones vector for ``a = 1`` and any n."""
        if self.dim == 2:
            return np.array([self.a, self.a**2])
        if self.a == 1.0:
            return np.ones(self.dim)
        raise ValueError("the minimiser has no closed form for n > 2 and a != 1")

    def value(self, x):
        x = as_point(x)
        u, v = x[..., :-1], x[..., 1:]
        return (self.b * (v - u**2) ** 2 + (self.a - u) ** 2).sum(-1)

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        u, v = x[..., :-1], x[..., 1:]
        r = v - u**2
        g = np.zeros_like(x)
        g[..., :-1] += -4 * self.b * u * r - 2 * (self.a - u)
        g[..., 1:] += 2 * self.b * r
        return g

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        n = self.dim
        H = np.zeros(x.shape[:-1] + (n, n))
        u, v = x[..., :-1], x[..., 1:]
        i = np.arange(n - 1)
        H[..., i, i] += 12 * self.b * u**2 - 4 * self.b * v + 2
        H[..., i + 1, i + 1] += 2 * self.b
        H[..., i, i + 1] = -4 * self.b * u
        H[..., i + 1, i] = -4 * self.b * u
        return H


class Beale(Objective):
    r"""Beale's function, minimum 0 at :math:`(3, 1/2)`; flat plateaus and steep ridges.

    :math:`f = \sum_{k=1}^3 (c_k - x + x y^k)^2` with :math:`c = (1.5, 2.25, 2.625)`.
    """

    name = "Beale"
    dim = 2
    minimizer = np.array([3.0, 0.5])
    _c = (1.5, 2.25, 2.625)

    def value(self, x):
        x = as_point(x)
        X, Y = x[..., 0], x[..., 1]
        return sum((c - X + X * Y ** (k + 1)) ** 2 for k, c in enumerate(self._c))

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        g = np.zeros_like(x)
        for k, c in enumerate(self._c, start=1):
            r = c - X + X * Y**k
            g[..., 0] += 2 * r * (Y**k - 1)
            g[..., 1] += 2 * r * k * X * Y ** (k - 1)
        return g

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        H = np.zeros(x.shape[:-1] + (2, 2))
        for k, c in enumerate(self._c, start=1):
            r = c - X + X * Y**k
            rx, ry = Y**k - 1, k * X * Y ** (k - 1)
            ryy = k * (k - 1) * X * Y ** (k - 2) if k > 1 else 0.0
            rxy = k * Y ** (k - 1)
            H[..., 0, 0] += 2 * rx * rx
            H[..., 1, 1] += 2 * (ry * ry + r * ryy)
            H[..., 0, 1] += 2 * (rx * ry + r * rxy)
        H[..., 1, 0] = H[..., 0, 1]
        return H


class Himmelblau(Objective):
    r"""Himmelblau's function :math:`(x^2+y-11)^2 + (x+y^2-7)^2`: four minima (value 0),
    one local maximum and four saddle points -- a small atlas of critical points."""

    name = "Himmelblau"
    dim = 2
    minimizers = np.array(
        [[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]]
    )

    def value(self, x):
        x = as_point(x)
        X, Y = x[..., 0], x[..., 1]
        return (X**2 + Y - 11) ** 2 + (X + Y**2 - 7) ** 2

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        p, q = X**2 + Y - 11, X + Y**2 - 7
        return np.stack([4 * X * p + 2 * q, 2 * p + 4 * Y * q], axis=-1)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        p, q = X**2 + Y - 11, X + Y**2 - 7
        H = np.empty(x.shape[:-1] + (2, 2))
        H[..., 0, 0] = 4 * p + 8 * X**2 + 2
        H[..., 1, 1] = 4 * q + 8 * Y**2 + 2
        H[..., 0, 1] = H[..., 1, 0] = 4 * X + 4 * Y
        return H


class DoubleWell(Objective):
    r""":math:`f(x, y) = (x^2-1)^2 + \gamma y^2`: two minima at :math:`(\pm1, 0)`, a saddle at the
    origin, and curvature :math:`8` along :math:`x` at the minima against :math:`2\gamma` along
    :math:`y` -- large :math:`\gamma` makes it ill-conditioned."""

    dim = 2

    def __init__(self, gamma: float = 1.0):
        self.gamma = float(gamma)
        self.name = f"double well (γ={gamma:g})"

    minimizers = np.array([[-1.0, 0.0], [1.0, 0.0]])

    def value(self, x):
        x = as_point(x)
        return (x[..., 0] ** 2 - 1) ** 2 + self.gamma * x[..., 1] ** 2

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return np.stack([4 * x[..., 0] * (x[..., 0] ** 2 - 1), 2 * self.gamma * x[..., 1]], axis=-1)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        H = np.zeros(x.shape[:-1] + (2, 2))
        H[..., 0, 0] = 12 * x[..., 0] ** 2 - 4
        H[..., 1, 1] = 2 * self.gamma
        return H


@dataclass
class LeastSquares(_Spectral, Objective):
    r"""Empirical risk of linear least squares, :math:`\mathcal L(w)=\frac1{2m}\lVert Xw-y\rVert^2`.

    ``m`` samples (rows of ``X``), ``n`` features. Besides the full gradient
    :math:`\frac1m X^\top(Xw-y)` it gives the mini-batch gradient over a set of sample indices,
    the unbiased estimate that stochastic gradient descent uses.
    """

    X: np.ndarray
    y: np.ndarray
    name: str = field(default="least squares")

    def __post_init__(self):
        self.X = np.asarray(self.X, dtype=float)
        self.y = np.asarray(self.y, dtype=float).reshape(-1)
        if self.X.ndim != 2 or self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X must be (m, n) and y (m,), got {self.X.shape} and {self.y.shape}")
        self.m, self.dim = self.X.shape
        self._H = self.X.T @ self.X / self.m
        self.eigenvalues = np.linalg.eigvalsh(self._H)

    @property
    def minimizer(self) -> np.ndarray:
        return np.linalg.lstsq(self.X, self.y, rcond=None)[0]

    @property
    def minimum(self) -> float:
        return float(self.value(self.minimizer))

    def residual(self, w):
        return np.asarray(w, dtype=float) @ self.X.T - self.y

    def value(self, w):
        return 0.5 * np.mean(self.residual(w) ** 2, axis=-1)

    def grad(self, w):
        return self.residual(w) @ self.X / self.m

    def hess(self, w):
        w = np.asarray(w, dtype=float)
        return np.broadcast_to(self._H, w.shape[:-1] + self._H.shape).copy()

    def batch_grad(self, w, idx):
        r"""Mini-batch gradient :math:`\frac1{|B|}\sum_{i\in B}(x_i^\top w-y_i)x_i`."""
        idx = np.asarray(idx)
        Xb = self.X[idx]
        return (Xb @ np.asarray(w, dtype=float) - self.y[idx]) @ Xb / idx.size

    def sampler(self, batch_size: int, rng: np.random.Generator):
        """A gradient oracle ``g(w, k, rng)`` (using its own ``rng``) that draws a fresh
        mini-batch (without replacement within the batch) at every call -- pass it to :func:`dlopt.run` as ``grad=``."""
        if not 1 <= batch_size <= self.m:
            raise ValueError(f"batch_size must be in [1, {self.m}], got {batch_size}")

        def oracle(w, k, rng_=None):
            return self.batch_grad(w, rng.choice(self.m, size=batch_size, replace=False))

        return oracle


class LogisticRegression(Objective):
    r"""Regularised logistic regression with labels :math:`y_i\in\{-1,+1\}`:

    .. math:: f(w) = \frac1m\sum_{i=1}^m \log\big(1+e^{-y_i x_i^\top w}\big) + \frac{\lambda}{2}\lVert w\rVert^2 .

    Smooth and convex, strongly convex when ``l2 > 0``, but not quadratic: its Hessian
    :math:`\frac1m X^\top D X + \lambda I` with :math:`D=\mathrm{diag}(\sigma(z_i)(1-\sigma(z_i)))`
    lies between ``mu = l2`` and ``L = l2 + λ_max(XᵀX)/(4m)`` (the bounds :attr:`mu`, :attr:`L`).
    """

    def __init__(self, X, y, l2: float = 0.0, name: str = "logistic regression"):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float).reshape(-1)
        if self.X.ndim != 2 or self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X must be (m, n) and y (m,), got {self.X.shape} and {self.y.shape}")
        if not np.all(np.isin(self.y, (-1.0, 1.0))):
            raise ValueError("labels y must be -1 or +1")
        if l2 < 0:
            raise ValueError(f"l2 must be non-negative, got {l2}")
        self.m, self.dim = self.X.shape
        self.l2 = float(l2)
        self.name = name

    @property
    def L(self) -> float:
        """Smoothness bound ``l2 + λ_max(XᵀX)/(4m)``."""
        return self.l2 + float(np.linalg.eigvalsh(self.X.T @ self.X)[-1]) / (4 * self.m)

    @property
    def mu(self) -> float:
        """Strong-convexity bound ``l2``."""
        return self.l2

    def _margins(self, w):
        return self.y * (np.asarray(w, dtype=float) @ self.X.T)

    def value(self, w):
        w = np.asarray(w, dtype=float)
        return np.mean(np.logaddexp(0.0, -self._margins(w)), axis=-1) + 0.5 * self.l2 * (w * w).sum(-1)

    def grad(self, w):
        w = np.asarray(w, dtype=float)
        s = _sigmoid(-self._margins(w))  # = 1 - σ(z)
        return -(s * self.y) @ self.X / self.m + self.l2 * w

    def hess(self, w):
        z = self._margins(w)
        d = _sigmoid(z) * _sigmoid(-z)
        H = np.einsum("...i,ij,ik->...jk", d, self.X, self.X) / self.m
        return H + self.l2 * np.eye(self.dim)



class RobustRegression(Objective):
    r"""Linear regression with the bounded, non-convex Geman--McClure loss
    :math:`\rho(r)=r^2/(1+r^2)`:

    .. math:: f(w) = \frac1m\sum_{i=1}^m \rho(x_i^\top w - y_i).

    Non-convex (:math:`\rho''<0` for :math:`|r|>1/\sqrt3`), bounded below by 0, and the per-sample
    gradients :math:`\rho'(r_i)x_i` are bounded: :math:`|\rho'|\le 3\sqrt3/8`, so every
    stochastic gradient satisfies :math:`\lVert g\rVert_\infty\le G` with
    ``G = 3√3/8 · max|X|`` (:attr:`G`). Since :math:`|\rho''|\le2`, ``f`` is :math:`L`-smooth with
    ``L = 2 λ_max(XᵀX)/m`` (:attr:`L`). The standard testbed for non-convex stochastic
    convergence theorems that assume bounded gradients.

    ``value``/``grad``/``hess`` accept stacks of points ``(..., n)``; :meth:`batch_grad` accepts a
    stack of points ``(S, n)`` with one index set per point ``(S, b)``, so many independent runs
    can advance at once.
    """

    def __init__(self, X, y, name: str = "robust regression"):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float).reshape(-1)
        if self.X.ndim != 2 or self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X must be (m, n) and y (m,), got {self.X.shape} and {self.y.shape}")
        self.m, self.dim = self.X.shape
        self.name = name

    @property
    def L(self) -> float:
        """Smoothness bound ``2 λ_max(XᵀX)/m`` (from ``|ρ''| ≤ 2``)."""
        return 2.0 * float(np.linalg.eigvalsh(self.X.T @ self.X)[-1]) / self.m

    @property
    def G(self) -> float:
        """Bound ``3√3/8 · max|X_ij|`` on the ∞-norm of every per-sample gradient."""
        return 3.0 * np.sqrt(3.0) / 8.0 * float(np.abs(self.X).max())

    def residual(self, w):
        return np.asarray(w, dtype=float) @ self.X.T - self.y

    def value(self, w):
        r2 = self.residual(w) ** 2
        return np.mean(r2 / (1.0 + r2), axis=-1)

    def grad(self, w):
        r = self.residual(w)
        return (2.0 * r / (1.0 + r * r) ** 2) @ self.X / self.m

    def hess(self, w):
        r = self.residual(w)
        d = (2.0 - 6.0 * r * r) / (1.0 + r * r) ** 3
        return np.einsum("...i,ij,ik->...jk", d, self.X, self.X) / self.m

    def batch_grad(self, w, idx):
        r"""Mini-batch gradient :math:`\frac1{|B|}\sum_{i\in B}\rho'(x_i^\top w-y_i)\,x_i`.

        ``w`` of shape ``(n,)`` with ``idx`` of shape ``(b,)``, or ``w`` of shape ``(S, n)`` with
        ``idx`` of shape ``(S, b)`` (one batch per row of ``w``).
        """
        w = np.asarray(w, dtype=float)
        idx = np.asarray(idx)
        Xb = self.X[idx]  # (b, n) or (S, b, n)
        r = np.einsum("...bn,...n->...b", Xb, w) - self.y[idx]
        return np.einsum("...b,...bn->...n", 2.0 * r / (1.0 + r * r) ** 2, Xb) / idx.shape[-1]

    def sampler(self, batch_size: int, rng: np.random.Generator):
        """A gradient oracle ``g(w, k, rng)`` (using its own ``rng``) drawing a fresh mini-batch
        (with replacement) per call;
        for a stack ``w`` of shape ``(S, n)`` each row gets its own batch."""
        if not 1 <= batch_size <= self.m:
            raise ValueError(f"batch_size must be in [1, {self.m}], got {batch_size}")

        def oracle(w, k, rng_=None):
            shape = np.shape(w)[:-1] + (batch_size,)
            return self.batch_grad(w, rng.integers(0, self.m, size=shape))

        return oracle


class OnlineLinear(Objective):
    r"""The online problem of Reddi, Kale and Kumar (2018) on which Adam fails.

    On the interval :math:`[-1,1]` the losses are linear, :math:`f_t(x)=C x` for
    :math:`t=1,4,7,\dots` and :math:`f_t(x)=-x` otherwise (``C > 2``). Their average
    :math:`f(x)=\frac{C-2}{3}x` -- what :meth:`value` returns -- is minimised at
    :math:`x^\star=-1`. :meth:`online_grad` is the gradient oracle ``g(x, k)`` of step ``k``
    (``k = 0, 1, 2, …``, so ``k % 3 == 0`` is the large gradient ``C``); pass it to
    :func:`dlopt.run` as ``grad=`` or to :func:`dlopt.experiments.run_batch`, projecting onto
    :attr:`bounds`.
    """

    dim = 1
    bounds = (-1.0, 1.0)

    def __init__(self, C: float = 3.0):
        if C <= 2:
            raise ValueError(f"C must exceed 2, got {C}")
        self.C = float(C)
        self.name = f"Reddi et al. online problem (C={C:g})"

    @property
    def minimizer(self) -> np.ndarray:
        return np.array([-1.0])

    @property
    def minimum(self) -> float:
        return -(self.C - 2.0) / 3.0

    def value(self, x):
        return (self.C - 2.0) / 3.0 * np.asarray(x, dtype=float)[..., 0]

    def grad(self, x):
        return np.full_like(np.asarray(x, dtype=float), (self.C - 2.0) / 3.0)

    def hess(self, x):
        return np.zeros(np.shape(x) + (1,))

    def online_grad(self, x, k):
        """Gradient of the loss of step ``k``: ``C`` when ``k % 3 == 0``, else ``-1``."""
        return np.full_like(np.asarray(x, dtype=float), self.C if k % 3 == 0 else -1.0)

    def loss(self, x, k):
        """The loss :math:`f_{k+1}(x)` of step ``k``."""
        return (self.C if k % 3 == 0 else -1.0) * np.asarray(x, dtype=float)[..., 0]

    def regret(self, xs):
        r"""Average regret :math:`\frac1T\big(\sum_{k<T} f_{k+1}(x_k) - \min_x\sum_{k<T} f_{k+1}(x)\big)`
        of the iterates ``xs[0..T-1]`` (shape ``(T, 1)`` or ``(T,)``)."""
        xs = np.asarray(xs, dtype=float).reshape(len(xs), -1)[:, 0]
        T = len(xs)
        coef = np.where(np.arange(T) % 3 == 0, self.C, -1.0)
        total = coef.sum()
        best = min(total * -1.0, total * 1.0)
        return float((coef @ xs - best) / T)

def _sigmoid(z):
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -z))


def level_set(objective: Objective, level: float, xlim=(-2, 2), ylim=(-2, 2), spacing: float = 0.01,
              num: int = 600, newton_steps: int = 3) -> list[np.ndarray]:
    r"""Points on the level curve :math:`S_c=\{x: f(x)=c\}` of a 2-D objective.

    The curve is traced on a ``num × num`` grid (marching squares, via contourpy), resampled every
    ``spacing`` units of arc length, and each sample is moved onto :math:`S_c` by Newton steps on
    :math:`f(x)=c` along the gradient. Returns one ``(k, 2)`` array per connected piece, ordered
    along the curve; pieces shorter than ``20 * spacing`` are dropped.
    """
    import contourpy

    X, Y, Z = objective.on_grid(xlim, ylim, num)
    pieces = []
    for piece in contourpy.contour_generator(X, Y, Z).lines(level):
        line = np.asarray(piece, dtype=float)
        arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))]
        if arc[-1] < 20 * spacing:
            continue
        s = np.arange(0.0, arc[-1], spacing)
        pts = np.stack([np.interp(s, arc, line[:, 0]), np.interp(s, arc, line[:, 1])], axis=1)
        for _ in range(newton_steps):
            g = objective.grad(pts)
            pts = pts - ((objective.value(pts) - level) / np.maximum((g * g).sum(1), 1e-300))[:, None] * g
        pieces.append(pts)
    return pieces


# ------------------------------------------------------------------------------------------------
# Objectives of the chapter "Mathematical foundations"
# ------------------------------------------------------------------------------------------------
class MonkeySaddle(Objective):
    r"""The monkey saddle :math:`f(x,y)=x^3-3xy^2`: one critical point, the origin, where the
    gradient *and* the Hessian vanish -- a degenerate saddle (three valleys, three ridges) that the
    second-order test cannot classify. It is harmonic: :math:`\Delta f=6x-6x=0`."""

    name = "monkey saddle"
    dim = 2

    def value(self, x):
        x = as_point(x)
        X, Y = x[..., 0], x[..., 1]
        return X**3 - 3 * X * Y**2

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        return np.stack([3 * X**2 - 3 * Y**2, -6 * X * Y], axis=-1)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        X, Y = x[..., 0], x[..., 1]
        H = np.empty(x.shape[:-1] + (2, 2))
        H[..., 0, 0] = 6 * X
        H[..., 1, 1] = -6 * X
        H[..., 0, 1] = H[..., 1, 0] = -6 * Y
        return H


class PLNonconvex(Objective):
    r"""A non-convex function that satisfies the Polyak--Łojasiewicz inequality:

    .. math:: f(x) = \sum_{i=1}^n \big(x_i^2 + a\sin^2 x_i\big), \qquad a = 3 \text{ by default}.

    Its only critical point is the global minimiser :math:`0` (:math:`f^\star=0`), yet
    :math:`f''=2+2a\cos 2x_i` is negative where :math:`\cos2x_i<-1/a`, so it is not convex for
    :math:`a>1`. It is :math:`L`-smooth with :math:`L=2+2a` and satisfies
    :math:`\tfrac12\lVert\nabla f(x)\rVert^2\ge\mu\,(f(x)-f^\star)` for all :math:`x`; for
    ``a=3`` the example of Karimi, Nutini and Schmidt (2016) quotes :math:`\mu=1/32`, and
    :attr:`pl_constant` computes the best constant numerically (it is about ``0.175``).
    """

    def __init__(self, dim: int = 1, a: float = 3.0):
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if a < 0:
            raise ValueError(f"a must be non-negative, got {a}")
        self.dim, self.a = int(dim), float(a)
        self.name = f"x² + {a:g} sin² x" if dim == 1 else f"Σ xᵢ² + {a:g} sin² xᵢ (n={dim})"

    @property
    def minimizer(self) -> np.ndarray:
        return np.zeros(self.dim)

    minimum = 0.0

    @property
    def L(self) -> float:
        """Smoothness constant ``2 + 2a`` (the largest value of ``f''``)."""
        return 2.0 + 2.0 * self.a

    @property
    def pl_constant(self) -> float:
        r"""The largest :math:`\mu` with :math:`\tfrac12 f'(t)^2\ge\mu f(t)` for the 1-D summand,
        found on a fine grid (the ratio tends to 2 as :math:`t\to0`, so the infimum is attained
        away from 0); it is also the PL constant of the separable sum."""
        t = np.linspace(1e-3, 20.0, 400_001)
        d = 2 * t + self.a * np.sin(2 * t)
        return float(np.min(0.5 * d * d / (t * t + self.a * np.sin(t) ** 2)))

    def value(self, x):
        x = as_point(x)
        s = x.sin() if hasattr(x, "detach") else np.sin(x)
        return (x**2 + self.a * s**2).sum(-1)

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return 2 * x + self.a * np.sin(2 * x)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        d = 2 + 2 * self.a * np.cos(2 * x)
        return d[..., :, None] * np.eye(self.dim)


__all__ += ["MonkeySaddle", "PLNonconvex"]


class PlateauValley(Objective):
    r"""A plateau that ends in a narrow valley (the landscape of the momentum chapter's plateau page):

    .. math:: f(x, y) = 1 - \varphi(x) + \tfrac12\big(\gamma\,\varphi(x) + \delta\big)\,y^2,
              \qquad \varphi(x) = e^{-x^2/(2w^2)} .

    For :math:`|x|\gg w` the function is an almost flat plateau (height 1, tiny gradient along
    :math:`x`, gentle curvature :math:`\delta` across it); near :math:`x=0` it drops into a valley
    of width about ``width`` whose walls have curvature :math:`\gamma+\delta` across it. The unique
    minimiser is the origin, with value 0 (``f ≥ 0`` everywhere).
    """

    dim = 2
    minimizer = np.array([0.0, 0.0])
    minimum = 0.0

    def __init__(self, gamma: float = 100.0, width: float = 0.6, delta: float = 1.0):
        if gamma < 0 or width <= 0 or delta <= 0:
            raise ValueError("need gamma >= 0, width > 0 and delta > 0")
        self.gamma, self.width, self.delta = float(gamma), float(width), float(delta)
        self.name = f"plateau and valley (γ={gamma:g})"

    def _phi(self, x):
        z = -(x**2) / (2 * self.width**2)
        return z.exp() if hasattr(z, "detach") else np.exp(z)

    def value(self, p):
        p = as_point(p)
        x, y = p[..., 0], p[..., 1]
        phi = self._phi(x)
        return 1 - phi + 0.5 * (self.gamma * phi + self.delta) * y**2

    def grad(self, p):
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        phi = self._phi(x)
        dphi = -x / self.width**2 * phi
        return np.stack([dphi * (0.5 * self.gamma * y**2 - 1), (self.gamma * phi + self.delta) * y], axis=-1)

    def hess(self, p):
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        phi = self._phi(x)
        w2 = self.width**2
        dphi = -x / w2 * phi
        d2phi = (x**2 / w2 - 1) / w2 * phi
        H = np.empty(p.shape[:-1] + (2, 2))
        H[..., 0, 0] = d2phi * (0.5 * self.gamma * y**2 - 1)
        H[..., 1, 1] = self.gamma * phi + self.delta
        H[..., 0, 1] = H[..., 1, 0] = self.gamma * dphi * y
        return H


__all__ += ["PlateauValley"]


class TwoBasin(Objective):
    r"""A 1-D landscape with a *sharp* and a *flat* minimum of nearly equal depth:

    .. math:: f(x) = -d_s\,e^{-(x-c_s)^2/(2w_s^2)} - d_f\,e^{-(x-c_f)^2/(2w_f^2)} + q\,x^4 .

    With the defaults the sharp minimum sits near :math:`x=-1` (curvature about 11), the flat
    one near :math:`x=1.43` (curvature about 1.9), separated by a barrier near :math:`x=-0.2`;
    the quartic term keeps walkers from escaping to infinity. The critical points are located
    numerically on construction: ``x_sharp``, ``x_saddle``, ``x_flat`` (floats), the barrier
    heights ``barrier_sharp = f(x_saddle) - f(x_sharp)`` and ``barrier_flat``, and the
    curvatures ``curv_sharp``, ``curv_saddle`` (negative), ``curv_flat``.
    """

    dim = 1

    def __init__(self, sharp=(-1.0, 0.3, 1.0), flat=(1.5, 0.8, 1.05), quartic: float = 0.01):
        (self.cs, self.ws, self.ds), (self.cf, self.wf, self.df) = map(
            lambda t: tuple(float(v) for v in t), (sharp, flat))
        if min(self.ws, self.wf, self.ds, self.df) <= 0 or quartic <= 0:
            raise ValueError("widths, depths and the quartic coefficient must be positive")
        if not self.cs < self.cf:
            raise ValueError("the sharp well's centre must lie left of the flat well's centre")
        self.q = float(quartic)
        self.name = "two-basin landscape"
        from scipy.optimize import brentq

        grid = np.linspace(self.cs - 4 * self.ws, self.cf + 4 * self.wf, 20001)
        g = self._d1(grid)
        roots = [brentq(self._d1, grid[i], grid[i + 1])
                 for i in np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]]
        if len(roots) != 3:
            raise ValueError(f"these parameters do not give two basins ({len(roots)} critical points)")
        self.x_sharp, self.x_saddle, self.x_flat = roots
        self.minimizers = np.array([[self.x_sharp], [self.x_flat]])
        self.curv_sharp, self.curv_saddle, self.curv_flat = (float(self._d2(r)) for r in roots)
        self.barrier_sharp = float(self._f(self.x_saddle) - self._f(self.x_sharp))
        self.barrier_flat = float(self._f(self.x_saddle) - self._f(self.x_flat))

    def _wells(self, x):
        us, uf = (x - self.cs) / self.ws, (x - self.cf) / self.wf
        return self.ds * np.exp(-0.5 * us * us), self.df * np.exp(-0.5 * uf * uf)

    def _f(self, x):
        es, ef = self._wells(x)
        x2 = x * x
        return -es - ef + self.q * x2 * x2

    def _d1(self, x):
        es, ef = self._wells(x)
        return es * (x - self.cs) / self.ws**2 + ef * (x - self.cf) / self.wf**2 + 4 * self.q * x * x * x

    def _d2(self, x):
        es, ef = self._wells(x)
        us, uf = (x - self.cs) / self.ws, (x - self.cf) / self.wf
        return es * (1 - us**2) / self.ws**2 + ef * (1 - uf**2) / self.wf**2 + 12 * self.q * x * x

    def value(self, x):
        x = np.asarray(x, dtype=float)
        return self._f(x[..., 0])

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return self._d1(x[..., 0])[..., None]

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        return self._d2(x[..., 0])[..., None, None]

    def in_flat_basin(self, x):
        """True where ``x`` lies right of the barrier (in the flat minimum's basin)."""
        return np.asarray(x, dtype=float)[..., 0] > self.x_saddle


class QuarticBowl(Objective):
    r""":math:`f(x)=\frac a4\lVert x\rVert^4+\frac12\sum_i\lambda_i x_i^2`: a convex bowl whose
    curvature is high far from the minimiser (the origin) and low near it.

    The Hessian is :math:`a(\lVert x\rVert^2I+2xx^\top)+\mathrm{diag}(\lambda)`, so the local
    smoothness :meth:`local_L` is :math:`3a\lVert x\rVert^2+\lambda_{\max}` along the top
    eigenvector and the step that is stable at the end of training (:math:`2/\lambda_{\max}`) can
    be far too large at a distant starting point -- the toy model for learning-rate warmup.
    """

    def __init__(self, eigenvalues=(1.0, 0.2), a: float = 1.0):
        self.lam = np.asarray(eigenvalues, dtype=float).reshape(-1)
        if np.any(self.lam <= 0) or a <= 0:
            raise ValueError("eigenvalues and a must be positive")
        self.a = float(a)
        self.dim = self.lam.size
        self.name = "quartic bowl"
        self.minimizer = np.zeros(self.dim)
        self.minimum = 0.0

    def value(self, x):
        x = as_point(x)
        r2 = (x * x).sum(-1)
        lam = self.lam if isinstance(x, np.ndarray) else _like(self.lam, x)
        return 0.25 * self.a * r2**2 + 0.5 * (lam * x * x).sum(-1)

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return self.a * (x * x).sum(-1, keepdims=True) * x + self.lam * x

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        r2 = (x * x).sum(-1)[..., None, None]
        return self.a * (r2 * np.eye(self.dim) + 2 * x[..., :, None] * x[..., None, :]) + np.diag(self.lam)

    def local_L(self, x):
        """Largest Hessian eigenvalue at ``x`` (the local smoothness constant)."""
        return np.linalg.eigvalsh(self.hess(x))[..., -1]


__all__ += ["TwoBasin", "QuarticBowl"]


class PowellSingular(Objective):
    r"""Powell's singular function (extended to ``n = 4k`` variables, blocks of four):

    .. math:: f=\sum_{\text{blocks}}(x_1+10x_2)^2+5(x_3-x_4)^2+(x_2-2x_3)^4+10(x_1-x_4)^4 .

    Minimum 0 at the origin, where the Hessian is **singular** (rank 2 per block): Newton's method
    converges only linearly there, a standard stress test for second-order methods. The usual
    start is :attr:`x0` ``= (3, -1, 0, 1, 3, -1, 0, 1, ...)``.
    """

    def __init__(self, n: int = 4):
        if n < 4 or n % 4:
            raise ValueError(f"PowellSingular needs n a positive multiple of 4, got {n}")
        self.dim = n
        self.name = "Powell singular" if n == 4 else f"Powell singular-{n}"
        self.minimizer = np.zeros(n)
        self.minimum = 0.0
        self.x0 = np.tile([3.0, -1.0, 0.0, 1.0], n // 4)

    def value(self, x):
        x = as_point(x)
        x1, x2, x3, x4 = x[..., 0::4], x[..., 1::4], x[..., 2::4], x[..., 3::4]
        return ((x1 + 10 * x2) ** 2 + 5 * (x3 - x4) ** 2 + (x2 - 2 * x3) ** 4
                + 10 * (x1 - x4) ** 4).sum(-1)

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        x1, x2, x3, x4 = x[..., 0::4], x[..., 1::4], x[..., 2::4], x[..., 3::4]
        p, q, a, b = x1 + 10 * x2, x3 - x4, x2 - 2 * x3, x1 - x4
        g = np.empty_like(x)
        g[..., 0::4] = 2 * p + 40 * b**3
        g[..., 1::4] = 20 * p + 4 * a**3
        g[..., 2::4] = 10 * q - 8 * a**3
        g[..., 3::4] = -10 * q - 40 * b**3
        return g

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        H = np.zeros(x.shape[:-1] + (self.dim, self.dim))
        for j in range(0, self.dim, 4):
            a2 = (x[..., j + 1] - 2 * x[..., j + 2]) ** 2
            b2 = (x[..., j] - x[..., j + 3]) ** 2
            block = [[2 + 120 * b2, 20 + 0 * a2, 0 * a2, -120 * b2],
                     [20 + 0 * a2, 200 + 12 * a2, -24 * a2, 0 * a2],
                     [0 * a2, -24 * a2, 10 + 48 * a2, -10 + 0 * a2],
                     [-120 * b2, 0 * a2, -10 + 0 * a2, 10 + 120 * b2]]
            for r in range(4):
                for c in range(4):
                    H[..., j + r, j + c] = block[r][c]
        return H


class Rastrigin(Objective):
    r"""The Rastrigin function :math:`f(x)=An+\sum_i\big(x_i^2-A\cos(2\pi x_i)\big)`: a bowl
    covered with a regular grid of local minima (near the integer points); global minimum 0 at the
    origin. Local methods stop in whichever basin they start in."""

    def __init__(self, n: int = 2, A: float = 10.0):
        if n < 1:
            raise ValueError(f"Rastrigin needs n >= 1, got {n}")
        self.dim, self.A = n, float(A)
        self.name = "Rastrigin" if n == 2 else f"Rastrigin-{n}"
        self.minimizer = np.zeros(n)
        self.minimum = 0.0

    def value(self, x):
        x = as_point(x)
        cos = np.cos(2 * np.pi * x) if isinstance(x, np.ndarray) else (2 * np.pi * x).cos()
        return self.A * self.dim + (x * x - self.A * cos).sum(-1)

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return 2 * x + 2 * np.pi * self.A * np.sin(2 * np.pi * x)

    def hess(self, x):
        x = np.asarray(x, dtype=float)
        diag = 2 + 4 * np.pi**2 * self.A * np.cos(2 * np.pi * x)
        return diag[..., :, None] * np.eye(self.dim)


__all__ += ["PowellSingular", "Rastrigin"]
