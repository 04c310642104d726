"""Objectives: gradients and Hessians agree with finite differences; grids broadcast."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import calculus
from dlopt import functions as F

rng = np.random.default_rng(0)

OBJECTIVES = [
    F.Quadratic.from_condition_number(50.0, n=4, seed=1, b=[1.0, -2.0, 0.5, 3.0], c=0.7),
    F.Rosenbrock(),
    F.Rosenbrock(n=5),
    F.Rosenbrock(a=0.5, b=10.0),
    F.Beale(),
    F.Himmelblau(),
    F.DoubleWell(gamma=25.0),
    F.LeastSquares(rng.standard_normal((30, 3)), rng.standard_normal(30)),
    F.LogisticRegression(rng.standard_normal((40, 3)), np.sign(rng.standard_normal(40)), l2=0.1),
]


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_gradient_and_hessian_match_finite_differences(f):
    for _ in range(5):
        x = rng.uniform(-1.5, 1.5, f.dim)
        g = f.grad(x)
        np.testing.assert_allclose(g, calculus.gradient(f, x, h=1e-6), rtol=1e-6, atol=1e-6 * (1 + np.abs(g).max()))
        H = f.hess(x)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        np.testing.assert_allclose(H, calculus.hessian(f, x, h=1e-6, grad=f.grad), rtol=1e-5,
                                   atol=1e-5 * (1 + np.abs(H).max()))


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_batched_points_match_pointwise(f):
    X = rng.uniform(-1, 1, (3, 4, f.dim))
    V, G, H = f.value(X), f.grad(X), f.hess(X)
    assert V.shape == (3, 4) and G.shape == (3, 4, f.dim) and H.shape == (3, 4, f.dim, f.dim)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(V[i, j], f.value(X[i, j]), rtol=1e-12)
            np.testing.assert_allclose(G[i, j], f.grad(X[i, j]), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(H[i, j], f.hess(X[i, j]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("f", [o for o in OBJECTIVES if hasattr(o, "minimizer")], ids=repr)
def test_minimizers_are_stationary(f):
    x = f.minimizer
    assert np.linalg.norm(f.grad(x)) < 1e-9
    assert np.all(np.linalg.eigvalsh(f.hess(x)) > 0)


def test_himmelblau_and_doublewell_minimizers():
    for f in (F.Himmelblau(), F.DoubleWell(3.0)):
        for x in f.minimizers:
            assert f.value(x) < 1e-10 and np.linalg.norm(f.grad(x)) < 1e-4


def test_quadratic_constructors():
    q = F.Quadratic.from_condition_number(100.0, n=5, L=2.0, seed=3)
    assert q.L == pytest.approx(2.0) and q.mu == pytest.approx(0.02) and q.kappa == pytest.approx(100.0)
    q2 = F.Quadratic.from_eigenvalues([1.0, 4.0])
    np.testing.assert_allclose(q2.A, np.diag([1.0, 4.0]))
    x = rng.standard_normal(5)
    assert q.value(x) == pytest.approx(0.5 * x @ q.A @ x)
    with pytest.raises(ValueError, match="symmetric"):
        F.Quadratic([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="square"):
        F.Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match="condition number"):
        F.Quadratic.from_condition_number(0.5)
    with pytest.raises(ValueError, match="positive definite"):
        _ = F.Quadratic(np.diag([1.0, -1.0])).minimizer


def test_values_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    for f in OBJECTIVES[:7]:
        x = rng.uniform(-1, 1, f.dim)
        t = torch.tensor(x, requires_grad=True)
        v = f.value(t)
        v.backward()
        assert v.item() == pytest.approx(float(f.value(x)), rel=1e-12)
        np.testing.assert_allclose(t.grad.numpy(), f.grad(x), rtol=1e-10, atol=1e-10)


def test_least_squares_minibatch_gradient_is_unbiased():
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    f = F.LeastSquares(X, y)
    w = rng.standard_normal(3)
    # averaging the batch gradient over all batches of one sample gives the full gradient exactly
    np.testing.assert_allclose(np.mean([f.batch_grad(w, [i]) for i in range(12)], axis=0), f.grad(w))
    np.testing.assert_allclose(f.batch_grad(w, np.arange(12)), f.grad(w))
    np.testing.assert_allclose(f.grad(f.minimizer), 0, atol=1e-12)
    with pytest.raises(ValueError, match="batch_size"):
        f.sampler(0, rng)


def test_on_grid_needs_two_dimensions():
    with pytest.raises(ValueError, match="2-D"):
        F.Rosenbrock(n=3).on_grid((-1, 1), (-1, 1))


def test_logistic_regression_curvature_bounds():
    X = rng.standard_normal((50, 4))
    f = F.LogisticRegression(X, np.sign(rng.standard_normal(50)), l2=0.2)
    for _ in range(20):
        lam = np.linalg.eigvalsh(f.hess(rng.standard_normal(4) * 3))
        assert f.mu - 1e-12 <= lam[0] and lam[-1] <= f.L + 1e-12
    with pytest.raises(ValueError, match="-1 or \\+1"):
        F.LogisticRegression(X, np.arange(50.0))


def test_level_set_points_lie_on_the_level_set():
    f = F.Himmelblau()
    pieces = F.level_set(f, 30.0, xlim=(-5, 5), ylim=(-5, 5))
    pts = np.concatenate(pieces)
    assert len(pieces) >= 2 and len(pts) > 1000
    np.testing.assert_allclose(f.value(pts), 30.0, atol=1e-8)
    steps = np.linalg.norm(np.diff(pieces[0], axis=0), axis=1)
    assert steps.max() < 0.0105  # resampled along the curve, no jumps
