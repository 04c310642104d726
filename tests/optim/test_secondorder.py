"""dlopt.secondorder and dlopt.minimize: convergence, agreement with scipy, result fields, bad
inputs, non-finite values, and the Hessian approximations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from threadpoolctl import threadpool_limits

import dlopt
from dlopt import functions
from dlopt.secondorder import (
    bfgs_update,
    fd_hessian,
    fd_hvp,
    hessian_diagonal,
    hutchinson_diagonal,
    lbfgs_remember,
    newton_step,
    regularized_newton_step,
    subsampled_hessian,
    truncated_cg,
    two_loop,
)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small matrices: multithreaded BLAS only costs time on a busy 2-core machine."""
    with threadpool_limits(1):
        yield


def quadratic(n=100, kappa=1e4):
    """κ = 1e4, minimiser of order one (b = A x⋆ with x⋆ standard normal)."""
    A = functions.Quadratic.from_condition_number(kappa, n=n, seed=0).A
    f = functions.Quadratic(A, b=A @ np.random.default_rng(1).standard_normal(n), name=f"quadratic κ={kappa:g}")
    return f


PROBLEMS = {
    "rosenbrock-2": (functions.Rosenbrock(2), np.array([-1.2, 1.0])),
    "rosenbrock-100": (functions.Rosenbrock(100), np.zeros(100)),
    "beale": (functions.Beale(), np.array([1.0, 1.0])),
    "powell": (functions.PowellSingular(), functions.PowellSingular().x0),
    "quadratic": (quadratic(), np.zeros(100)),
}
# how close two minimisers found to ‖∇f‖∞ ≤ 1e-9 must be (Powell's Hessian is singular at 0)
X_TOL = {"rosenbrock-2": 1e-6, "rosenbrock-100": 1e-6, "beale": 1e-6, "powell": 2e-2, "quadratic": 1e-4}


def true_minimizer(f):
    return f.minimizer


