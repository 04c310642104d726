"""dlopt.quadratic_analysis: the 2x2 iteration matrices, rates and optimal parameters of the
momentum methods on quadratics; and the PlateauValley objective of the momentum chapter."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import functions as F
from dlopt import quadratic_analysis as qa
from dlopt import rules

rng = np.random.default_rng(0)


def linear_recursion(lam, lr, beta, method, steps=300):
    """Reference iteration of the error along one eigenvalue, written from the definitions."""
    e_prev = e = 1.0
    out = [e]
    for _ in range(steps):
        if method == "heavy_ball":
            e_next = e - lr * lam * e + beta * (e - e_prev)
        elif method == "nesterov":
            y = e + beta * (e - e_prev)
            e_next = y - lr * lam * y
        else:
            e_next = e - lr * lam * e
        e_prev, e = e, e_next
        out.append(e)
    return np.array(out)


@pytest.mark.parametrize("method", qa.METHODS)
def test_iteration_matrix_reproduces_the_recursion(method):
    for _ in range(20):
        lam, lr, beta = rng.uniform(0.1, 5), rng.uniform(0.01, 1), rng.uniform(0, 0.99)
        T = qa.iteration_matrix(lam, lr, beta, method)
        es = linear_recursion(lam, lr, beta, method, steps=10)
        state = np.array([es[0], es[0]])
        for k in range(10):
            state = T @ state
            assert state[0] == pytest.approx(es[k + 1], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method", qa.METHODS)
def test_spectral_radius_matches_numpy_eigenvalues(method):
    for _ in range(50):
        lam, lr, beta = rng.uniform(0.01, 5), rng.uniform(0.01, 2), rng.uniform(0, 0.999)
        T = qa.iteration_matrix(lam, lr, beta, method)
        assert qa.spectral_radius(lam, lr, beta, method) == pytest.approx(
            np.abs(np.linalg.eigvals(T)).max(), rel=1e-9)


@pytest.mark.parametrize("method", ["heavy_ball", "nesterov", "gd"])
def test_stability_region_agrees_with_spectral_radius(method):
    lam = rng.uniform(0.1, 3, 4000)
    lr = rng.uniform(0.0, 3, 4000)
    beta = rng.uniform(0.0, 0.999, 4000)
    rho = qa.spectral_radius(lam, lr, beta, method)
    away = np.abs(rho - 1) > 1e-6
    np.testing.assert_array_equal(qa.stable(lam, lr, beta, method)[away], (rho < 1)[away])


def test_rate_and_rate_map_shapes():
    lam = [0.1, 1.0]
    lrs, betas = np.linspace(0.1, 3, 7), np.linspace(0, 0.9, 5)
    M = qa.rate_map(lam, lrs, betas)
    assert M.shape == (5, 7)
    assert M[2, 3] == pytest.approx(qa.rate(lam, lrs[3], betas[2]))
    assert M[0, 3] == pytest.approx(qa.rate(lam, lrs[3], 0.0, "gd"))


def test_heavy_ball_optimum_is_polyak_and_beats_every_grid_point():
    for mu, L in [(0.01, 1.0), (1.0, 50.0), (0.3, 0.9)]:
        lr, beta, q = qa.heavy_ball_optimal(mu, L)
        kappa = L / mu
        assert q == pytest.approx((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1))
        spectrum = np.linspace(mu, L, 501)
        assert qa.rate(spectrum, lr, beta) == pytest.approx(q, rel=1e-6)
        M = qa.rate_map(spectrum[[0, -1]], np.linspace(0.2, 2.5, 200) * lr, np.linspace(0, 0.999, 200))
        assert M.min() >= q - 1e-9
        # the accelerated rate beats the best gradient-descent rate (kappa-1)/(kappa+1) when kappa > 1
        assert q < (kappa - 1) / (kappa + 1)


def test_nesterov_parameter_choices():
    for mu, L in [(0.01, 1.0), (0.5, 40.0)]:
        spectrum = np.linspace(mu, L, 2001)
        lr, beta, q = qa.nesterov_standard(mu, L)
        assert qa.rate(spectrum, lr, beta, "nesterov") <= q + 1e-9
        lr, beta, q = qa.nesterov_optimal(mu, L)
        assert qa.rate(spectrum, lr, beta, "nesterov") == pytest.approx(q, rel=1e-6)
        # the map over a coarser spectrum (endpoints included): its rates are lower bounds of the
        # full spectrum's, so none below q still shows that no (lr, beta) beats the optimum
        M = qa.rate_map(spectrum[::20], np.linspace(0.5, 1.5, 60) * lr, np.linspace(0, 0.999, 60), "nesterov")
        assert M.min() >= q - 1e-6
    with pytest.raises(ValueError):
        qa.heavy_ball_optimal(0.0, 1.0)


@pytest.mark.parametrize("method", ["heavy_ball", "nesterov"])
def test_measured_rate_recovers_the_spectral_radius(method):
    lam = np.array([0.02, 1.0])
    for lr, beta in [(1.0, 0.8), (1.5, 0.5), (0.5, 0.9)]:
        xs = np.stack([linear_recursion(l, lr, beta, method, steps=400) for l in lam], axis=1)
        assert qa.measured_rate(xs) == pytest.approx(qa.rate(lam, lr, beta, method), abs=5e-3)
    with pytest.raises(ValueError):
        qa.measured_rate(np.zeros((10, 2)))


def test_unknown_method():
    with pytest.raises(ValueError):
        qa.spectral_radius(1.0, 0.1, 0.5, "adam")


@pytest.mark.skipif(not hasattr(rules, "heavy_ball"), reason="dlopt.rules.heavy_ball not there yet")
@pytest.mark.parametrize("method", ["heavy_ball", "nesterov"])
def test_rules_follow_the_analysed_recursions(method):
    """dlopt's rules produce exactly the recursions this module analyses (on a rotated quadratic)."""
    f = F.Quadratic.from_eigenvalues([0.05, 0.4, 1.0], seed=3)
    Q = np.linalg.eigh(f.A)[1]
    lr, beta = 0.7, 0.85
    t = dlopt.run(getattr(rules, method), f, Q @ np.ones(3), steps=60, lr=lr, beta=beta)
    coords = t.xs @ Q  # error coordinates in the eigenbasis (x* = 0)
    for i, lam in enumerate(np.linalg.eigvalsh(f.A)):
        e = linear_recursion(lam, lr, beta, method, 60)
        if method == "nesterov":  # the rule holds the look-ahead point y_k = x_k + beta (x_k - x_{k-1})
            e = np.r_[e[0], (1 + beta) * e[1:] - beta * e[:-1]]
        np.testing.assert_allclose(coords[:, i], e, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# PlateauValley
# ------------------------------------------------------------------------------------------------
def test_plateau_valley_derivatives_and_minimum():
    f = F.PlateauValley(gamma=40.0, width=0.7, delta=0.5)
    h = 1e-6
    for _ in range(10):
        x = rng.uniform(-2, 2, 2) * [1, 0.3]
        fd = np.array([(f.value(x + h * e) - f.value(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(f.grad(x), fd, rtol=1e-6, atol=1e-7)
        fdh = np.array([(f.grad(x + h * e) - f.grad(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(f.hess(x), fdh, rtol=1e-5, atol=1e-6)
    X = rng.uniform(-3, 3, (50, 2))
    assert np.all(f.value(X) >= 0) and f.value(f.minimizer) == 0
    np.testing.assert_allclose(f.grad(f.minimizer), 0)
    np.testing.assert_allclose(f.hess(f.minimizer), np.diag([1 / 0.49, 40.5]))
    assert f.value(X[:3][None]).shape == (1, 3)
    with pytest.raises(ValueError):
        F.PlateauValley(width=0)


def test_plateau_valley_accepts_torch():
    import torch

    f = F.PlateauValley()
    x = torch.tensor([-1.0, 0.1], dtype=torch.float64)
    assert float(f.value(x)) == pytest.approx(float(f.value(x.numpy())))
