"""dlopt.applications: compression, Pareto fronts, Lennard-Jones clusters, replicator dynamics, ES."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import calculus, functions
from dlopt.applications import (LJ_GLOBAL_MINIMA, LennardJones, low_rank_approximation,
                                magnitude_prune, pareto_mask, random_cluster, replicator,
                                smoothed_gradient)


# ------------------------------------------------------------------------------------------------
# compression
# ------------------------------------------------------------------------------------------------
def test_magnitude_prune_keeps_the_largest_entries():
    w = np.array([[0.1, -3.0], [2.0, -0.5]])
    pruned, mask = magnitude_prune(w, 0.5)
    np.testing.assert_array_equal(mask, [[False, True], [True, False]])
    np.testing.assert_array_equal(pruned, [[0.0, -3.0], [2.0, 0.0]])
    assert magnitude_prune(w, 0.0)[1].sum() == 0 and magnitude_prune(w, 1.0)[1].all()
    with pytest.raises(ValueError):
        magnitude_prune(w, 1.5)


def test_magnitude_prune_is_the_best_sparse_approximation():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(50)
    pruned, mask = magnitude_prune(w, 0.2)
    assert mask.sum() == 10
    for _ in range(200):  # any other support of the same size loses more
        other = np.zeros(50, dtype=bool)
        other[rng.choice(50, 10, replace=False)] = True
        assert np.linalg.norm(w - pruned) <= np.linalg.norm(w - np.where(other, w, 0.0)) + 1e-12


def test_low_rank_approximation_eckart_young():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((8, 5))
    for k in range(6):
        Wk, s = low_rank_approximation(W, k)
        assert np.linalg.matrix_rank(Wk) == k
        np.testing.assert_allclose(np.linalg.norm(W - Wk, "fro"), np.sqrt((s[k:] ** 2).sum()), atol=1e-12)
        if k < 5:
            np.testing.assert_allclose(np.linalg.norm(W - Wk, 2), s[k], atol=1e-12)
        for _ in range(20):  # random rank-k matrices are never better
            B = rng.standard_normal((8, k)) @ rng.standard_normal((k, 5))
            assert np.linalg.norm(W - B, "fro") >= np.linalg.norm(W - Wk, "fro") - 1e-12
    np.testing.assert_allclose(low_rank_approximation(W, 5)[0], W, atol=1e-12)
    with pytest.raises(ValueError):
        low_rank_approximation(W, 6)


# ------------------------------------------------------------------------------------------------
# Pareto fronts
# ------------------------------------------------------------------------------------------------
def _pareto_brute(L):
    return np.array([not (((L <= l).all(1)) & ((L < l).any(1))).any() for l in L])


@pytest.mark.parametrize("m", [2, 3])
def test_pareto_mask_matches_brute_force(m):
    rng = np.random.default_rng(m)
    L = rng.integers(0, 6, (200, m)).astype(float)  # many ties and duplicates
    np.testing.assert_array_equal(pareto_mask(L), _pareto_brute(L))
    np.testing.assert_array_equal(pareto_mask(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])),
                                  [True, True, False])


# ------------------------------------------------------------------------------------------------
# Lennard-Jones clusters
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_atoms", [2, 3, 5, 7])
def test_lennard_jones_derivatives_match_finite_differences(n_atoms):
    rng = np.random.default_rng(n_atoms)
    f = LennardJones(n_atoms, epsilon=1.3, sigma=0.9)
    for _ in range(3):
        x = random_cluster(n_atoms, rng)
        g = f.grad(x)
        np.testing.assert_allclose(g, calculus.gradient(f, x, h=1e-6), rtol=1e-6,
                                   atol=1e-6 * (1 + np.abs(g).max()))
        H = f.hess(x)
        np.testing.assert_allclose(H, H.T, atol=1e-10)
        np.testing.assert_allclose(H, calculus.hessian(f, x, h=1e-6, grad=f.grad), rtol=1e-5,
                                   atol=1e-5 * (1 + np.abs(H).max()))


def test_lennard_jones_value_and_batches():
    f = LennardJones(3)
    r = 2 ** (1 / 6)
    triangle = np.array([0, 0, 0, r, 0, 0, r / 2, r * np.sqrt(3) / 2, 0])
    assert np.isclose(f.value(triangle), -3.0)
    assert np.allclose(f.grad(triangle), 0.0, atol=1e-12)
    rng = np.random.default_rng(0)
    X = np.stack([random_cluster(3, rng) for _ in range(4)]).reshape(2, 2, 9)
    np.testing.assert_allclose(f.value(X), [[f.value(p) for p in row] for row in X])
    np.testing.assert_allclose(f.grad(X), [[f.grad(p) for p in row] for row in X])
    np.testing.assert_allclose(f.hess(X), [[f.hess(p) for p in row] for row in X])
    with pytest.raises(ValueError):
        f.value(np.zeros(8))
    with pytest.raises(ValueError):
        LennardJones(1)


def test_lennard_jones_is_invariant_under_rigid_motions():
    rng = np.random.default_rng(3)
    f = LennardJones(6)
    x = random_cluster(6, rng)
    Q = functions.random_rotation(3, rng)
    moved = (x.reshape(6, 3) @ Q.T + rng.standard_normal(3))[rng.permutation(6)].ravel()
    assert np.isclose(f.value(moved), f.value(x))


@pytest.mark.parametrize("n_atoms", [4, 5, 6, 7])
def test_lbfgs_from_random_starts_finds_the_tabulated_global_minimum(n_atoms):
    rng = np.random.default_rng(n_atoms)
    f = LennardJones(n_atoms)
    energies = [dlopt.minimize(f, random_cluster(n_atoms, rng), method="l-bfgs",
                               options={"gtol": 1e-7}).fun for _ in range(30)]
    assert min(energies) == pytest.approx(LJ_GLOBAL_MINIMA[n_atoms], abs=1e-6)
    assert min(energies) >= LJ_GLOBAL_MINIMA[n_atoms] - 1e-6  # nothing lower than the table
    assert f.global_minimum == LJ_GLOBAL_MINIMA[n_atoms]


def test_random_cluster_respects_the_minimum_distance():
    x = random_cluster(13, np.random.default_rng(0), min_distance=0.9).reshape(13, 3)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.eye(13) * 10
    assert d.min() >= 0.9


# ------------------------------------------------------------------------------------------------
# replicator dynamics and evolution strategies
# ------------------------------------------------------------------------------------------------
def test_replicator_field_is_tangent_to_the_simplex():
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(4), size=5)
    A = rng.standard_normal((4, 4))
    v = replicator(x, x @ A.T)
    np.testing.assert_allclose(v.sum(-1), 0.0, atol=1e-14)
    f = rng.standard_normal(4)
    np.testing.assert_allclose(replicator(x[0], f), x[0] * (f - x[0] @ f))
    e = np.eye(4)[2]  # a vertex is a rest point
    np.testing.assert_allclose(replicator(e, f), 0.0)


def test_smoothed_gradient_is_unbiased_on_a_quadratic():
    f = functions.Quadratic.from_condition_number(10.0, n=5, seed=0, b=np.arange(5.0))
    x = np.ones(5)
    rng = np.random.default_rng(0)
    for antithetic in (True, False):
        g, per = smoothed_gradient(f, x, 0.5, 20_000, rng, antithetic=antithetic, return_samples=True)
        se = per.std(0, ddof=1) / np.sqrt(per.shape[0])
        assert np.all(np.abs(g - f.grad(x)) < 5 * se)
    # a function of one point is evaluated point by point when told so ...
    g = smoothed_gradient(lambda p: float(f.value(p)), x, 0.5, 10, np.random.default_rng(1),
                          vectorized=False)
    h = smoothed_gradient(f, x, 0.5, 10, np.random.default_rng(1))
    np.testing.assert_allclose(g, h)
    with pytest.raises(ValueError):
        smoothed_gradient(f, x, 0.0, 10, rng)
    # ... and not guessed at: a function of one point given the stack is an error, not a fallback
    # (a fallback cannot be safe: with as many samples as dimensions, p[0] ** 2 + p[1] applied to
    # the stack returns a wrong vector of the right length)
    with pytest.raises(ValueError, match="vectorized=False"):
        smoothed_gradient(lambda p: float(np.sum(p)), x, 0.5, 4, rng)
