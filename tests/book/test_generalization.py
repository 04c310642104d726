"""Tests for dlopt.generalization."""

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules
from dlopt import generalization as gen


def test_gd_filter_matches_gd_from_zero():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 8)), rng.standard_normal(20)
    f = functions.LeastSquares(X, y)
    lr, k = 0.5 / f.L, 37
    w = dlopt.run(rules.gd, f, np.zeros(8), steps=k, lr=lr).xs[-1]
    lam, U = np.linalg.eigh(X.T @ X / 20)
    coef = U.T @ (X.T @ y / 20) / lam
    assert np.allclose(w, U @ (gen.gd_filter(lam, lr, k) * coef), atol=1e-10)
    assert np.allclose(gen.ridge(X, y, 0.3), U @ (gen.ridge_filter(lam, 0.3) * coef))
    with pytest.raises(ValueError):
        gen.ridge(X, y, 0.0)


def test_gd_from_zero_reaches_min_norm_interpolant():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, 12)), rng.standard_normal(5)
    f = functions.LeastSquares(X, y)
    w = dlopt.run(rules.gd, f, np.zeros(12), steps=4000, lr=1 / f.L).xs[-1]
    assert np.allclose(w, np.linalg.pinv(X) @ y, atol=1e-8)


def test_deep_linear_gradients_by_finite_differences():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((3, 7)), rng.standard_normal((2, 7))
    Ws = gen.deep_linear_init([3, 4, 5, 2], seed=1)
    loss, grads = gen.deep_linear_loss_grads(Ws, X, Y)
    assert np.isclose(loss, 0.5 * np.sum((gen.end_to_end(Ws) @ X - Y) ** 2) / 7)
    h = 1e-6
    for l in range(len(Ws)):
        for idx in [(0, 0), (1, 2)]:
            Wp = [V.copy() for V in Ws]
            Wp[l][idx] += h
            Wm = [V.copy() for V in Ws]
            Wm[l][idx] -= h
            fd = (gen.deep_linear_loss_grads(Wp, X, Y)[0] - gen.deep_linear_loss_grads(Wm, X, Y)[0]) / (2 * h)
            assert np.isclose(fd, grads[l][idx], rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError):
        gen.deep_linear_init([3])


def test_rank_floor_is_reached_and_never_beaten():
    X, Y = np.eye(10), gen.random_labels(10, 10, seed=3)
    assert gen.rank_floor(X, Y) < 1e-25
    Ws, losses = gen.train_deep_linear(X, Y, [3], lr=0.5, steps=3000, seed=0)
    floor = gen.rank_floor(X, Y, 3)
    assert floor > 0.1
    assert floor - 1e-12 <= losses[-1] <= floor * (1 + 1e-4)
    # any random rank-3 map does worse
    rng = np.random.default_rng(0)
    for _ in range(20):
        M = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 10))
        assert 0.5 * np.sum((M @ X - Y) ** 2) / 10 >= floor
    # linearly dependent inputs: the least-squares residual
    Xd = rng.standard_normal((4, 12))
    Yd = gen.random_labels(12, 2, seed=4)
    lsq = np.linalg.lstsq(Xd.T, Yd.T, rcond=None)[0].T
    assert np.isclose(gen.rank_floor(Xd, Yd), 0.5 * np.sum((lsq @ Xd - Yd) ** 2) / 12)


def test_logistic_sgd_pair_divergence_bound():
    rng = np.random.default_rng(5)
    n, d, T = 40, 5, 400
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # G = 1, L = 1/4
    y = np.sign(rng.standard_normal(n))
    X2, y2 = X.copy(), y.copy()
    X2[7], y2[7] = -X[3], 1.0
    order = rng.integers(0, n, T)
    lr = 1.0
    _, _, dist = gen.logistic_sgd_pair(X, y, X2, y2, lr, order)
    hits = np.concatenate([[0], np.cumsum(order == 7)])
    assert np.all(dist <= 2 * lr * hits + 1e-12)
    assert dist[-1] > 0
    _, _, same = gen.logistic_sgd_pair(X, y, X, y, lr, order)
    assert np.all(same == 0)


def test_bias_variance_sums_to_the_mean_squared_error():
    rng = np.random.default_rng(6)
    P, f = rng.standard_normal((50, 7)) + 1.0, rng.standard_normal(7)
    b2, v = gen.bias_variance(P, f)
    assert np.isclose(b2 + v, np.mean((P - f) ** 2))
    assert np.isclose(gen.bias_variance(np.tile(f + 2.0, (5, 1)), f)[0], 4.0)
    assert np.allclose(gen.bias_variance(np.tile(f, (5, 1)), f), 0.0, atol=1e-25)
    with pytest.raises(ValueError):
        gen.bias_variance(P, f[:3])


def test_relu_features_shape_sign_and_scale():
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((7, 4)), rng.standard_normal((300, 4))
    Phi = gen.relu_features(X, W)
    assert Phi.shape == (7, 300) and (Phi >= 0).all()
    # E max(0, z)^2 = 1/2 for z ~ N(0, |x|^2/d): the squared feature norm is about |x|^2/(2d)
    np.testing.assert_allclose((Phi**2).sum(1), (X**2).sum(1) / 8, rtol=0.3)
    with pytest.raises(ValueError, match="columns"):
        gen.relu_features(X, W[:, :3])


