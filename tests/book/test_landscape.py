"""dlopt.landscape: the two-unit network, the random field, critical points, sharpness."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import calculus, landscape, nn

rng = np.random.default_rng(0)


@pytest.mark.parametrize("f", [landscape.TwoUnitNetwork(), landscape.TwoUnitNetwork(1.0, 0.3),
                               landscape.RandomField(n=4, features=50, seed=2)])
def test_derivatives(f):
    for _ in range(5):
        x = rng.uniform(-2, 2, f.dim)
        assert np.allclose(f.grad(x), calculus.gradient(f.value, x, h=1e-6), atol=1e-7)
        assert np.allclose(f.hess(x), landscape.hessian_from_grad(f.grad, x), atol=1e-6)
    X = rng.uniform(-2, 2, (3, 4, f.dim))  # stacks of points broadcast
    assert f.value(X).shape == (3, 4) and f.grad(X).shape == (3, 4, f.dim)
    assert f.hess(X).shape == (3, 4, f.dim, f.dim)
    assert np.allclose(f.hess(X)[1, 2], f.hess(X[1, 2]))


def test_two_unit_network_symmetry_and_minima():
    f = landscape.TwoUnitNetwork()
    w = rng.standard_normal((20, 2))
    assert np.allclose(f.value(w), f.value(w[:, ::-1]))
    assert np.allclose(f.value(f.minimizers), 0) and np.allclose(f.grad(f.minimizers), 0)
    assert np.all(np.linalg.eigvalsh(f.hess(f.minimizers)) > 0)
    assert f.value(f.minimizers.mean(axis=0)) > 0.01  # the midpoint is worse: not convex


def test_index():
    assert landscape.index(np.diag([1.0, 2.0])) == 0.0
    assert landscape.index(np.diag([-1.0, 2.0, 3.0, -4.0])) == 0.5
    assert landscape.index(-np.eye(3)) == 1.0


def test_newton_finds_critical_points_of_every_index():
    f = landscape.RandomField(n=3, features=100, seed=0)
    res = landscape.newton_critical_points(f, rng.uniform(-2, 2, (60, 3)), steps=40)
    c = res["converged"]
    assert c.sum() > 30
    assert np.all(np.linalg.norm(f.grad(res["x"][c]), axis=1) < 1e-8)
    kinds = {landscape.index(H) for H in f.hess(res["x"][c])}
    assert len(kinds) >= 3  # minima, saddles, maxima
    assert np.allclose(res["eigenvalues"][0], np.linalg.eigvalsh(f.hess(res["x"][0])))


def test_sharpness_and_perturbed_loss_on_a_quadratic():
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    lam = np.array([0.1, 0.5, 1.0, 2.0, 3.0, 7.0])
    A = (Q * lam) @ Q.T
    f, g = (lambda x: 0.5 * x @ A @ x), (lambda x: A @ x)
    assert landscape.sharpness(g, np.zeros(6), iters=300) == pytest.approx(7.0, rel=1e-6)
    lam_top, v = landscape.sharpness(g, np.zeros(6), iters=300, return_vector=True)
    assert abs(v @ Q[:, -1]) == pytest.approx(1.0, abs=1e-6) and lam_top == pytest.approx(7.0, rel=1e-6)
    sigma = 0.1
    est = landscape.perturbed_loss(f, np.zeros(6), sigma, samples=4000)
    assert est == pytest.approx(0.5 * sigma**2 * lam.sum(), rel=0.05)


def test_sharpness_of_a_network_matches_its_hessian():
    net = nn.MLP([2, 4, 1], seed=0)
    X, y = rng.standard_normal((10, 2)), rng.standard_normal(10)
    f = net.objective(X, y)
    H = landscape.hessian_from_grad(f.grad, net.theta)
    lam = np.linalg.eigvalsh(H)
    top = lam[np.argmax(np.abs(lam))]
    assert landscape.sharpness(f.grad, net.theta, iters=500) == pytest.approx(top, rel=1e-4)


def test_newton_polish_of_a_network_minimum_with_a_singular_hessian():
    """newton_critical_points with hess= (the Hessian of one point, here by finite differences of an
    exact gradient) and rcond= polishes a minimum of a network whose Hessian is singular: the step
    is the least-squares Newton step, the gradient ends at rounding level; without the cut-off the
    finite-difference noise in the flat directions would be inverted."""
    x = np.linspace(-3, 3, 40)[:, None]
    teacher = nn.MLP([1, 3, 1], activation="tanh", seed=7)
    obj = nn.MLP([1, 4, 1], activation="tanh", seed=2).objective(x, teacher.forward(teacher.theta, x)[:, 0])
    import dlopt

    theta = dlopt.minimize(obj, obj.net.theta, method="bfgs", options={"maxiter": 5000, "gtol": 1e-11}).x
    hess = lambda t: landscape.hessian_from_grad(obj.grad, t)  # noqa: E731
    res = calculus.newton_critical_points(obj, theta, steps=5, damping=None, hess=hess, rcond=1e-12)
    by_hand = theta.copy()
    for _ in range(5):
        by_hand = by_hand - np.linalg.lstsq(hess(by_hand), obj.grad(by_hand), rcond=1e-12)[0]
    assert res["x"].shape == (1, theta.size) and res["grad_norm"][0] < 1e-10
    assert np.allclose(res["x"][0], by_hand, rtol=0, atol=1e-8)
    assert np.min(res["eigenvalues"][0]) > -1e-6 and res["converged"][0]
