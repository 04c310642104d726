r"""Applications and connections: compression, multi-task learning, chemistry, evolution.

The chapter "Applications and connections" uses the optimizers of the book outside the training
loop. The tools it needs are here:

- model compression: :func:`magnitude_prune` (keep the largest entries) and
  :func:`low_rank_approximation` (truncated SVD, the best rank-:math:`k` approximation);
- multi-task learning: :func:`pareto_mask`, the non-dominated points of a set of loss vectors;
- computational chemistry: :class:`LennardJones`, the energy of a cluster of atoms as an
  :class:`~dlopt.functions.Objective` (value, gradient, Hessian), :data:`LJ_GLOBAL_MINIMA` and
  :func:`random_cluster` for starting geometries;
- evolutionary biology: :func:`replicator`, the vector field of the replicator equation, and
  :func:`smoothed_gradient`, the Gaussian-smoothing (evolution-strategies) gradient estimator.

>>> f = LennardJones(2)
>>> round(float(f.value([0, 0, 0, 2 ** (1 / 6), 0, 0])), 12)    # the pair at its optimal distance
-1.0
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dlopt.problems.functions import Objective

__all__ = [
    "magnitude_prune",
    "low_rank_approximation",
    "pareto_mask",
    "LennardJones",
    "LJ_GLOBAL_MINIMA",
    "random_cluster",
    "replicator",
    "smoothed_gradient",
]


# ------------------------------------------------------------------------------------------------
# Model compression
# ------------------------------------------------------------------------------------------------
def magnitude_prune(w, keep: float):
    r"""Keep the fraction ``keep`` of the entries of ``w`` with the largest magnitude, zero the rest.

    Returns ``(pruned, mask)``: a pruned copy of ``w`` and the boolean mask of the kept entries
    (``round(keep * w.size)`` of them; ties are broken by position). ``w`` may be any array, for
    instance all the weights of a network concatenated, which prunes them *globally*.
    """
    w = np.asarray(w, dtype=float)
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be a fraction in [0, 1], got {keep}")
    k = int(round(keep * w.size))
    mask = np.zeros(w.size, dtype=bool)
    if k > 0:
        mask[np.argsort(-np.abs(w).ravel(), kind="stable")[:k]] = True
    mask = mask.reshape(w.shape)
    return np.where(mask, w, 0.0), mask


def low_rank_approximation(W, rank: int):
    r"""The truncated SVD :math:`W_k=\sum_{i\le k}\sigma_iu_iv_i^\top` of a matrix ``W``.

    By the Eckart--Young theorem it is a best approximation of rank at most :math:`k` in the
    spectral and in the Frobenius norm, with errors :math:`\sigma_{k+1}` and
    :math:`(\sum_{i>k}\sigma_i^2)^{1/2}`. Returns ``(W_k, s)`` with ``s`` the singular values of
    ``W`` in decreasing order. Storing :math:`W_k` as two factors takes :math:`k(m+n)` numbers
    instead of :math:`mn`.
    """
    W = np.asarray(W, dtype=float)
    if W.ndim != 2:
        raise ValueError(f"W must be a matrix, got shape {W.shape}")
    if not 0 <= rank <= min(W.shape) or int(rank) != rank:
        raise ValueError(f"rank must be an integer in [0, {min(W.shape)}], got {rank}")
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    k = int(rank)
    return (U[:, :k] * s[:k]) @ Vt[:k], s


# ------------------------------------------------------------------------------------------------
# Multi-task learning
# ------------------------------------------------------------------------------------------------
def pareto_mask(losses) -> np.ndarray:
    r"""Which rows of ``losses`` (shape ``(p, m)``: ``p`` points, ``m`` objectives to minimise) are
    *non-dominated*: no other row is at least as small in every objective and smaller in one.

    Sorting by the first objective makes one pass suffice for ``m = 2``; for ``m > 2`` the rows are
    compared pairwise (:math:`O(p^2m)`).
    """
    L = np.asarray(losses, dtype=float)
    if L.ndim != 2:
        raise ValueError(f"losses must have shape (points, objectives), got {L.shape}")
    p, m = L.shape
    keep = np.zeros(p, dtype=bool)
    if p == 0:
        return keep
    if m == 2:
        order = np.lexsort((L[:, 1], L[:, 0]))  # by L1, ties by L2: copies are adjacent
        best, last = np.inf, None
        for i in order:
            if L[i, 1] < best or (last is not None and np.array_equal(L[i], last)):
                keep[i] = True
                best, last = L[i, 1], L[i]
        return keep
    for i in range(p):
        dominated = (L <= L[i]).all(1) & (L < L[i]).any(1)
        keep[i] = not dominated.any()
    return keep


# ------------------------------------------------------------------------------------------------
# Computational chemistry: Lennard-Jones clusters
# ------------------------------------------------------------------------------------------------
#: Putative global minima of Lennard-Jones clusters (reduced units, epsilon = sigma = 1), from the
#: Cambridge Cluster Database (Wales and Doye, 1997).
LJ_GLOBAL_MINIMA = {
    2: -1.0,
    3: -3.0,
    4: -6.0,
    5: -9.103852,
    6: -12.712062,
    7: -16.505384,
    8: -19.821489,
    9: -24.113360,
    10: -28.422532,
    11: -32.765970,
    12: -37.967600,
    13: -44.326801,
}


class LennardJones(Objective):
    r"""The potential energy of a cluster of ``n_atoms`` atoms interacting pairwise,

    .. math:: E(x) = 4\varepsilon\sum_{i<j}\Big[\Big(\frac{\sigma}{r_{ij}}\Big)^{12}
              -\Big(\frac{\sigma}{r_{ij}}\Big)^{6}\Big],\qquad r_{ij}=\lVert x_i-x_j\rVert,

    as a function of the flat vector ``x`` of the :math:`3N` coordinates
    (``x.reshape(N, 3)[i]`` is atom ``i``). A pair has its minimum :math:`-\varepsilon` at
    :math:`r=2^{1/6}\sigma`. Value, gradient and Hessian take points of shape ``(..., 3N)``.
    The energy is invariant under translations, rotations and permutations of the atoms, so every
    minimum has at least six zero Hessian eigenvalues (five for a linear cluster) and up to :math:`N!`
    relabelled copies.
    """

    def __init__(self, n_atoms: int, epsilon: float = 1.0, sigma: float = 1.0):
        if int(n_atoms) != n_atoms or n_atoms < 2:
            raise ValueError(f"a cluster needs n_atoms >= 2 atoms, got {n_atoms}")
        if not (epsilon > 0 and sigma > 0):
            raise ValueError(f"epsilon and sigma must be positive, got {epsilon}, {sigma}")
        self.n_atoms, self.epsilon, self.sigma = int(n_atoms), float(epsilon), float(sigma)
        self.dim = 3 * self.n_atoms
        self.name = f"LJ{self.n_atoms}"

    @property
    def global_minimum(self) -> float:
        """The putative global minimum energy from :data:`LJ_GLOBAL_MINIMA`, scaled by epsilon."""
        if self.n_atoms not in LJ_GLOBAL_MINIMA:
            raise KeyError(f"no tabulated global minimum for {self.n_atoms} atoms")
        return self.epsilon * LJ_GLOBAL_MINIMA[self.n_atoms]

    def _pairs(self, x):
        """Differences ``d[..., i, j] = x_i - x_j``, squared distances (``inf`` on the diagonal)
        and ``q = (sigma^2 / r^2)^3``."""
        x = np.asarray(x, dtype=float)
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected points with {self.dim} coordinates, got shape {x.shape}")
        P = x.reshape(x.shape[:-1] + (self.n_atoms, 3))
        d = P[..., :, None, :] - P[..., None, :, :]
        r2 = (d * d).sum(-1)
        i = np.arange(self.n_atoms)
        r2[..., i, i] = np.inf
        q = (self.sigma**2 / r2) ** 3
        return d, r2, q

    def value(self, x):
        _, _, q = self._pairs(x)
        return 2 * self.epsilon * (q * q - q).sum((-1, -2))  # each pair counted twice

    def grad(self, x):
        d, r2, q = self._pairs(x)
        c = 24 * self.epsilon * (q - 2 * q * q) / r2  # dE/dx_i = sum_j c_ij (x_i - x_j)
        g = (c[..., None] * d).sum(-2)
        return g.reshape(g.shape[:-2] + (self.dim,))

    def hess(self, x):
        d, r2, q = self._pairs(x)
        eps, N = self.epsilon, self.n_atoms
        # pair energy phi(s) of s = r^2: phi' and phi'' (q = sigma^6 / s^3)
        dphi = 4 * eps * (3 * q - 6 * q * q) / r2
        d2phi = 4 * eps * (42 * q * q - 12 * q) / r2**2
        B = 2 * dphi[..., None, None] * np.eye(3) + 4 * d2phi[..., None, None] * (
            d[..., :, None] * d[..., None, :])  # d^2 E / dx_i^2 contribution of pair (i, j)
        H = -B
        i = np.arange(N)
        H[..., i, i, :, :] = B.sum(-3)
        H = np.swapaxes(H, -3, -2)  # (..., i, a, j, b)
        return H.reshape(H.shape[:-4] + (self.dim, self.dim))


def random_cluster(n_atoms: int, rng: np.random.Generator, density: float = 0.5,
                   min_distance: float = 0.8, max_tries: int = 10_000) -> np.ndarray:
    r"""A random starting geometry: ``n_atoms`` points uniform in a ball holding ``density`` atoms
    per unit volume, no two closer than ``min_distance`` (the :math:`r^{-12}` wall would otherwise
    give astronomically large energies). Returns the flat vector of :math:`3N` coordinates.
    """
    if not (density > 0 and min_distance >= 0):
        raise ValueError("density must be positive and min_distance non-negative")
    radius = (3 * n_atoms / (4 * np.pi * density)) ** (1 / 3)
    points: list[np.ndarray] = []
    for _ in range(max_tries):
        p = rng.standard_normal(3)
        p *= radius * rng.uniform() ** (1 / 3) / np.linalg.norm(p)
        if all(np.linalg.norm(p - q) >= min_distance for q in points):
            points.append(p)
            if len(points) == n_atoms:
                return np.concatenate(points)
    raise RuntimeError(f"could not place {n_atoms} atoms; lower density or min_distance")


# ------------------------------------------------------------------------------------------------
# Evolutionary biology and evolution strategies
# ------------------------------------------------------------------------------------------------
def replicator(x, fitness):
    r"""The replicator vector field :math:`\dot x_i=x_i\,(f_i-\bar f)` with :math:`\bar f=\sum_jx_jf_j`.

    ``x`` is a point of the probability simplex (shape ``(..., n)``) and ``fitness`` the fitnesses
    :math:`f_i` of the ``n`` types at ``x`` (for a payoff matrix :math:`A`, ``A @ x``). The field
    sums to zero, so the simplex is invariant.
    """
    x = np.asarray(x, dtype=float)
    f = np.asarray(fitness, dtype=float)
    return x * (f - (x * f).sum(-1, keepdims=True))


def smoothed_gradient(f: Callable, x, sigma: float, samples: int, rng: np.random.Generator,
                      antithetic: bool = True, return_samples: bool = False, vectorized: bool = True):
    r"""The evolution-strategies estimate of :math:`\nabla f_\sigma(x)`, where
    :math:`f_\sigma(x)=\mathbb E\,f(x+\sigma u)`, :math:`u\sim N(0,I)`:

    .. math:: \hat g=\frac1{\sigma S}\sum_{s=1}^{S}f(x+\sigma u_s)\,u_s
              \quad\text{or, antithetic,}\quad
              \hat g=\frac1{2\sigma S}\sum_{s=1}^{S}\big(f(x+\sigma u_s)-f(x-\sigma u_s)\big)\,u_s .

    Both are unbiased for :math:`\nabla f_\sigma(x)` (Stein's lemma); the antithetic one uses
    :math:`2S` function values and no gradient. With ``vectorized=True`` (the default) ``f`` is
    called once on the stack of perturbed points, shape ``(S, n)``, and must return ``S`` values
    (every :class:`~dlopt.functions.Objective` does); anything else raises ``ValueError`` rather
    than being guessed at. With ``vectorized=False`` ``f`` is called point by point. With
    ``return_samples=True`` the ``S`` one-sample estimates are returned as well, for a standard
    error.
    """
    x = np.asarray(x, dtype=float)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples}")
    U = rng.standard_normal((int(samples), x.size))

    def values(points):
        if not vectorized:
            return np.array([float(f(p)) for p in points])
        v = np.asarray(f(points), dtype=float)
        if v.shape != (points.shape[0],):
            raise ValueError(f"f returned shape {v.shape} for a stack of {points.shape[0]} points; "
                             "pass vectorized=False for a function of one point")
        return v

    if antithetic:
        w = (values(x + sigma * U) - values(x - sigma * U)) / (2 * sigma)
    else:
        w = values(x + sigma * U) / sigma
    per_sample = w[:, None] * U
    g = per_sample.mean(0)
    return (g, per_sample) if return_samples else g
