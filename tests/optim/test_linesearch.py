"""dlopt.linesearch: the Armijo and strong Wolfe conditions hold for every accepted step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlopt import functions
from dlopt.linesearch import (
    Backtracking,
    ExactQuadratic,
    StrongWolfe,
    armijo,
    cubic_interpolate,
    strong_wolfe,
    wolfe_conditions,
)


def random_problems(seed=0):
    """(objective, x, d) triples: random quadratics, Rosenbrock, logistic regression; directions
    -g, perturbed -g and (quasi-)Newton-like -M g, all descent directions."""
    rng = np.random.default_rng(seed)
    out = []
    for trial in range(12):
        n = int(rng.integers(2, 30))
        quad = functions.Quadratic.from_condition_number(10 ** rng.uniform(0, 4), n=n, seed=trial,
                                                         b=rng.standard_normal(n))
        out.append((quad, rng.standard_normal(n) * 3))
        ros = functions.Rosenbrock(n)
        out.append((ros, rng.uniform(-2, 2, n)))
        X = rng.standard_normal((40, n))
        y = np.where(X @ rng.standard_normal(n) + 0.5 * rng.standard_normal(40) > 0, 1.0, -1.0)
        out.append((functions.LogisticRegression(X, y, l2=1e-3), rng.standard_normal(n) * 2))
    triples = []
    for f, x in out:
        g = f.grad(x)
        M = rng.standard_normal((x.size, x.size))
        for d in (-g, -g + 0.5 * np.linalg.norm(g) / math.sqrt(x.size) * rng.standard_normal(x.size),
                  -(M @ M.T / x.size + 0.1 * np.eye(x.size)) @ g):
            if g @ d < 0:
                triples.append((f, x, d))
    return triples


PROBLEMS = random_problems()


def test_property_backtracking_steps_satisfy_armijo():
    checked = 0
    for f, x, d in PROBLEMS:
        g = f.grad(x)
        for eta0, c in ((1.0, 1e-4), (10.0, 0.3), (1e-3, 0.9)):
            eta = Backtracking(eta0=eta0, c=c)(f, x, g, d)
            assert f.value(x + eta * d) <= f.value(x) + c * eta * (g @ d)
            assert armijo(f, x, g, d, eta, c)
            # and it is the first such step of the sequence eta0, eta0/2, ...
            if eta < eta0:
                assert not armijo(f, x, g, d, 2 * eta, c)
            checked += 1
    assert checked > 90


def test_property_strong_wolfe_steps_satisfy_both_conditions():
    checked = 0
    for f, x, d in PROBLEMS:
        g = f.grad(x)
        for eta0, c1, c2 in ((1.0, 1e-4, 0.9), (1e-3, 1e-4, 0.1), (50.0, 0.3, 0.5)):
            ls = StrongWolfe(c1=c1, c2=c2, eta0=eta0, max_iter=50)
            t = ls(f, x, g, d)
            f_t, g_t = f.value(x + t * d), f.grad(x + t * d)
            sufficient, curvature = wolfe_conditions(f.value(x), g @ d, t, f_t, g_t @ d, c1, c2)
            assert sufficient and curvature, (f.name, eta0, t)
            assert f_t <= f.value(x) + c1 * t * (g @ d)  # independent re-check
            assert abs(g_t @ d) <= c2 * abs(g @ d)
            np.testing.assert_allclose(ls.result.data, g_t, rtol=1e-12, atol=1e-12)
            assert ls.evaluations == len(ls.trials) + 1
            checked += 1
    assert checked > 90


def test_strong_wolfe_extrapolates_and_zooms():
    f = functions.Quadratic.from_eigenvalues([1.0])  # φ(t) = ½(1-t)² along d = 1 from x = 0 ... shifted
    f = functions.Quadratic(np.eye(1), b=[1.0])  # minimiser 1
    x, g = np.zeros(1), f.grad(np.zeros(1))
    ls = StrongWolfe(eta0=1e-3, c2=0.1)
    t = ls(f, x, g, -g)
    assert ls.trials[1] > ls.trials[0] * 1.001  # bracketing extrapolated
    assert abs(t - 1.0) <= 0.1
    ls = StrongWolfe(eta0=100.0, c2=0.1)
    t = ls(f, x, g, -g)
    assert abs(t - 1.0) <= 0.1 and ls.trials[-1] < 100  # zoomed back


def test_cubic_interpolate_is_exact_on_cubics():
    # f(x) = x³ - 3x has its local minimum at 1
    f, df = (lambda x: x**3 - 3 * x), (lambda x: 3 * x**2 - 3)
    assert cubic_interpolate(0.0, f(0.0), df(0.0), 2.0, f(2.0), df(2.0)) == pytest.approx(1.0, abs=1e-12)
    assert cubic_interpolate(2.0, f(2.0), df(2.0), 0.0, f(0.0), df(0.0)) == pytest.approx(1.0, abs=1e-12)
    # a quadratic is a cubic too: minimiser of (x - 0.3)²
    q, dq = (lambda x: (x - 0.3) ** 2), (lambda x: 2 * (x - 0.3))
    assert cubic_interpolate(-1.0, q(-1.0), dq(-1.0), 1.0, q(1.0), dq(1.0)) == pytest.approx(0.3, abs=1e-12)
    # clipped to the bounds; midpoint when the cubic has no minimiser
    assert cubic_interpolate(0.0, f(0.0), df(0.0), 2.0, f(2.0), df(2.0), bounds=(1.5, 4.0)) == 1.5
    assert cubic_interpolate(0.0, 0.0, 1.0, 1.0, 1.0, 1.0, bounds=(0.0, 1.0)) == 0.5
    assert cubic_interpolate(0.0, math.inf, math.nan, 1.0, 0.0, -1.0) == 0.5


def test_strong_wolfe_backs_off_from_non_finite_values():
    calls = []

    def phi(t):  # φ(t) = (t-1)², undefined beyond t = 2
        calls.append(t)
        return ((t - 1) ** 2, 2 * (t - 1), None) if t <= 2 else (math.nan, math.nan, None)

    res = strong_wolfe(phi, 10.0, 1.0, -2.0, c2=0.5)
    assert res.success and res.nonfinite and res.t <= 2
    assert abs(2 * (res.t - 1)) <= 0.5 * 2 and (res.t - 1) ** 2 <= 1 - 1e-4 * res.t * 2

    def nan_everywhere(t):
        return math.nan, math.nan, None

    res = strong_wolfe(nan_everywhere, 1.0, 1.0, -1.0, max_iter=25)
    assert not res.success and res.nonfinite and res.t == 0.0 and res.evaluations <= 26


def test_strong_wolfe_reports_failure_instead_of_looping():
    f = functions.Rosenbrock()
    x = np.array([-1.2, 1.0])
    g = f.grad(x)
    with pytest.raises(RuntimeError, match="no acceptable step"):
        StrongWolfe(max_iter=1, c2=0.1)(f, x, g, -g)


def test_existing_api_still_works():
    f = functions.Quadratic.from_eigenvalues([1.0, 10.0])
    x = np.array([1.0, 1.0])
    g = f.grad(x)
    eta = ExactQuadratic()(f, x, g, -g)
    assert eta == pytest.approx((g @ g) / (g @ f.A @ g))
    ls = Backtracking(eta0=1.0, c=1e-4, rho=0.5)
    eta = ls(f, x, g, -g)
    assert armijo(f, x, g, -g, eta) and ls.evaluations == len(ls.trials) + 1


@pytest.mark.parametrize("kw", [dict(c1=0.0), dict(c1=0.5, c2=0.4), dict(c2=1.0), dict(max_iter=0), dict(eta0=-1.0)])
def test_strong_wolfe_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        StrongWolfe(**kw)


def test_strong_wolfe_rejects_ascent_direction():
    f = functions.Rosenbrock()
    x = np.array([-1.2, 1.0])
    with pytest.raises(ValueError, match="descent"):
        StrongWolfe()(f, x, f.grad(x), f.grad(x))