def test_min_norm_interpolates_with_the_smallest_norm():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, 12)), rng.standard_normal(5)
    w = gen.min_norm(X, y)
    np.testing.assert_allclose(X @ w, y, atol=1e-12)           # over-parameterized: interpolates
    null = np.linalg.svd(X)[2][5:]                             # any other interpolant is w + N z
    other = w + null.T @ rng.standard_normal(7)
    np.testing.assert_allclose(X @ other, y, atol=1e-12)
    assert np.linalg.norm(w) < np.linalg.norm(other)
    # under-parameterized: the ordinary least-squares solution
    X2, y2 = rng.standard_normal((20, 3)), rng.standard_normal(20)
    np.testing.assert_allclose(gen.min_norm(X2, y2), np.linalg.solve(X2.T @ X2, X2.T @ y2), atol=1e-12)


def test_weighted_min_norm_is_the_limit_of_preconditioned_gd():
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((6, 15)), rng.standard_normal(6)
    f = functions.LeastSquares(X, y)
    p = np.exp(rng.uniform(-2, 2, 15))
    x_p = gen.weighted_min_norm(X, y, p)
    assert np.allclose(X @ x_p, y)
    L_p = np.linalg.eigvalsh(np.sqrt(p)[:, None] * f._H * np.sqrt(p))[-1]
    x = dlopt.run(rules.gd, f, np.zeros(15), steps=6000, lr=1 / L_p, grad=lambda x, k: p * f.grad(x)).xs[-1]
    assert np.allclose(x, x_p, atol=1e-8)
    # every other interpolant has a larger weighted norm; p = 1 is the pseudo-inverse
    N = np.eye(15) - np.linalg.pinv(X) @ X
    for _ in range(10):
        other = x_p + N @ rng.standard_normal(15)
        assert other @ (other / p) > x_p @ (x_p / p)
    assert np.allclose(gen.weighted_min_norm(X, y, np.full(15, 3.0)), gen.min_norm(X, y))
    with pytest.raises(ValueError):
        gen.weighted_min_norm(X, y, np.r_[0.0, p[1:]])
    with pytest.raises(ValueError):
        gen.weighted_min_norm(X, y, p[:-1])


def test_wilson_example_sign_solution_and_adagrad_limit():
    y = np.array([1, 1, -1, 1, -1, 1, 1.0])
    X, X_test = gen.wilson_example(y, [1, -1])
    assert X.shape == (7, 38) and X_test.shape == (2, 38)
    assert np.array_equal(X.sum(axis=1), np.where(y > 0, 4, 6))
    assert np.array_equal(X @ np.sign(X.T @ y), 4 * y)
    assert np.array_equal(X_test[:, :3], [[1, 1, 1], [-1, 1, 1]]) and not X_test[:, 3:].any()
    f = functions.LeastSquares(X, y)
    w = dlopt.run(rules.adagrad, f, np.zeros(38), steps=2000, lr=0.1).xs[-1]
    assert np.allclose(w, np.sign(X.T @ y) / 4, atol=1e-8)
    assert np.all(X_test @ w > 0)  # the adaptive solution calls every new point positive
    assert np.array_equal(np.sign(X_test @ gen.min_norm(X, y)), [1, -1])  # the min-norm one does not
    # more negatives than positives: the identity fails
    y2 = -y
    assert not np.array_equal(gen.wilson_example(y2) @ np.sign(gen.wilson_example(y2).T @ y2), 4 * y2)
    with pytest.raises(ValueError):
        gen.wilson_example([1, 0, -1])


def test_stacked_lsq_grad_full_and_minibatch():
    rng = np.random.default_rng(12)
    Xs, ys = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5))
    W = rng.standard_normal((3, 4))
    full = gen.stacked_lsq_grad(Xs, ys)(W, 0)
    for s in range(3):
        assert np.allclose(full[s], functions.LeastSquares(Xs[s], ys[s]).grad(W[s]))
    # one-sample gradients of run s are gradients of one of its own samples
    g = gen.stacked_lsq_grad(Xs, ys, batch_size=1, seed=3)(W, 0)
    for s in range(3):
        own = [(Xs[s, i] @ W[s] - ys[s, i]) * Xs[s, i] for i in range(5)]
        assert any(np.allclose(g[s], o) for o in own)
    # the mini-batch gradient is unbiased
    oracle = gen.stacked_lsq_grad(Xs, ys, batch_size=2, seed=4)
    mean = np.mean([oracle(W, k) for k in range(20000)], axis=0)
    assert np.allclose(mean, full, atol=0.05 * np.abs(full).max())
    with pytest.raises(ValueError):
        gen.stacked_lsq_grad(Xs, ys[:, :4])
    with pytest.raises(ValueError):
        gen.stacked_lsq_grad(Xs, ys, batch_size=0)
