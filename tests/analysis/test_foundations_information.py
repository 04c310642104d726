"""dlopt.information: entropy, cross-entropy, KL divergence, softmax."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import information as I

rng = np.random.default_rng(2)


def test_known_values():
    assert I.entropy([0.5, 0.5], base=2) == pytest.approx(1.0)
    assert I.entropy([1.0, 0.0, 0.0]) == 0.0
    assert I.entropy(np.full(8, 1 / 8), base=2) == pytest.approx(3.0)
    assert I.kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert I.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    assert I.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert I.cross_entropy([1.0, 0.0], [0.0, 1.0]) == np.inf


def test_identities_on_random_distributions():
    P = rng.dirichlet(np.ones(6), size=200)
    Q = rng.dirichlet(np.ones(6), size=200)
    H, CE, KL = I.entropy(P), I.cross_entropy(P, Q), I.kl_divergence(P, Q)
    assert H.shape == (200,)
    np.testing.assert_allclose(CE, H + KL, rtol=1e-12)
    assert np.all(KL > 0) and np.all(H <= np.log(6) + 1e-12)
    np.testing.assert_allclose(I.kl_divergence(P, P), 0.0, atol=1e-15)


def test_validation():
    with pytest.raises(ValueError):
        I.entropy([0.5, 0.6])
    with pytest.raises(ValueError):
        I.kl_divergence([1.0, 0.0], [-0.5, 1.5])


def test_softmax_is_stable_and_normalised():
    z = np.array([1000.0, 1001.0, 999.0])
    p = I.softmax(z)
    assert np.isclose(p.sum(), 1.0) and np.all(np.isfinite(p))
    np.testing.assert_allclose(I.log_softmax(z), np.log(p))
    np.testing.assert_allclose(I.softmax(z - 1000), p)


def test_smooth_labels():
    T = I.smooth_labels(np.array([0, 2, 1]), 4, 0.2)
    assert T.shape == (3, 4)
    np.testing.assert_allclose(T.sum(-1), 1.0)
    np.testing.assert_allclose(T[1], [0.05, 0.05, 0.85, 0.05])
    np.testing.assert_array_equal(I.smooth_labels([1], 3, 0.0), [[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(I.smooth_labels([1], 3, 1.0), [[1 / 3] * 3])
    with pytest.raises(ValueError):
        I.smooth_labels([0.5], 3, 0.1)
    with pytest.raises(ValueError):
        I.smooth_labels([3], 3, 0.1)
    with pytest.raises(ValueError):
        I.smooth_labels([0], 3, 1.5)


def test_cross_entropy_with_logits_matches_definitions():
    from dlopt import nn

    Z = rng.standard_normal((20, 5)) * 3
    y = rng.integers(0, 5, 20)
    # one-hot targets: the classification loss of dlopt.nn and its gradient
    onehot = I.smooth_labels(y, 5, 0.0)
    assert I.cross_entropy_with_logits(Z, onehot) == pytest.approx(nn.cross_entropy(Z, y), rel=1e-12)
    np.testing.assert_allclose(I.cross_entropy_with_logits_grad(Z, onehot), nn.cross_entropy_grad(Z, y))
    # soft targets: the mean of H(t_i, softmax(z_i)), and the label-smoothing decomposition
    a = 0.3
    T = I.smooth_labels(y, 5, a)
    P = I.softmax(Z)
    assert I.cross_entropy_with_logits(Z, T) == pytest.approx(np.mean(I.cross_entropy(T, P)), rel=1e-12)
    u = np.full(5, 0.2)
    decomposed = (1 - a) * nn.cross_entropy(Z, y) + a * np.mean(I.kl_divergence(u, P)) + a * np.log(5)
    assert I.cross_entropy_with_logits(Z, T) == pytest.approx(decomposed, rel=1e-12)


def test_cross_entropy_with_logits_grad_is_the_gradient():
    Z = rng.standard_normal((4, 3))
    T = rng.dirichlet(np.ones(3), size=4)
    G = I.cross_entropy_with_logits_grad(Z, T)
    np.testing.assert_allclose(G.sum(-1), 0.0, atol=1e-15)
    h = 1e-6
    for i in range(4):
        for k in range(3):
            E = np.zeros_like(Z)
            E[i, k] = h
            fd = (I.cross_entropy_with_logits(Z + E, T) - I.cross_entropy_with_logits(Z - E, T)) / (2 * h)
            assert fd == pytest.approx(G[i, k], abs=1e-8)


def test_cross_entropy_with_logits_is_stable_and_validated():
    Z = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    T = np.array([[0.9, 0.1], [0.5, 0.5]])
    assert I.cross_entropy_with_logits(Z, T) == pytest.approx((0.1 * 1000 + 0.5 * 1000) / 2)
    assert I.cross_entropy_with_logits([2.0, 1.0], [1.0, 0.0]) == pytest.approx(np.log(1 + np.exp(-1.0)))
    with pytest.raises(ValueError):
        I.cross_entropy_with_logits(Z, T[:1])
    with pytest.raises(ValueError):
        I.cross_entropy_with_logits(Z, np.array([[0.9, 0.2], [0.5, 0.5]]))


def test_mutual_information_identities_and_estimate():
    information = I
    rng = np.random.default_rng(3)
    for _ in range(50):
        joint = rng.dirichlet(np.ones(12)).reshape(3, 4)
        px, py = joint.sum(1), joint.sum(0)
        mi = information.mutual_information(joint)
        assert mi == pytest.approx(information.entropy(px) + information.entropy(py)
                                   - information.entropy(joint.ravel()), rel=1e-12, abs=1e-14)
        assert information.mutual_information(np.outer(px, py)) == pytest.approx(0.0, abs=1e-14)
    assert information.mutual_information(np.diag([0.5, 0.5]), base=2) == pytest.approx(1.0, rel=1e-14)
    # plug-in estimate on samples: Y a noisy copy of X (flip probability 0.1)
    x = rng.integers(0, 2, 200_000)
    y = np.where(rng.random(x.size) < 0.1, 1 - x, x)
    exact = np.log(2) - information.entropy([0.1, 0.9])
    assert information.empirical_mutual_information(x, y) == pytest.approx(exact, abs=3e-3)
    assert information.empirical_mutual_information(["a", "b", "a"], [1, 2, 1]) == pytest.approx(
        information.entropy([2 / 3, 1 / 3]), rel=1e-12)
    with pytest.raises(ValueError, match="same length"):
        information.empirical_mutual_information([1, 2], [1])
    with pytest.raises(ValueError, match="2-D"):
        information.mutual_information([0.5, 0.5])
