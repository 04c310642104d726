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
