"""dlopt.nn: activations, losses and the MLP's backward pass against finite differences and torch."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import nn

rng = np.random.default_rng(0)


def fd(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_activation_derivatives(name):
    phi, dphi = nn.ACTIVATIONS[name]
    z = rng.uniform(-4, 4, 50)
    z = z[np.abs(z) > 1e-3]  # away from the ReLU kink
    num = np.array([(phi(t + 1e-6) - phi(t - 1e-6)) / 2e-6 for t in z])
    assert np.allclose(dphi(z), num, atol=1e-8)


def test_sigmoid_is_stable_and_bounded():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    s = nn.sigmoid(z)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert nn.sigmoid_grad(np.linspace(-10, 10, 2001)).max() == pytest.approx(0.25)


def test_softmax_and_jacobian():
    z = rng.standard_normal(5)
    p = nn.softmax(z)
    assert p.sum() == pytest.approx(1.0) and np.all(p > 0)
    assert np.allclose(nn.softmax(z + 100.0), p)
    J = np.array([fd(lambda t, i=i: nn.softmax(t)[i], z) for i in range(5)])
    assert np.allclose(nn.softmax_jacobian(z), J, atol=1e-8)


@pytest.mark.parametrize("loss", sorted(nn.LOSSES))
def test_loss_gradients(loss):
    value, grad = nn.LOSSES[loss]
    if loss == "cross_entropy":
        out, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    elif loss == "squared":
        out, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    else:
        out, y = rng.standard_normal(6) * 3, np.sign(rng.standard_normal(6))
        out[np.abs(1 - y * out) < 1e-3] += 0.1  # away from the hinge kink
    assert np.allclose(grad(out, y), fd(lambda o: value(o, y), out), atol=1e-8)


def test_cross_entropy_rejects_float_labels():
    with pytest.raises(ValueError):
        nn.cross_entropy(np.zeros((3, 2)), np.array([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
@pytest.mark.parametrize("loss,k", [("squared", 1), ("squared", 3), ("cross_entropy", 3),
                                    ("logistic", 1), ("hinge", 1)])
def test_backprop_matches_finite_differences_and_autograd(activation, loss, k):
    torch = pytest.importorskip("torch")
    net = nn.MLP([3, 5, 4, k], activation=activation, seed=1)
    X = rng.standard_normal((7, 3))
    if loss == "cross_entropy":
        y = rng.integers(0, k, 7)
    elif loss == "squared":
        y = rng.standard_normal((7, k)) if k > 1 else rng.standard_normal(7)
    else:
        y = np.sign(rng.standard_normal(7))
    theta = net.theta + 0.3 * rng.standard_normal(net.n_params)
    value, grad = net.loss_and_grad(theta, X, y, loss)
    assert value == pytest.approx(net.loss(theta, X, y, loss))
    assert np.allclose(grad, fd(lambda t: net.loss(t, X, y, loss), theta), atol=1e-7)
    t = torch.tensor(theta, requires_grad=True)
    net.loss(t, torch.tensor(X), y, loss).backward()
    assert np.allclose(grad, t.grad.numpy(), atol=1e-12)


def test_mlp_shapes_objective_and_errors():
    net = nn.MLP([4, 3, 2], seed=0)
    assert net.n_params == 4 * 3 + 3 + 3 * 2 + 2 and net.depth == 2
    layers = net.unflatten(net.theta)
    assert [W.shape for W, _ in layers] == [(4, 3), (3, 2)]
    assert np.array_equal(net.flatten(layers), net.theta)
    X, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    f = net.objective(X, y)
    assert f.dim == net.n_params and f(net.theta) == pytest.approx(net.loss(net.theta, X, y))
    with pytest.raises(ValueError):
        nn.MLP([3, 2], activation="swish")
    with pytest.raises(ValueError):
        nn.MLP([3])
    with pytest.raises(ValueError):
        net.unflatten(np.zeros(3))
    with pytest.raises(ValueError):
        net.objective(X, y, loss="l1")


def test_he_initialisation_scale():
    net = nn.MLP([400, 400, 1], init_scale="he", seed=0)
    W = net.unflatten(net.theta)[0][0]
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


def test_clip_by_norm_scales_long_gradients_and_keeps_short_ones():
    g = np.array([3.0, -4.0])
    clipped = nn.clip_by_norm(g, 1.0)
    assert np.allclose(clipped, [0.6, -0.8]) and np.array_equal(g, [3.0, -4.0])  # input untouched
    short = nn.clip_by_norm(g, 5.0)
    assert np.array_equal(short, g) and short is not g
    assert np.array_equal(nn.clip_by_norm(np.zeros(3), 1.0), np.zeros(3))
    assert np.array_equal(nn.clip_by_norm(g, 0.0), np.zeros(2))
    for _ in range(50):
        v = rng.standard_normal(7) * 10.0 ** rng.uniform(-3, 3)
        c = 10.0 ** rng.uniform(-2, 2)
        out = nn.clip_by_norm(v, c)
        assert np.linalg.norm(out) == pytest.approx(min(np.linalg.norm(v), c), rel=1e-12)
        alpha = out @ v / (v @ v)  # a positive multiple of v, at most one
        assert 0 < alpha <= 1 and np.allclose(out, alpha * v, rtol=1e-12, atol=0)
    with pytest.raises(ValueError):
        nn.clip_by_norm(g, -1.0)
    with pytest.raises(ValueError):
        nn.clip_by_norm(g, float("nan"))


def test_clip_by_norm_uses_the_norm_of_all_entries_and_does_not_overflow():
    M = rng.standard_normal((4, 5))
    out = nn.clip_by_norm(M, 0.5)
    assert out.shape == M.shape and np.linalg.norm(out) == pytest.approx(0.5)
    huge = np.array([1e300, -1e300, 1e300])  # its squared entries overflow
    out = nn.clip_by_norm(huge, 2.0)
    assert np.allclose(out, 2.0 / np.sqrt(3) * np.sign(huge))
    assert np.all(np.isnan(nn.clip_by_norm(np.array([np.inf, 1.0]), 1.0)))


def test_clip_by_norm_matches_torch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    net = nn.MLP([3, 6, 2], activation="relu", seed=2, init_scale=3.0)
    X, y = rng.standard_normal((9, 3)), rng.standard_normal((9, 2))
    _, grad = net.loss_and_grad(net.theta, X, y)
    for max_norm in (1e-3, 0.1, 1.0, 10 * np.linalg.norm(grad)):
        params = [torch.nn.Parameter(torch.tensor(p)) for layer in net.unflatten(net.theta) for p in layer]
        for p, gp in zip(params, [gp for layer in net.unflatten(grad) for gp in layer]):
            p.grad = torch.tensor(gp.copy())
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        clipped_torch = torch.cat([p.grad.reshape(-1) for p in params]).numpy()
        assert float(total) == pytest.approx(np.linalg.norm(grad), rel=1e-12)
        # torch divides by ||g|| + 1e-6, hence the tolerance
        assert np.allclose(nn.clip_by_norm(grad, max_norm), clipped_torch, rtol=1e-5, atol=0)
        t = nn.clip_by_norm(torch.tensor(grad), max_norm)  # torch tensors in, torch tensors out
        assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), nn.clip_by_norm(grad, max_norm), rtol=1e-14)
