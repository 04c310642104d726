"""dlopt.stochastic and the objectives of the chapter *Stochastic gradient methods*."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import calculus, functions, rules, stochastic


@pytest.mark.parametrize("f", [functions.TwoBasin(), functions.QuarticBowl(),
                               functions.QuarticBowl([2.0, 0.5, 0.1], a=0.3)])
def test_derivatives_match_finite_differences(f):
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.uniform(-2, 2, f.dim)
        assert np.allclose(f.grad(x), calculus.gradient(f, x, h=1e-6), atol=1e-6)
        assert np.allclose(f.hess(x), calculus.hessian(f, x, h=1e-5, grad=f.grad), atol=1e-5)
    X = rng.uniform(-2, 2, (7, f.dim))
    assert f.value(X).shape == (7,) and f.grad(X).shape == (7, f.dim) and f.hess(X).shape == (7, f.dim, f.dim)


def test_two_basin_critical_points():
    f = functions.TwoBasin()
    for x in (f.x_sharp, f.x_saddle, f.x_flat):
        assert abs(f.grad(np.array([x]))[0]) < 1e-9
    assert f.x_sharp < f.x_saddle < f.x_flat
    assert f.curv_sharp > 5 * f.curv_flat > 0 > f.curv_saddle
    assert abs(f.barrier_sharp - f.barrier_flat) < 0.05  # nearly equal depths by design
    assert np.isclose(f.barrier_sharp, f.value([f.x_saddle]) - f.value([f.x_sharp]))
    assert f.in_flat_basin(np.array([[f.x_flat], [f.x_sharp]])).tolist() == [True, False]
    with pytest.raises(ValueError):
        functions.TwoBasin(sharp=(-1.0, 0.3, 0.01), flat=(0.2, 3.0, 1.0))  # no second basin


def test_quartic_bowl_local_L():
    f = functions.QuarticBowl([1.0, 0.2], a=1.0)
    assert np.isclose(f.local_L(np.zeros(2)), 1.0)
    assert np.isclose(f.local_L(np.array([3.0, 0.0])), 3 * 9 + 1.0)  # 3a|x|^2 + lambda_1 along e_1
    assert np.isclose(f.value(np.array([1.0, 1.0])), 0.25 * 4 + 0.5 * 1.2)


def test_noisy_oracle_mean_and_variance():
    f = functions.Quadratic.from_eigenvalues([1.0, 3.0])
    oracle = stochastic.noisy_oracle(f, 0.5, np.random.default_rng(1))
    x = np.array([1.0, -2.0])
    G = np.array([oracle(x, k) for k in range(20000)])
    assert np.allclose(G.mean(0), f.grad(x), atol=0.02)
    assert np.allclose(G.var(0), 0.25, rtol=0.05)
    with pytest.raises(ValueError):
        stochastic.noisy_oracle(f, -1.0, np.random.default_rng(0))


def test_ensemble_without_noise_equals_run():
    f = functions.Quadratic.from_eigenvalues([0.5, 2.0], b=[1.0, 1.0])
    x0 = np.array([[2.0, -1.0], [0.0, 3.0]])
    ens = stochastic.ensemble(f, x0, steps=30, lr=0.3, record=True)
    for r in range(2):
        t = dlopt.run(rules.gd, f, x0[r], steps=30, lr=0.3)
        assert np.allclose(ens.xs[:, r], t.xs) and np.allclose(ens.values[:, r], t.values)
    assert ens.values.shape == (31, 2) and ens.runs == 2 and np.all(ens.lrs == 0.3)


def test_ensemble_langevin_noise_scale_and_stop():
    f = functions.Quadratic.from_eigenvalues([1.0])
    # one Langevin step from the minimum: x1 = sqrt(2 eta T) xi
    ens = stochastic.ensemble(f, np.zeros((40000, 1)), steps=1, lr=0.1, temperature=0.5,
                              rng=np.random.default_rng(2), record=True)
    assert np.isclose(ens.xs[1].var(), 2 * 0.1 * 0.5, rtol=0.03)
    # per-run temperatures
    ens = stochastic.ensemble(f, np.zeros((40000, 1)), steps=1, lr=0.1,
                              temperature=np.repeat([0.5, 2.0], 20000), rng=np.random.default_rng(3))
    assert np.isclose(ens.x[20000:].var() / ens.x[:20000].var(), 4.0, rtol=0.05)
    # stop: runs freeze at first passage, hit records the step
    g = functions.TwoBasin()
    ens = stochastic.ensemble(g, np.full((50, 1), g.x_sharp), steps=3000, lr=0.02, temperature=0.4,
                              stop=g.in_flat_basin, rng=np.random.default_rng(4), record=True)
    assert np.all(ens.hit[ens.escaped] > 0)
    for r in np.nonzero(ens.escaped)[0][:10]:
        k = ens.hit[r]
        assert ens.xs[k - 1, r, 0] <= g.x_saddle < ens.xs[k, r, 0]
        assert np.all(ens.xs[k:, r] == ens.xs[k, r])
    with pytest.raises(ValueError):
        stochastic.ensemble(f, np.zeros((3, 2)), steps=1, lr=0.1)
    with pytest.raises(ValueError):
        stochastic.ensemble(f, np.zeros((3, 1)), steps=1, lr=0.1, sigma=1.0, temperature=1.0)


def test_stationary_covariance_matches_closed_form_and_simulation():
    lam, sigma2, eta = np.array([0.5, 2.0]), np.array([0.3, 1.0]), 0.4
    S = stochastic.stationary_covariance(np.diag(lam), np.diag(sigma2), eta)
    assert np.allclose(np.diag(S), eta * sigma2 / (lam * (2 - eta * lam)))
    assert np.isclose(stochastic.stationary_excess(np.diag(lam), np.diag(sigma2), eta),
                      np.sum(eta * sigma2 / (2 * (2 - eta * lam))))
    f = functions.Quadratic(np.diag(lam))
    ens = stochastic.ensemble(f, np.zeros((4000, 2)), steps=60, lr=eta, sigma=1.0, rng=np.random.default_rng(5))
    S1 = stochastic.stationary_covariance(np.diag(lam), np.eye(2), eta)
    assert np.allclose(np.cov(ens.x.T), S1, atol=0.06)
    with pytest.raises(ValueError):
        stochastic.stationary_covariance(np.diag(lam), np.eye(2), 1.01)


def test_kramers_arrhenius_and_escape_mean():
    tau = stochastic.kramers_time(1.0, 4.0, -1.0, np.array([0.1, 0.2]))
    assert np.allclose(tau, np.pi * np.exp([10.0, 5.0]))
    T = np.array([0.1, 0.2, 0.4])
    slope, A = stochastic.arrhenius_fit(T, 3.0 * np.exp(0.7 / T))
    assert np.isclose(slope, 0.7) and np.isclose(A, 3.0)
    rng = np.random.default_rng(6)
    times = np.ceil(rng.exponential(100.0, 5000)).astype(int)
    horizon = 150
    hit = np.where(times <= horizon, times, -1)
    mean, lo, hi = stochastic.escape_time_mean(hit, horizon)
    assert lo < 100.5 < hi and hi - lo < 15
    with pytest.raises(ValueError):
        stochastic.escape_time_mean(np.full(5, -1), 10)


def test_polyak_average_and_ci():
    xs = np.arange(10.0)[:, None] * np.ones((1, 3))
    avg = stochastic.polyak_average(xs, start=2)
    assert avg.shape == (8, 3) and np.allclose(avg[:, 0], [np.mean(np.arange(2, k + 1)) for k in range(2, 10)])
    m, half = stochastic.mean_ci(np.random.default_rng(0).standard_normal((400, 2)), level=0.95)
    assert np.all(half > 0) and np.all(2 * half < 0.3)
    np.testing.assert_allclose(half, stochastic.mean_ci(np.random.default_rng(0).standard_normal((400, 2)))[1],
                               rtol=1e-4)  # level 0.95 is z = 1.95996...
    assert stochastic.mean_halfwidth is stochastic.mean_ci


def test_two_state_occupancy():
    p = stochastic.two_state_occupancy(lambda k: 0.1, lambda k: 0.05, 400)
    assert np.isclose(p[-1], 0.05 / 0.15) and p[0] == 1.0 and np.all(np.diff(p) <= 0)


def test_expected_excess_matches_stationary_and_simulation():
    H, C = np.diag([1.0, 0.1]), np.diag([1.0, 2.0])
    e = stochastic.expected_excess(H, C, [3.0, 3.0], [0.5] * 400)
    assert np.isclose(e[0], 0.5 * (9 + 0.9))
    assert np.isclose(e[-1], stochastic.stationary_excess(H, C, 0.5), rtol=1e-6)  # converged to the floor
    f = functions.Quadratic(H)
    ens = stochastic.ensemble(f, np.tile([3.0, 3.0], (4000, 1)), steps=30, lr=0.5, sigma=1.0, cov=C,
                              rng=np.random.default_rng(7))
    e = stochastic.expected_excess(H, C, [3.0, 3.0], [0.5] * 30)
    assert np.allclose(ens.values.mean(axis=1), e, rtol=0.05)


def test_least_squares_stationary_reduces_to_additive_model_for_small_steps():
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((300, 3)), rng.standard_normal(300)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    U = (X @ w - y)[:, None] * X
    H, sigma = X.T @ X / 300, U.T @ U / 300
    for b in (1, 5):
        S = stochastic.least_squares_stationary(X, y, 1e-3, b)
        S0 = stochastic.stationary_covariance(H, sigma / b, 1e-3)
        assert np.allclose(S, S0, rtol=0.01)
        big = stochastic.least_squares_stationary(X, y, 0.3, b)
        assert np.trace(H @ big) > np.trace(H @ stochastic.stationary_covariance(H, sigma / b, 0.3))
    with pytest.raises(ValueError):
        stochastic.least_squares_stationary(X, y, 5.0, 1)  # beyond stability


def test_minibatch_oracle_unbiased_with_variance_over_b():
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((50, 2)), rng.standard_normal(50)
    risk = functions.LeastSquares(X, y)
    w = rng.standard_normal(2)
    U = (X @ w - y)[:, None] * X - risk.grad(w)
    oracle = stochastic.minibatch_oracle(X, y, 4)
    G = oracle(np.tile(w, (40000, 1)), 0, rng)
    assert np.allclose(G.mean(0), risk.grad(w), atol=0.03)
    assert np.allclose(np.cov(G.T), U.T @ U / 50 / 4, rtol=0.05, atol=1e-3)


def test_mean_first_passage_matches_kramers_and_is_direction_aware():
    f = functions.TwoBasin()
    tau = stochastic.mean_first_passage(f, f.x_sharp, f.x_flat, 0.03)
    kramers = stochastic.kramers_time(f.barrier_sharp, f.curv_sharp, f.curv_saddle, 0.03)
    assert abs(tau / kramers - 1) < 0.05
    back = stochastic.mean_first_passage(f, f.x_flat, f.x_sharp, 0.03)
    kramers_back = stochastic.kramers_time(f.barrier_flat, f.curv_flat, f.curv_saddle, 0.03)
    assert abs(back / kramers_back - 1) < 0.05 and back > tau  # the flat basin holds longer
    # 1-D Brownian motion on f = x^2/2 from 0 to 1 at T = 1: compare with the ensemble
    q = functions.Quadratic.from_eigenvalues([1.0])
    exact = stochastic.mean_first_passage(q, 0.0, 1.0, 1.0)
    ens = stochastic.ensemble(q, np.zeros((2000, 1)), steps=20000, lr=0.002, temperature=1.0,
                              stop=lambda X: X[:, 0] >= 1.0, rng=np.random.default_rng(10), record_values=False)
    mean, lo, hi = stochastic.escape_time_mean(ens.hit, 20000)
    assert abs(mean * 0.002 / exact - 1) < 0.08
    assert stochastic.mean_first_passage(f, 0.3, 0.3, 0.1) == 0.0


def test_schedule_basin_explorer():
    from dlopt import schedules, widgets

    ex = widgets.ScheduleBasinExplorer(steps=1500)
    f = ex.objective
    lrs, p = ex.predict("cosine", 0.04, 4e-4)
    assert np.allclose(lrs, schedules.CosineAnnealing(0.04, T_max=1500, eta_min=4e-4).values(1501))
    # the same two-state model computed directly
    tau = lambda a, b, T: stochastic.mean_first_passage(f, a, b, T)
    direct = 1 - stochastic.two_state_occupancy(
        lambda k: lrs[k] / tau(f.x_sharp, f.x_flat, lrs[k] * 10.0),
        lambda k: lrs[k] / tau(f.x_flat, f.x_sharp, lrs[k] * 10.0), 1500)
    assert np.allclose(p[::100], direct[::100], atol=0.01)
    ex.update(shape="exponential", eta0=0.04, eta_end=4e-4)
    expo = ex.final_fraction
    ex.update(shape="cosine")
    assert ex.final_fraction > expo + 0.15 and ex._repr_png_()[:4] == b"\x89PNG"
    box = ex.widget()
    box.children[0].children[0].value = "step"  # the dropdown redraws
    assert ex.params["shape"] == "step"
    with pytest.raises(ValueError):
        ex.schedule("linear", 0.1, 0.01)
