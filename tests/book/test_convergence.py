"""dlopt.convergence: the worst-case quadratic, the accelerated gradient rule and the rate bounds."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import calculus, functions, rules, secondorder
from dlopt import convergence as cv


# ------------------------------------------------------------------------------------------------
# WorstCaseQuadratic
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, p, L", [(1, 1, 1.0), (2, 2, 3.0), (7, 5, 2.0), (30, 11, 0.5), (50, 50, 1.0)])
def test_worst_case_matches_its_matrix_form(n, p, L):
    f = cv.WorstCaseQuadratic(n, p=p, L=L)
    A, e1 = f.A, np.eye(n)[0]
    rng = np.random.default_rng(n + p)
    X = rng.standard_normal((4, 3, n))
    expected = L / 4 * (0.5 * np.einsum("...i,ij,...j->...", X, A, X) - X[..., 0])
    assert f.value(X).shape == (4, 3)
    assert np.allclose(f.value(X), expected)
    assert np.allclose(f.grad(X), L / 4 * (X @ A - e1))
    assert f.hess(X).shape == (4, 3, n, n)
    assert np.allclose(f.hess(X[0, 0]), L / 4 * A)
    # A is tridiag(-1, 2, -1) in the first p rows and columns, zero elsewhere
    assert np.allclose(A[:p, :p], 2 * np.eye(p) - np.eye(p, k=1) - np.eye(p, k=-1))
    assert not A[p:].any() and not A[:, p:].any()


def test_worst_case_derivatives_by_finite_differences():
    f = cv.WorstCaseQuadratic(9, p=6, L=2.0)
    x = np.random.default_rng(0).standard_normal(9)
    assert np.allclose(calculus.gradient(f.value, x), f.grad(x), atol=1e-6)
    assert np.allclose(calculus.hessian(f.value, x), f.hess(x), atol=1e-4)


@pytest.mark.parametrize("n, p, L", [(3, 3, 1.0), (10, 4, 2.5), (101, 101, 1.0)])
def test_worst_case_minimiser_minimum_and_spectrum(n, p, L):
    f = cv.WorstCaseQuadratic(n, p=p, L=L)
    x_star = f.minimizer
    assert np.allclose(f.grad(x_star), 0.0, atol=1e-13)
    assert np.isclose(f.value(x_star), f.minimum)
    assert np.isclose(f.minimum, -L / 8 * (1 - 1 / (p + 1)))
    assert np.isclose(x_star @ x_star, p * (2 * p + 1) / (6 * (p + 1)))
    assert np.allclose(x_star, np.linalg.pinv(f.A) @ np.eye(n)[0])   # the minimum-norm minimiser
    lam = np.linalg.eigvalsh(f.hess(x_star))
    assert lam.min() > -1e-12 and lam.max() <= L     # convex and L-smooth
    assert lam.max() > 0.9 * L or p < 5              # and L is nearly attained for large p


def test_worst_case_subspace_minimum():
    f = cv.WorstCaseQuadratic(12, p=9, L=3.0)
    H, g0 = f.hess(np.zeros(12)), f.grad(np.zeros(12))
    assert f.subspace_min(0) == 0.0 == f.value(np.zeros(12))
    for k in range(1, 10):
        z = np.zeros(12)
        z[:k] = np.linalg.solve(H[:k, :k], -g0[:k])
        assert np.isclose(f.value(z), f.subspace_min(k))
    assert np.isclose(f.subspace_min(9), f.minimum)
    assert np.allclose(f.subspace_min(np.arange(3)), [f.subspace_min(j) for j in range(3)])
    with pytest.raises(ValueError):
        f.subspace_min(10)


def test_worst_case_value_accepts_torch():
    torch = pytest.importorskip("torch")
    f = cv.WorstCaseQuadratic(6, p=4, L=2.0)
    x = np.random.default_rng(1).standard_normal(6)
    xt = torch.tensor(x, requires_grad=True)
    value = f.value(xt)
    value.backward()
    assert np.isclose(value.item(), f.value(x))
    assert np.allclose(xt.grad.numpy(), f.grad(x))


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=3, p=4), dict(n=3, p=0), dict(n=3, L=0.0)])
def test_worst_case_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        cv.WorstCaseQuadratic(**kwargs)


def test_span_methods_stay_in_the_krylov_subspace():
    """From x0 = 0, k steps of GD / heavy ball / CG have non-zero coordinates only among the first k."""
    f = cv.WorstCaseQuadratic(40)
    for k in (1, 5, 17):
        xs = dlopt.run(rules.heavy_ball, f, np.zeros(40), steps=k, lr=0.7, beta=0.5).xs
        assert all(not x[j:].any() for j, x in enumerate(xs))
        d, _ = secondorder.truncated_cg(lambda v: f.hess(np.zeros(40)) @ v, f.grad(np.zeros(40)), 0.0, k)
        assert not d[k:].any()
        assert np.isclose(f.value(d), f.subspace_min(k))   # CG minimises f over the subspace


# ------------------------------------------------------------------------------------------------
# accelerated_gradient
# ------------------------------------------------------------------------------------------------
def reference_agd(grad, x0, lr, steps, fista=False):
    """The textbook two-sequence form, written independently of the rule."""
    x_prev = x = y = np.array(x0, dtype=float)
    t = 1.0
    out = [x.copy()]
    for k in range(steps):
        x_prev, x = x, y - lr * grad(y)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2 if fista else (k + 3) / 2
        y = x + (t - 1) / t_next * (x - x_prev)
        t = t_next
        out.append(x.copy())
    return np.array(out)


def run_rule(f, x0, steps, lr, t_sequence="linear"):
    y, state, xs, ys = np.array(x0, dtype=float), {}, [np.array(x0, dtype=float)], [np.array(x0, dtype=float)]
    for _ in range(steps):
        cv.accelerated_gradient(y, f.grad(y), state, lr=lr, t_sequence=t_sequence)
        xs.append(state["x"].copy())
        ys.append(y.copy())
    return np.array(xs), np.array(ys), state


@pytest.mark.parametrize("t_sequence", ["linear", "fista"])
def test_accelerated_gradient_matches_the_textbook_form(t_sequence):
    f = functions.Quadratic.from_condition_number(50.0, n=6, seed=3, b=np.arange(6.0))
    x0 = np.random.default_rng(2).standard_normal(6)
    xs, ys, state = run_rule(f, x0, 60, 1 / f.L, t_sequence)
    assert np.allclose(xs, reference_agd(f.grad, x0, 1 / f.L, 60, fista=t_sequence == "fista"),
                       rtol=1e-12, atol=1e-12)
    assert state["step"] == 60
    if t_sequence == "linear":
        assert state["t"] == (60 + 2) / 2
        # y_k = x_k + (k-1)/(k+2) (x_k - x_{k-1})
        k = np.arange(1, 61)
        assert np.allclose(ys[1:], xs[1:] + ((k - 1) / (k + 2))[:, None] * (xs[1:] - xs[:-1]))
    else:
        assert state["t"] >= (60 + 2) / 2


def test_accelerated_gradient_first_steps_are_gradient_steps():
    """t_0 = 1 and t_1 = 3/2 (linear): the first momentum coefficient is 0, so x_1 and y_1 = x_1
    are one gradient step from x_0."""
    f = cv.WorstCaseQuadratic(5)
    y, state = np.zeros(5), {}
    cv.accelerated_gradient(y, f.grad(y), state, lr=1.0)
    assert np.allclose(y, -f.grad(np.zeros(5))) and np.allclose(state["x"], y)


def test_nesterov_with_a_changing_beta_is_accelerated_gradient():
    """rules.nesterov keeps the previous momentum (state["beta"]), so dlopt.run with the schedule
    beta_k = k/(k+3) gives the look-ahead points y_k of accelerated_gradient (to rounding)."""
    f = functions.Quadratic.from_condition_number(20.0, n=4, seed=0)
    x0 = np.ones(4)
    xs, ys, _ = run_rule(f, x0, 30, 1 / f.L)
    traj = dlopt.run(rules.nesterov, f, x0, 30, lr=1 / f.L, beta=lambda k: k / (k + 3))
    np.testing.assert_allclose(traj.xs, ys, rtol=1e-12, atol=1e-12)
    frozen = dlopt.run(rules.nesterov, f, x0, 30, lr=1 / f.L, beta=0.5)   # a constant momentum
    assert not np.allclose(frozen.xs, ys, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("t_sequence", ["linear", "fista"])
def test_accelerated_gradient_meets_its_bound(t_sequence):
    rng = np.random.default_rng(5)
    problems = [cv.WorstCaseQuadratic(300, L=2.0)]
    for seed in range(3):   # convex quadratics with zero eigenvalues
        lam = np.r_[np.zeros(2), np.geomspace(1e-5, 1.0, 8)]
        A = functions.Quadratic.from_eigenvalues(lam, seed=seed).A
        problems.append(functions.Quadratic(A, b=A @ rng.standard_normal(10)))
    for f in problems:
        x0 = np.zeros(f.dim) if isinstance(f, cv.WorstCaseQuadratic) else 3 * rng.standard_normal(f.dim)
        x_star = f.minimizer if isinstance(f, cv.WorstCaseQuadratic) else x0 - np.linalg.pinv(f.A) @ f.grad(x0)
        R = np.linalg.norm(x0 - x_star)
        xs, _, _ = run_rule(f, x0, 500, 1 / f.L, t_sequence)
        k = np.arange(1, 501)
        gap = f.value(xs[1:]) - f.value(x_star)
        assert np.all(gap <= cv.accelerated_bound(f.L, R, k))
        assert np.all(gap >= -1e-12)


def test_accelerated_gradient_on_torch_tensors():
    torch = pytest.importorskip("torch")
    f = functions.Quadratic.from_condition_number(10.0, n=3, seed=1)
    x0 = np.array([1.0, -2.0, 0.5])
    xs, ys, _ = run_rule(f, x0, 10, 0.5)
    y, state = torch.tensor(x0), {}
    for _ in range(10):
        cv.accelerated_gradient(y, torch.tensor(f.grad(y.numpy())), state, lr=0.5)
    assert np.allclose(y.numpy(), ys[-1]) and np.allclose(state["x"].numpy(), xs[-1])


def test_accelerated_gradient_rejects_bad_arguments():
    with pytest.raises(ValueError):
        cv.accelerated_gradient(np.zeros(2), np.zeros(2), {}, lr=-1.0)
    with pytest.raises(ValueError):
        cv.accelerated_gradient(np.zeros(2), np.zeros(2), {}, lr=0.1, t_sequence="quadratic")


# ------------------------------------------------------------------------------------------------
# bounds
# ------------------------------------------------------------------------------------------------
def test_bound_formulas():
    assert cv.stationarity_bound(2.0, 3.0, 4) == 3.0
    assert cv.gd_convex_bound(2.0, 3.0, 3) == 3.0
    assert cv.accelerated_bound(2.0, 3.0, 2) == 4.0
    assert np.isclose(cv.krylov_lower_bound(2.0, 4.0, 1), 3 * 2 * 16 / (32 * 4))
    assert np.isinf(cv.stationarity_bound(1.0, 1.0, 0)) and np.isinf(cv.gd_convex_bound(1.0, 1.0, 0))
    k = np.arange(1, 6)
    assert cv.gd_convex_bound(1.0, 1.0, k).shape == (5,)
    assert np.allclose(cv.accelerated_bound(1.0, 1.0, k) / cv.krylov_lower_bound(1.0, 1.0, k), 64 / 3)


def test_sgd_convex_bound():
    R, G, T = 2.0, 3.0, 400
    eta = R / (G * np.sqrt(T))
    b = cv.sgd_convex_bound(R, G, np.full(T, eta))
    assert b.shape == (T,) and np.isclose(b[-1], R * G / np.sqrt(T))
    t = np.arange(1, T + 1)
    assert np.allclose(b, (R**2 + G**2 * t * eta**2) / (2 * t * eta))
    # eta = R / (G sqrt T) minimises the bound at T over constant steps
    others = [cv.sgd_convex_bound(R, G, np.full(T, c * eta))[-1] for c in (0.5, 0.9, 1.1, 2.0)]
    assert min(others) > b[-1]
    # decreasing steps: partial sums
    lrs = 1 / np.sqrt(np.arange(1, 11))
    assert np.isclose(cv.sgd_convex_bound(R, G, lrs)[4],
                      (R**2 + G**2 * np.sum(lrs[:5] ** 2)) / (2 * np.sum(lrs[:5])))
    for bad in ([], [0.1, 0.0], [-1.0]):
        with pytest.raises(ValueError):
            cv.sgd_convex_bound(R, G, bad)


def test_gd_bounds_hold_on_runs():
    rng = np.random.default_rng(3)
    # non-convex: Rastrigin, L = 2 + 4 pi^2 A, f* = 0
    f = functions.Rastrigin(n=3, A=1.0)
    L = 2 + 4 * np.pi**2
    t = dlopt.run(rules.gd, f, rng.uniform(-3, 3, 3), steps=300, lr=1 / L)
    k = np.arange(1, 301)
    assert np.all(np.minimum.accumulate(t.grad_norms[:-1] ** 2) <= cv.stationarity_bound(L, t.values[0], k))
    # convex: the worst-case quadratic from 0
    f = cv.WorstCaseQuadratic(200)
    t = dlopt.run(rules.gd, f, np.zeros(200), steps=300, lr=1 / f.L)
    R = np.linalg.norm(f.minimizer)
    assert np.all(t.values[1:] - f.minimum <= cv.gd_convex_bound(f.L, R, k))


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_lower_bound_holds_for_gd_and_is_met_by_cg(k):
    f = cv.WorstCaseQuadratic(2 * k + 1)
    R = np.linalg.norm(f.minimizer)
    lb = cv.krylov_lower_bound(f.L, R, k)
    gap_gd = dlopt.run(rules.gd, f, np.zeros(f.dim), steps=k, lr=1 / f.L).values[-1] - f.minimum
    assert gap_gd >= f.subspace_min(k) - f.minimum >= lb
    d, _ = secondorder.truncated_cg(lambda v: f.hess(d0) @ v, f.grad(d0 := np.zeros(f.dim)), 0.0, k)
    assert np.isclose(f.value(d) - f.minimum, f.subspace_min(k) - f.minimum)
    assert f.subspace_min(k) - f.minimum <= 1.6 * lb