@pytest.mark.parametrize("method", ["l-bfgs", "bfgs", "newton"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_reaches_gtol_and_agrees_with_scipy(method, name):
    f, x0 = PROBLEMS[name]
    res = dlopt.minimize(f, x0, method=method)
    assert res.success and res.status == 0, res.message
    assert np.max(np.abs(f.grad(res.x))) <= 1e-5
    # tighter: the same minimiser as scipy's L-BFGS-B (and as the known one)
    res = dlopt.minimize(f, x0, method=method, options={"gtol": 1e-9})
    ref = scipy.optimize.minimize(f.value, x0, jac=f.grad, method="L-BFGS-B",
                                  options={"gtol": 1e-9, "ftol": 0.0, "maxiter": 100000, "maxfun": 100000})
    assert np.max(np.abs(res.x - ref.x)) <= X_TOL[name]
    assert np.max(np.abs(res.x - true_minimizer(f))) <= X_TOL[name]


@pytest.mark.parametrize("method", ["newton-cg", "lm", "gd"])
def test_other_methods_converge(method):
    for name in ("rosenbrock-2", "beale", "powell"):
        f, x0 = PROBLEMS[name]
        if method == "gd" and name != "beale":
            continue  # plain gradient descent is far too slow in Rosenbrock's valley
        res = dlopt.minimize(f, x0, method=method)
        assert res.success, (name, res.message)
        assert np.max(np.abs(res.jac)) <= 1e-5
        assert np.max(np.abs(res.x - f.minimizer)) <= 0.05


def test_newton_is_one_step_on_a_quadratic_and_pure_newton_option():
    f, x0 = PROBLEMS["quadratic"]
    for options in ({}, {"line_search": False}):
        res = dlopt.minimize(f, x0, method="newton", options=options)
        assert res.nit == 1 and res.success
        np.testing.assert_allclose(res.x, f.minimizer, rtol=1e-8, atol=1e-8)
    # pure Newton goes to the saddle of the double well when it starts near it; damped does not
    g = functions.DoubleWell(gamma=1.0)
    pure = dlopt.minimize(g, [0.1, 0.3], method="newton", options={"line_search": False})
    damped = dlopt.minimize(g, [0.1, 0.3], method="newton")
    np.testing.assert_allclose(pure.x, [0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(np.abs(damped.x), [1.0, 0.0], atol=1e-6)


def test_result_fields_and_counters():
    f = functions.Rosenbrock()
    calls = {"f": 0, "g": 0, "h": 0}

    def fun(x):
        calls["f"] += 1
        return f.value(x)

    def jac(x):
        calls["g"] += 1
        return f.grad(x)

    def hess(x):
        calls["h"] += 1
        return f.hess(x)

    seen = []
    res = dlopt.minimize(fun, [-1.2, 1.0], jac=jac, hess=hess, method="newton", callback=seen.append,
                         options={"path": True})
    assert set(["x", "fun", "jac", "nit", "nfev", "njev", "nhev", "success", "status", "message"]) <= set(res)
    assert (res.nfev, res.njev, res.nhev) == (calls["f"], calls["g"], calls["h"])
    assert res.nhev == res.nit and len(seen) == res.nit == len(res.path) - 1
    assert res.fun == f.value(res.x) and np.array_equal(res.jac, f.grad(res.x))
    np.testing.assert_array_equal(seen[-1], res.x)
    np.testing.assert_array_equal(res.path[-1], res.x)
    assert res.fun_path[-1] == res.fun and res.grad_norms[-1] == np.max(np.abs(res.jac))
    assert isinstance(res, scipy.optimize.OptimizeResult)

    # jac=True: fun returns (f, g); one call counts one of each
    calls["f"] = 0
    res = dlopt.minimize(lambda x: (fun(x), f.grad(x)), [-1.2, 1.0], jac=True, method="l-bfgs")
    assert res.nfev == res.njev == calls["f"] and res.nhev == 0 and res.success

    # jac=None: central differences, counted in nfev
    res = dlopt.minimize(f.value, [-1.2, 1.0], method="bfgs")
    assert res.success and res.njev == 0 and res.nfev > 4 * res.nit
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-4)

    # args are passed on; hessp is counted in nhev
    A = np.diag([1.0, 4.0])
    res = dlopt.minimize(lambda x, A: 0.5 * x @ A @ x, [1.0, 1.0], args=(A,), jac=lambda x, A: A @ x,
                         hessp=lambda x, p, A: A @ p, method="newton-cg")
    assert res.success and res.nhev > 0 and np.allclose(res.x, 0, atol=1e-8)


def test_status_codes():
    f = functions.Rosenbrock()
    res = dlopt.minimize(f, [-1.2, 1.0], options={"maxiter": 3})
    assert res.status == 1 and not res.success and res.nit == 3 and "iterations" in res.message
    res = dlopt.minimize(f, [-1.2, 1.0], options={"maxiter": 0})
    assert res.status == 1 and res.nit == 0
    res = dlopt.minimize(f, [1.0, 1.0])
    assert res.status == 0 and res.nit == 0 and res.success

    def stop(xk):
        raise StopIteration

    res = dlopt.minimize(f, [-1.2, 1.0], callback=stop)
    assert res.status == 99 and res.nit == 1 and not res.success


@pytest.mark.parametrize("method", ["l-bfgs", "bfgs", "newton", "newton-cg", "lm", "gd"])
def test_non_finite_values_are_reported_not_looped_on(method):
    calls = {"n": 0}
    f = functions.Rosenbrock()

    def fun(x):  # fine for three calls, NaN afterwards
        calls["n"] += 1
        return (f.value(x) if calls["n"] <= 3 else np.nan), f.grad(x)

    res = dlopt.minimize(fun, [-1.2, 1.0], jac=True, hess=f.hess, method=method)
    assert not res.success and res.status in (2, 3), res.message
    assert "non-finite" in res.message or "no decrease" in res.message or "no acceptable" in res.message
    assert calls["n"] <= 80

    res = dlopt.minimize(lambda x: np.nan, [1.0, 2.0], jac=lambda x: np.zeros(2), method=method)
    assert res.status == 3 and not res.success and "not finite" in res.message and res.nfev == 1


def test_line_search_backs_off_from_a_region_where_f_is_undefined():
    f = functions.Quadratic.from_eigenvalues([1.0, 1.0], b=[3.0, 0.0])  # minimiser (3, 0)

    def fun(x):  # +inf beyond x₀ = 3.5: the search must step back
        return (np.inf if x[0] > 3.5 else f.value(x)), f.grad(x)

    res = dlopt.minimize(fun, [0.0, 1.0], jac=True, method="l-bfgs", options={"gtol": 1e-8})
    assert res.success and np.allclose(res.x, [3.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("bad", [
    dict(x0=[np.nan, 1.0]),
    dict(x0=[np.inf, 1.0]),
    dict(x0=[[1.0, 2.0]]),
    dict(x0=[]),
    dict(method="simplex"),
    dict(options={"maxiter": -1}),
    dict(options={"maxiter": 2.5}),
    dict(options={"gtol": -1.0}),
    dict(options={"m": 0}),
    dict(options={"c1": 0.95}),
    dict(options={"tolerance": 1e-3}),
    dict(options={"lr": -1.0}),
    dict(x0=[1.0, 2.0, 3.0]),  # the objective is 2-D
])
def test_bad_inputs_raise_value_error(bad):
    kwargs = {"x0": [-1.2, 1.0], **bad}
    with pytest.raises(ValueError):
        dlopt.minimize(functions.Rosenbrock(), **kwargs)


def test_gradient_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        dlopt.minimize(lambda x: (x @ x, np.ones(3)), [1.0, 2.0], jac=True)
    with pytest.raises(ValueError, match="shape"):
        dlopt.minimize(lambda x: x @ x, [1.0, 2.0], jac=lambda x: 2 * x[:1])
    with pytest.raises(ValueError, match="jac"):
        dlopt.minimize(lambda x: x @ x, [1.0, 2.0], jac="2-point")


# --- the steps ------------------------------------------------------------------------------------


def test_two_loop_equals_the_explicit_bfgs_matrix():
    """The two-loop recursion applies H_k built by BFGS updates from H_0 = γI to the stored pairs."""
    rng = np.random.default_rng(0)
    n, m = 8, 5
    A = functions.Quadratic.from_condition_number(50, n=n, seed=3).A
    S, Y, rho = [], [], []
    gamma = None
    for _ in range(7):  # more pairs than memory: the oldest are dropped
        s = rng.standard_normal(n)
        gamma = lbfgs_remember(S, Y, rho, s, A @ s, m)
    assert len(S) == m and gamma == pytest.approx((S[-1] @ Y[-1]) / (Y[-1] @ Y[-1]))
    H = gamma * np.eye(n)
    for s, y in zip(S, Y):
        H = bfgs_update(H, s, y)
    g = rng.standard_normal(n)
    np.testing.assert_allclose(two_loop(g, S, Y, rho, gamma), -H @ g, rtol=1e-10, atol=1e-12)
    # with no memory it is -γ g
    np.testing.assert_allclose(two_loop(g, [], [], [], 0.5), -0.5 * g)


def test_lbfgs_remember_skips_pairs_without_curvature():
    S, Y, rho = [], [], []
    assert lbfgs_remember(S, Y, rho, np.array([1.0, 0.0]), np.array([-1.0, 0.0]), 3) is None
    assert S == [] and rho == []
    # absolute threshold (torch) skips tiny steps; the relative one (L-BFGS-B) keeps them
    s, y = np.array([1e-6, 0.0]), np.array([1e-6, 0.0])
    assert lbfgs_remember(S, Y, rho, s, y, 3, min_curvature=1e-10) is None
    assert lbfgs_remember(S, Y, rho, s, y, 3, min_curvature=np.finfo(float).eps, relative=True) == 1.0


def test_bfgs_update_secant_symmetric_positive_definite():
    rng = np.random.default_rng(1)
    H = np.eye(4)
    A = functions.Quadratic.from_condition_number(100, n=4, seed=1).A
    for _ in range(6):
        s = rng.standard_normal(4)
        y = A @ s
        H = bfgs_update(H, s, y)
        np.testing.assert_allclose(H @ y, s, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        assert np.linalg.eigvalsh(H)[0] > 0


def test_newton_and_regularized_steps():
    f = functions.Quadratic.from_condition_number(1e3, n=5, seed=2, b=np.arange(5.0))
    x = np.ones(5)
    np.testing.assert_allclose(x + newton_step(f.grad(x), f.A), f.minimizer, rtol=1e-9)
    d = regularized_newton_step(f.grad(x), f.A, 1e8)
    np.testing.assert_allclose(d, -f.grad(x) / 1e8, rtol=1e-4)  # a short gradient step
    np.testing.assert_allclose(regularized_newton_step(f.grad(x), f.A, 0.0), newton_step(f.grad(x), f.A))


def test_truncated_cg():
    f = functions.Quadratic.from_condition_number(100, n=20, seed=4, b=np.ones(20))
    g = f.grad(np.zeros(20))
    d, it = truncated_cg(lambda v: f.A @ v, g, tol=1e-12, maxiter=100)
    np.testing.assert_allclose(d, f.minimizer, rtol=1e-8)
    assert it <= 40
    # CG decreases the quadratic model gᵀd + ½dᵀHd at every iteration
    model = [g @ d + 0.5 * d @ f.A @ d
             for d in (truncated_cg(lambda v: f.A @ v, g, tol=1e-12, maxiter=k)[0] for k in range(1, 6))]
    assert model[0] < 0 and np.all(np.diff(model) < 0)
    # negative curvature at once: steepest descent
    d, it = truncated_cg(lambda v: -v, g, tol=1e-12, maxiter=10)
    np.testing.assert_array_equal(d, -g)


# --- Hessian approximations ----------------------------------------------------------------------


def logistic(m=200, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = np.where(X @ rng.standard_normal(n) + rng.standard_normal(m) > 0, 1.0, -1.0)
    return functions.LogisticRegression(X, y, l2=0.01)


def test_hessian_diagonal_and_fd_hessian():
    for f, x in ((functions.Rosenbrock(5), np.linspace(-1, 1, 5)), (logistic(), np.full(6, 0.3)),
                 (functions.PowellSingular(8), np.arange(8.0) / 4)):
        np.testing.assert_allclose(hessian_diagonal(f, x), np.diag(f.hess(x)), rtol=0, atol=0)
        np.testing.assert_allclose(hessian_diagonal(f.hess, x), np.diag(f.hess(x)))
        np.testing.assert_allclose(fd_hessian(f.grad, x), f.hess(x), rtol=1e-6, atol=1e-6 * np.abs(f.hess(x)).max())


def test_fd_hvp_matches_exact_products():
    rng = np.random.default_rng(0)
    q = quadratic(n=30, kappa=100)
    for f, n in ((functions.Rosenbrock(10), 10), (logistic(), 6), (q, 30), (functions.Beale(), 2)):
        for _ in range(5):
            x, v = rng.uniform(-1, 1, n), rng.standard_normal(n)
            exact = f.hess(x) @ v
            np.testing.assert_allclose(fd_hvp(f, x, v), exact, rtol=1e-6, atol=1e-7 * np.abs(exact).max())
    x, v = rng.standard_normal(30), rng.standard_normal(30)
    np.testing.assert_allclose(fd_hvp(q.grad, x, v, eps=1.0), q.A @ v, rtol=1e-10)  # exact on quadratics
    assert np.array_equal(fd_hvp(q.grad, x, np.zeros(30)), np.zeros(30))


def test_hutchinson_diagonal_is_unbiased():
    H = functions.Quadratic.from_condition_number(10, n=6, seed=5).A
    # the expectation over all 2^n sign vectors is exactly diag(H)
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 6)).reshape(6, -1).T
    np.testing.assert_allclose(np.mean([v * (H @ v) for v in signs], axis=0), np.diag(H), atol=1e-12)
    # the sample mean converges: within 4 standard errors
    samples = 4000
    est = hutchinson_diagonal(lambda v: H @ v, 6, samples=samples, rng=0)
    off = H - np.diag(np.diag(H))
    std_err = np.sqrt((off**2).sum(1) / samples)
    assert np.all(np.abs(est - np.diag(H)) <= 4 * std_err)
    # exact with one sample when H is diagonal
    D = np.diag([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(hutchinson_diagonal(lambda v: D @ v, 3, samples=1, rng=1), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        hutchinson_diagonal(lambda v: v, 3, samples=0)


def test_subsampled_hessian():
    rng = np.random.default_rng(0)
    ls = functions.LeastSquares(rng.standard_normal((120, 5)), rng.standard_normal(120))
    lr = logistic(m=120, n=5)
    w = rng.standard_normal(5)
    for f in (ls, lr):
        np.testing.assert_allclose(subsampled_hessian(f, w, np.arange(f.m)), f.hess(w), rtol=1e-12, atol=1e-14)
        # the average over a partition into equal batches is the full Hessian (unbiasedness)
        batches = rng.permutation(f.m).reshape(6, 20)
        mean = np.mean([subsampled_hessian(f, w, b) for b in batches], axis=0)
        np.testing.assert_allclose(mean, f.hess(w), rtol=1e-12, atol=1e-14)
        one = subsampled_hessian(f, w, batches[0])
        assert not np.allclose(one, f.hess(w))
    with pytest.raises(ValueError):
        subsampled_hessian(ls, w, [])
    with pytest.raises(ValueError):
        subsampled_hessian(functions.Rosenbrock(5), w, [0, 1])


@pytest.mark.parametrize("f", [functions.PowellSingular(), functions.PowellSingular(8), functions.Rastrigin(3)],
                         ids=lambda f: f.name)
def test_new_objectives_derivatives(f):
    """PowellSingular and Rastrigin: gradient and Hessian against finite differences; minimum 0."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.5, 1.5, f.dim)
    h = 1e-6
    fd_grad = np.array([(f.value(x + h * e) - f.value(x - h * e)) / (2 * h) for e in np.eye(f.dim)])
    np.testing.assert_allclose(f.grad(x), fd_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f.hess(x), fd_hessian(f.grad, x), rtol=1e-6, atol=1e-5)
    assert f.value(f.minimizer) == 0 and np.all(f.grad(f.minimizer) == 0)
    X = rng.standard_normal((4, 3, f.dim))  # stacks of points
    assert f.value(X).shape == (4, 3) and f.grad(X).shape == X.shape and f.hess(X).shape == (4, 3, f.dim, f.dim)
    np.testing.assert_allclose(f.hess(X)[1, 2], f.hess(X[1, 2]))
    with pytest.raises(ValueError):
        type(f)(3 if isinstance(f, functions.PowellSingular) else 0)


def test_bfgs_update_equals_the_product_form():
    """The O(n²) rank-one form equals (I − ρsyᵀ) H (I − ρysᵀ) + ρssᵀ and satisfies the secant equation."""
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 40):
        A = rng.standard_normal((n, n))
        H = A @ A.T + np.eye(n)
        s = rng.standard_normal(n)
        y = s + 0.3 * rng.standard_normal(n)
        if y @ s <= 0:
            y = -y
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(s, y)
        new = bfgs_update(H, s, y)
        np.testing.assert_allclose(new, V @ H @ V.T + rho * np.outer(s, s), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(new @ y, s, rtol=1e-10, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(new) > 0)


def test_an_objective_with_value_and_grad_only():
    """An objective-like object without a Hessian (a network's empirical risk) is minimised with
    its own gradient: quasi-Newton methods need no Hessian."""
    from dlopt import nn

    x = np.linspace(-2, 2, 20)[:, None]
    obj = nn.MLP([1, 3, 1], activation="tanh", seed=0).objective(x, np.sin(x[:, 0]))
    res = dlopt.minimize(obj, obj.net.theta, method="bfgs", options={"gtol": 1e-6})
    assert res.success and np.abs(obj.grad(res.x)).max() <= 1e-6
