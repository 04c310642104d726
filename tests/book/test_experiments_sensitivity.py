"""Tests of the stacked MLP gradients in dlopt.experiments (used by the validation page)."""

import numpy as np
import pytest

from dlopt import experiments, nn, rules


@pytest.mark.parametrize("loss, sizes, act", [("cross_entropy", [5, 7, 3], "tanh"),
                                              ("squared", [4, 6, 5, 1], "relu"),
                                              ("squared", [3, 4, 2], "sigmoid"),
                                              ("logistic", [3, 5, 1], "tanh")])
def test_mlp_grad_matches_backprop_row_by_row(loss, sizes, act):
    rng = np.random.default_rng(0)
    net = nn.MLP(sizes, activation=act, seed=1)
    S, B = 4, 9
    Theta = rng.standard_normal((S, net.n_params))
    X = rng.standard_normal((S, B, sizes[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], (S, B))
    elif loss == "logistic":
        y = rng.choice([-1.0, 1.0], (S, B))
    else:
        y = rng.standard_normal((S, B) if sizes[-1] == 1 else (S, B, sizes[-1]))
    G = experiments.mlp_grad(net, Theta, X, y, loss)
    assert G.shape == Theta.shape
    for s in range(S):
        expected = net.loss_and_grad(Theta[s], X[s], y[s], loss)[1]
        assert np.allclose(G[s], expected, rtol=1e-10, atol=1e-13)
    # one batch shared by all rows, and a single parameter vector
    shared = experiments.mlp_grad(net, Theta, X[0], y[0], loss)
    for s in range(S):
        assert np.allclose(shared[s], net.loss_and_grad(Theta[s], X[0], y[0], loss)[1], rtol=1e-10, atol=1e-13)
    assert np.allclose(experiments.mlp_grad(net, Theta[2], X[0], y[0], loss), shared[2])


def test_mlp_grad_checks_shapes():
    net = nn.MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError):
        experiments.mlp_grad(net, np.zeros((2, net.n_params + 1)), np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError):
        experiments.mlp_grad(net, np.zeros((2, net.n_params)), np.zeros((3, 4, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        experiments.mlp_grad(net, np.zeros(net.n_params), np.zeros((4, 2)), np.zeros(4), loss="nope")


def test_mlp_sampler_draws_one_batch_per_row_and_trains():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    net = nn.MLP([4, 8, 2], seed=0)
    Theta0 = np.stack([nn.MLP([4, 8, 2], seed=s).theta for s in range(3)])
    # with the full data set as the "batch" distribution and batch_size = m, the oracle is unbiased:
    # its average over many draws approaches the full gradient
    oracle = experiments.mlp_sampler(net, X, y, 60, np.random.default_rng(0), loss="cross_entropy")
    mean = np.mean([oracle(Theta0, k) for k in range(400)], axis=0)
    full = experiments.mlp_grad(net, Theta0, X, y, "cross_entropy")
    assert np.allclose(mean, full, atol=0.1 * np.abs(full).max())
    # the rows get different batches: identical rows receive different gradients
    same = np.repeat(Theta0[:1], 2, axis=0)
    g = experiments.mlp_sampler(net, X, y, 5, np.random.default_rng(1), loss="cross_entropy")(same, 0)
    assert not np.allclose(g[0], g[1])
    # the same seed gives the same draws; a single vector gets a vector back
    a = experiments.mlp_sampler(net, X, y, 5, np.random.default_rng(7), "cross_entropy")(Theta0[0], 0)
    b = experiments.mlp_sampler(net, X, y, 5, np.random.default_rng(7), "cross_entropy")(Theta0[0], 0)
    assert a.shape == Theta0[0].shape and np.array_equal(a, b)
    # training with run_batch lowers the loss of every network
    xs = experiments.run_batch(rules.adam, experiments.mlp_sampler(net, X, y, 16, np.random.default_rng(2),
                                                                   "cross_entropy"), Theta0, 200, lr=0.03, every=200)
    before = [net.loss(t, X, y, "cross_entropy") for t in xs[0]]
    after = [net.loss(t, X, y, "cross_entropy") for t in xs[-1]]
    assert all(a < 0.5 * b for a, b in zip(after, before))
    with pytest.raises(ValueError):
        experiments.mlp_sampler(net, X, y, 61, np.random.default_rng(0))
    with pytest.raises(ValueError):
        experiments.mlp_sampler(net, X, y[:10], 5, np.random.default_rng(0))
