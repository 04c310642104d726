"""dlopt.calculus: finite-difference derivatives, Taylor models, critical-point classification."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import calculus as C
from dlopt import functions as F

rng = np.random.default_rng(0)


def test_gradient_jacobian_hessian_match_exact_derivatives():
    f = F.Rosenbrock()
    for _ in range(5):
        x = rng.uniform(-1.5, 1.5, 2)
        np.testing.assert_allclose(C.gradient(f, x), f.grad(x), rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(C.jacobian(f.grad, x), f.hess(x), rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(C.hessian(f, x, grad=f.grad), f.hess(x), rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(C.hessian(f, x), f.hess(x), rtol=1e-4, atol=1e-3)
        v = rng.standard_normal(2)
        assert np.isclose(C.directional_derivative(f, x, v), f.grad(x) @ v, rtol=1e-6, atol=1e-5)
        assert C.gradient_error(f, f.grad, x) < 1e-7
        assert C.gradient_error(f, lambda z: 1.01 * f.grad(z), x) > 1e-3


def test_jacobian_shape_of_a_map():
    A = rng.standard_normal((3, 4))
    J = C.jacobian(lambda x: A @ x + np.sin(x[0]), np.zeros(4))
    expected = A.copy()
    expected[:, 0] += 1.0
    np.testing.assert_allclose(J, expected, atol=1e-8)


def test_taylor_models_and_error_orders():
    f = F.Himmelblau()
    x = np.array([0.3, -0.7])
    d = rng.standard_normal(2)
    d /= np.linalg.norm(d)
    assert C.taylor(f, x, 0 * d, order=2) == pytest.approx(f.value(x))
    hs = np.array([1e-1, 5e-2, 2.5e-2])
    e1 = [abs(f.value(x + h * d) - C.taylor(f, x, h * d, 1)) for h in hs]
    e2 = [abs(f.value(x + h * d) - C.taylor(f, x, h * d, 2)) for h in hs]
    s1 = np.polyfit(np.log(hs), np.log(e1), 1)[0]
    s2 = np.polyfit(np.log(hs), np.log(e2), 1)[0]
    assert 1.8 < s1 < 2.2 and 2.7 < s2 < 3.3
    stack = C.taylor(f, x, np.stack([d, 2 * d]), order=2)
    assert stack.shape == (2,)
    with pytest.raises(ValueError):
        C.taylor(f, x, d, order=3)


@pytest.mark.parametrize("H, kind", [
    (np.diag([1.0, 2.0]), "minimum"),
    (np.diag([-1.0, -2.0]), "maximum"),
    (np.diag([1.0, -2.0]), "saddle"),
    (np.diag([1.0, 0.0]), "degenerate"),
    (np.zeros((2, 2)), "degenerate"),
    (np.array([[2.0, 3.0], [3.0, 2.0]]), "saddle"),
])
def test_classify(H, kind):
    assert C.classify(H) == kind


def test_classify_rejects_non_square():
    with pytest.raises(ValueError):
        C.classify(np.zeros((2, 3)))


def test_critical_points_of_himmelblau_and_double_well():
    f = F.Himmelblau()
    pts = C.critical_points(f, xlim=(-5, 5), ylim=(-5, 5), num=21)
    kinds = [C.classify(f.hess(p)) for p in pts]
    assert len(pts) == 9
    assert kinds.count("minimum") == 4 and kinds.count("saddle") == 4 and kinds.count("maximum") == 1
    for m in f.minimizers:
        assert np.min(np.linalg.norm(pts - m, axis=1)) < 1e-5
    g = F.DoubleWell(gamma=2.0)
    pts = C.critical_points(g, xlim=(-2, 2), ylim=(-2, 2))
    np.testing.assert_allclose(pts, [[-1, 0], [0, 0], [1, 0]], atol=1e-10)
    assert [C.classify(g.hess(p)) for p in pts] == ["minimum", "saddle", "minimum"]


def test_monkey_saddle_is_degenerate():
    f = F.MonkeySaddle()
    pts = C.critical_points(f, xlim=(-1, 1), ylim=(-1, 1), num=9)
    assert len(pts) == 1 and np.linalg.norm(pts[0]) < 1e-4
    assert C.classify(f.hess(np.zeros(2))) == "degenerate"
