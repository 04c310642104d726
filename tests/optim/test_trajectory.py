"""The runner and the gradient-descent rules."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import functions as F
from dlopt import linesearch, rules


def test_gd_rule_is_x_minus_lr_grad_on_numpy_and_torch():
    torch = pytest.importorskip("torch")
    x, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    rules.gd(x, g, {}, lr=0.1)
    np.testing.assert_allclose(x, [0.95, -2.4])
    t = torch.tensor([1.0, -2.0], dtype=torch.float64)
    rules.gd(t, torch.tensor([0.5, 4.0], dtype=torch.float64), {}, lr=0.1)
    np.testing.assert_allclose(t.numpy(), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        rules.gd(x, g, {}, lr=-1)


def test_normalized_gd_takes_steps_of_length_lr():
    x = np.array([3.0, 4.0])
    rules.normalized_gd(x, np.array([3.0, 4.0]), {}, lr=0.5)
    np.testing.assert_allclose(x, [3.0 - 0.3, 4.0 - 0.4])
    y = np.array([1.0, 1.0])
    rules.normalized_gd(y, np.zeros(2), {}, lr=0.5)  # stationary: stays
    np.testing.assert_array_equal(y, [1.0, 1.0])


def test_run_records_a_consistent_trajectory():
    f = F.Quadratic.from_condition_number(10.0, n=3, seed=0, b=[1.0, 2.0, 3.0])
    t = dlopt.run(rules.gd, f, np.ones(3), steps=50, lr=1 / f.L)
    assert t.xs.shape == (51, 3) and t.values.shape == (51,) and t.lrs.shape == (50,)
    for k in (0, 10, 50):
        assert t.values[k] == pytest.approx(f.value(t.xs[k]))
        assert t.grad_norms[k] == pytest.approx(np.linalg.norm(f.grad(t.xs[k])))
    assert np.all(np.diff(t.values) < 0)
    np.testing.assert_allclose(t.xs[1], np.ones(3) - f.grad(np.ones(3)) / f.L)


def test_run_stops_on_tolerance_and_on_divergence():
    f = F.Quadratic.from_eigenvalues([1.0, 10.0])
    t = dlopt.run(rules.gd, f, [1.0, 1.0], steps=10_000, lr=0.1, tol=1e-8)
    assert t.converged and t.steps < 10_000 and t.grad_norms[-1] <= 1e-8
    d = dlopt.run(rules.gd, f, [1.0, 1.0], steps=10_000, lr=0.25)  # 0.25 > 2/L = 0.2
    assert d.diverged and d.steps < 10_000


def test_run_with_schedule_and_oracle():
    f = F.Quadratic.from_eigenvalues([1.0, 2.0])
    t = dlopt.run(rules.gd, f, [1.0, 1.0], steps=5, lr=lambda k: 0.1 / (k + 1))
    np.testing.assert_allclose(t.lrs, 0.1 / np.arange(1, 6))
    calls = []
    oracle = lambda x, k: calls.append(k) or f.grad(x)  # noqa: E731
    dlopt.run(rules.gd, f, [1.0, 1.0], steps=4, lr=0.1, grad=oracle)
    assert calls == [0, 1, 2, 3]


def test_run_with_line_search():
    f = F.Quadratic.from_condition_number(30.0, n=2, seed=2)
    t = dlopt.run(rules.gd, f, [1.0, 1.0], steps=30, line_search=linesearch.ExactQuadratic())
    # exact line search: consecutive gradients are orthogonal
    g = [f.grad(x) for x in t.xs[:6]]
    for a, b in zip(g, g[1:]):
        assert abs(a @ b) < 1e-10 * (np.linalg.norm(a) * np.linalg.norm(b))
    with pytest.raises(ValueError, match="steepest descent"):
        dlopt.run(rules.normalized_gd, f, [1.0, 1.0], line_search=linesearch.ExactQuadratic())


@pytest.mark.parametrize("bad", [dict(x0=[1.0, 2.0, 3.0]), dict(x0=[np.nan, 0.0]), dict(steps=-1)])
def test_run_rejects_bad_input(bad):
    kw = dict(x0=[1.0, 2.0], steps=3)
    kw.update(bad)
    with pytest.raises(ValueError):
        dlopt.run(rules.gd, F.Rosenbrock(), **kw)


def test_seed_and_device():
    torch = pytest.importorskip("torch")
    dlopt.seed(5)
    a = (np.random.rand(), torch.rand(1).item())
    dlopt.seed(5)
    assert a == (np.random.rand(), torch.rand(1).item())
    assert dlopt.device().type in ("cpu", "cuda")


def test_plots_draw_without_error():
    import matplotlib

    matplotlib.use("Agg")
    from dlopt import plots

    f = F.Rosenbrock()
    ax = plots.contour(f, xlim=(-2, 2), ylim=(-1, 3))
    t = dlopt.run(rules.gd, f, [-1.5, 2.0], steps=20, lr=1e-3)
    plots.path(ax, t, label="GD")
    assert len(ax.lines) >= 2
    ax2 = plots.loss_curves({"GD": t})
    assert ax2.get_yscale() == "log"
