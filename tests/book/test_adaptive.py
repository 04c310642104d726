"""Package pieces used by the chapter on adaptive methods: objectives, data, experiment harnesses."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import calculus, data, experiments, functions, rules

rng = np.random.default_rng(0)


@pytest.fixture
def robust():
    X = rng.standard_normal((60, 4))
    y = X @ rng.standard_normal(4) + 0.5 * rng.standard_normal(60)
    y[:6] += 10.0  # outliers: the bounded loss ignores them
    return functions.RobustRegression(X, y)


def test_robust_regression_derivatives(robust):
    for _ in range(5):
        w = rng.uniform(-2, 2, robust.dim)
        np.testing.assert_allclose(robust.grad(w), calculus.gradient(robust, w, h=1e-6), rtol=1e-6, atol=1e-8)
        H = robust.hess(w)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        np.testing.assert_allclose(H, calculus.hessian(robust, w, h=1e-6, grad=robust.grad), rtol=1e-5, atol=1e-7)
    W = rng.uniform(-1, 1, (3, 5, robust.dim))
    assert robust.value(W).shape == (3, 5) and robust.grad(W).shape == (3, 5, robust.dim)
    np.testing.assert_allclose(robust.grad(W)[1, 2], robust.grad(W[1, 2]), rtol=1e-12)


def test_robust_regression_constants_are_bounds(robust):
    # L bounds the Hessian's spectral norm everywhere; G bounds every per-sample gradient
    for _ in range(200):
        w = rng.uniform(-5, 5, robust.dim)
        assert np.abs(np.linalg.eigvalsh(robust.hess(w))).max() <= robust.L + 1e-12
        i = rng.integers(robust.m)
        assert np.abs(robust.batch_grad(w, [i])).max() <= robust.G + 1e-12
    # the residual r = 1/sqrt(3) attains |rho'| = 3 sqrt(3)/8, so G is attained for a unit row
    f = functions.RobustRegression(np.array([[1.0]]), np.array([0.0]))
    assert np.isclose(np.abs(f.grad(np.array([1 / np.sqrt(3)])))[0], f.G)
    # non-convex: negative curvature somewhere
    assert min(np.linalg.eigvalsh(robust.hess(rng.uniform(-5, 5, robust.dim)))[0] for _ in range(50)) < 0


def test_robust_regression_batched_minibatches_are_unbiased(robust):
    W = rng.standard_normal((3, robust.dim))
    idx = rng.integers(0, robust.m, (3, 7))
    G = robust.batch_grad(W, idx)
    for s in range(3):
        np.testing.assert_allclose(G[s], robust.batch_grad(W[s], idx[s]), rtol=1e-12)
    full = robust.batch_grad(W[0], np.arange(robust.m))
    np.testing.assert_allclose(full, robust.grad(W[0]), rtol=1e-12)
    oracle = robust.sampler(5, np.random.default_rng(1))
    assert oracle(W, 0).shape == W.shape
    with pytest.raises(ValueError):
        robust.sampler(0, rng)


def test_online_linear():
    f = functions.OnlineLinear(C=3.0)
    assert [f.online_grad(np.zeros(1), k)[0] for k in range(4)] == [3.0, -1.0, -1.0, 3.0]
    # the average of the online gradients is the gradient of the average loss
    assert np.isclose(np.mean([f.online_grad(np.zeros(1), k)[0] for k in range(3)]), f.grad(np.zeros(1))[0])
    assert np.isclose(f.value(f.minimizer), f.minimum)
    T = 300
    assert np.isclose(f.regret(-np.ones((T, 1))), 0.0)
    assert np.isclose(f.regret(np.ones((T, 1))), 2 * (f.C - 2) / 3)
    with pytest.raises(ValueError):
        functions.OnlineLinear(C=2.0)


def test_digits_loader():
    Xtr, ytr, Xte, yte = data.digits()
    assert Xtr.shape[1:] == (1, 8, 8) and len(Xtr) + len(Xte) == 1797
    assert Xtr.dtype == np.float32 and 0.0 <= Xtr.min() and Xtr.max() <= 1.0
    assert set(np.unique(yte)) == set(range(10))
    with pytest.raises(ValueError):
        data.digits(test_size=1.5)


def test_replay_records_steps():
    grads = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
    rec = experiments.replay(rules.gd, grads, lr=0.1)
    np.testing.assert_allclose(rec["step"], -0.1 * grads)
    np.testing.assert_allclose(rec["x"], -0.1 * np.cumsum(grads, axis=0))
    one = experiments.replay(rules.gd, [1.0, 2.0], lr=lambda k: 1.0 / (k + 1))
    np.testing.assert_allclose(one["step"], [-1.0, -1.0])


def test_run_batch_matches_run():
    f = functions.Quadratic.from_condition_number(10.0, n=3, seed=0, b=[1.0, 0.0, -1.0])
    x0 = rng.standard_normal((4, 3))
    xs = experiments.run_batch(rules.gd, lambda X, k: f.grad(X), x0, 25, lr=0.05, every=5)
    assert xs.shape == (6, 4, 3)
    for s in range(4):
        np.testing.assert_allclose(xs[-1, s], dlopt.run(rules.gd, f, x0[s], steps=25, lr=0.05).x, rtol=1e-12)
    boxed = experiments.run_batch(rules.gd, lambda X, k: -np.ones_like(X), np.zeros(2), 10, lr=1.0,
                                  project=(-1.0, 2.5))
    np.testing.assert_allclose(boxed[-1], [[2.5, 2.5]])
    with pytest.raises(ValueError):
        experiments.run_batch(rules.gd, lambda X, k: X, np.zeros((1, 1, 1)), 3, lr=0.1)


def test_mean_ci():
    m, h = experiments.mean_ci(np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_allclose(m, [2.0, 2.0])
    np.testing.assert_allclose(h, [1.96 * np.sqrt(2) / np.sqrt(2), 0.0])
    m, _ = experiments.mean_ci([1.0, np.inf, 2.0])
    assert not np.isfinite(m)
    with pytest.raises(ValueError):
        experiments.mean_ci([1.0])


def test_train_classifier_learns_digits():
    import torch

    dlopt.seed(0)
    Xtr, ytr, Xte, yte = data.digits()
    model = experiments.digits_cnn(channels=(4, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = experiments.train_classifier(model, opt, Xtr, ytr, Xte, yte, epochs=3, progress=False)
    assert len(hist["test_acc"]) == 3 and hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["test_acc"][-1] > 0.8


def test_run_batch_traces_state():
    grads = rng.standard_normal((5, 2, 3))
    xs, tr = experiments.run_batch(rules.adam, lambda X, k: grads[k], np.zeros((2, 3)), 5,
                                   lr=lambda k: 0.1 / (k + 1), trace=("exp_avg", "grad", "lr"),
                                   betas=(0.5, 0.9))
    assert tr["exp_avg"].shape == (5, 2, 3) and tr["lr"].shape == (5,)
    np.testing.assert_allclose(tr["grad"], grads)
    np.testing.assert_allclose(tr["exp_avg"][1], 0.5 * 0.5 * grads[0] + 0.5 * grads[1])
    np.testing.assert_allclose(tr["lr"], 0.1 / np.arange(1, 6))


def test_namsgrad_has_the_properties_the_convergence_proof_uses():
    """Effective steps eta_t/(sqrt(v_hat_t)+eps) never increase; the direction is bounded by G."""
    G = 3.0
    grads = rng.uniform(-G, G, (500, 6)) * (rng.random((500, 6)) < 0.7)
    eta, eps, b1 = 0.1, 1e-3, 0.8
    rec = experiments.replay(rules.namsgrad, grads, lr=lambda k: eta / np.sqrt(k + 1), betas=(b1, 0.99), eps=eps)
    a = eta / np.sqrt(np.arange(1, 501))[:, None] / (np.sqrt(rec["max_exp_avg_sq"]) + eps)
    assert np.all(np.diff(a, axis=0) <= 0) and np.all(a[0] <= eta / eps)
    d = -rec["step"] / a
    np.testing.assert_allclose(d, b1 * rec["exp_avg"] + (1 - b1) * grads, atol=1e-9)
    assert np.abs(d).max() <= G
    # Adam's effective step is not monotone on the same sequence
    adam = experiments.replay(rules.adam, grads, lr=lambda k: eta / np.sqrt(k + 1), betas=(b1, 0.99), eps=eps)
    t = np.arange(1, 501)[:, None]
    a_adam = eta / np.sqrt(t) / (np.sqrt(adam["exp_avg_sq"] / (1 - 0.99**t)) + eps)
    assert np.any(np.diff(a_adam, axis=0) > 0)
