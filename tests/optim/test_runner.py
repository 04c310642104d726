"""dlopt.run: the one loop that applies a rule (oracles, batches, schedules, hooks, stop, record)."""

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules
from dlopt.optim import runner
from dlopt.schedules import CosineAnnealing, as_schedule


def _reference(rule, f, x0, steps, lr, **hp):
    """The loop written by hand: the contrast dlopt.run must reproduce bit for bit."""
    x, state, xs = np.array(x0, dtype=float), {}, []
    xs.append(x.copy())
    for k in range(steps):
        rule(x, f.grad(x), state, lr=lr(k) if callable(lr) else lr, **hp)
        xs.append(x.copy())
    return np.array(xs)


@pytest.mark.parametrize("rule, hp", [(rules.gd, {}), (rules.heavy_ball, {"beta": 0.7}),
                                      (rules.adam, {"betas": (0.8, 0.99)}),
                                      (rules.nadam, {}), (rules.rmsprop, {"centered": True})])
def test_run_is_the_hand_written_loop(rule, hp):
    f = functions.Rosenbrock()
    lr = CosineAnnealing(2e-3, 150)
    traj = dlopt.run(rule, f, [-1.2, 1.0], 150, lr=lr, **hp)
    ref = _reference(rule, f, [-1.2, 1.0], 150, lr, **hp)
    assert np.array_equal(traj.xs, ref)
    assert np.array_equal(traj.values, [f.value(x) for x in ref])
    assert np.array_equal(traj.grad_norms, [np.linalg.norm(f.grad(x)) for x in ref])
    assert np.array_equal(traj.lrs, [lr(k) for k in range(150)])


def test_batch_rows_are_independent_runs():
    f = functions.Rosenbrock()
    x0 = np.array([[-1.2, 1.0], [0.5, -0.5], [1.5, 2.0]])
    batch = dlopt.run(rules.adam, f, x0, 80, lr=0.01)
    assert batch.xs.shape == (81, 3, 2) and batch.values.shape == (81, 3)
    assert batch.grad_norms.shape == (81, 3)
    for s in range(3):
        single = dlopt.run(rules.adam, f, x0[s], 80, lr=0.01)
        assert np.array_equal(batch.xs[:, s], single.xs)
    # any leading batch shape: (2, 3, n)
    deep = dlopt.run(rules.gd, f, np.stack([x0, x0 + 0.1]), 20, lr=1e-3)
    assert deep.xs.shape == (21, 2, 3, 2)
    assert np.array_equal(deep.xs[:, 0], dlopt.run(rules.gd, f, x0, 20, lr=1e-3).xs)


def test_every_hyperparameter_may_be_a_schedule():
    f = functions.Quadratic(np.diag([1.0, 10.0]))
    beta = lambda k: 0.5 + 0.4 * k / 50  # noqa: E731
    traj = dlopt.run(rules.heavy_ball, f, [1.0, 1.0], 50, lr=0.01, beta=beta)
    x, state = np.array([1.0, 1.0]), {}
    for k in range(50):
        rules.heavy_ball(x, f.grad(x), state, lr=0.01, beta=beta(k))
    assert np.array_equal(traj.x, x)
    # a tuple hyperparameter is resolved entry by entry
    traj = dlopt.run(rules.adam, f, [1.0, 1.0], 30, lr=0.01, betas=(lambda k: 0.5, 0.999))
    assert np.array_equal(traj.x, dlopt.run(rules.adam, f, [1.0, 1.0], 30, lr=0.01, betas=(0.5, 0.999)).x)


def test_nesterov_with_momentum_schedule_is_accelerated_gradient():
    """beta_k = k/(k+3) turns dlopt.rules.nesterov into Nesterov's method for convex problems:
    the look-ahead y_{k+1} = x_{k+1} + k/(k+3) (x_{k+1} - x_k), x_{k+1} = y_k - eta grad f(y_k)."""
    A = np.diag([1.0, 4.0, 25.0])
    grad = functions.Quadratic(A).grad
    eta, x0 = 1 / 25, np.array([1.0, -2.0, 0.5])
    traj = dlopt.run(rules.nesterov, lambda y, k, rng: grad(y), x0, 60, lr=eta,
                     beta=lambda k: k / (k + 3))
    x_prev = y = x0.copy()
    ys = [y]
    for k in range(60):
        x = y - eta * grad(y)
        y = x + k / (k + 3) * (x - x_prev)
        x_prev = x
        ys.append(y)
    np.testing.assert_allclose(traj.xs, np.array(ys), rtol=0, atol=1e-14)
    with pytest.raises(AssertionError):  # a wrong momentum sequence is caught
        bad = dlopt.run(rules.nesterov, lambda y, k, rng: grad(y), x0, 60, lr=eta,
                        beta=lambda k: (k + 1) / (k + 3))
        np.testing.assert_allclose(bad.xs, np.array(ys), rtol=0, atol=1e-14)


def test_oracle_protocol_and_rng():
    f = functions.Rosenbrock()
    seen = []

    def oracle(x, k, rng):
        seen.append(k)
        return f.grad(x) + 0.01 * rng.standard_normal(x.shape)

    a = dlopt.run(rules.gd, oracle, [0.0, 0.0], 10, lr=1e-3, rng=np.random.default_rng(5))
    b = dlopt.run(rules.gd, oracle, [0.0, 0.0], 10, lr=1e-3, rng=np.random.default_rng(5))
    assert seen == list(range(10)) * 2 and np.array_equal(a.xs, b.xs)
    assert a.values is None and a.grad_norms is None  # no objective: nothing to evaluate
    c = dlopt.run(rules.gd, oracle, [0.0, 0.0], 10, lr=1e-3, rng=np.random.default_rng(5), objective=f)
    assert np.array_equal(c.xs, a.xs) and c.values.shape == (11,)
    with pytest.raises(ValueError, match="needs an objective"):
        dlopt.run(rules.gd, oracle, [0.0, 0.0], 3, lr=1e-3, record=("value",))
    with pytest.raises(TypeError, match="oracle"):
        runner.as_oracle(lambda x: x)


def test_hooks_clip_mask_noise():
    f = functions.Rosenbrock()
    x0 = np.array([[-1.5, 2.0], [1.0, 1.0 + 1e-3]])
    t = dlopt.run(rules.gd, f, x0, 5, lr=1e-2, hooks=[runner.clip_norm(1.0)], record=("x", "grad"))
    assert np.all(np.linalg.norm(t.trace["grad"], axis=-1) <= 1.0 + 1e-12)
    assert np.linalg.norm(f.grad(x0[0])) > 1.0  # the clip was active on row 0
    np.testing.assert_allclose(t.trace["grad"][0, 1], f.grad(x0[1]))  # not on row 1
    t = dlopt.run(rules.adam, f, x0, 20, lr=0.05, hooks=runner.mask([True, False]))
    assert np.all(t.xs[:, :, 1] == x0[:, 1]) and np.all(t.xs[-1, :, 0] != x0[:, 0])
    noisy = runner.gradient_noise(2.0)
    a = dlopt.run(rules.gd, f, x0, 10, lr=1e-3, hooks=[noisy], rng=np.random.default_rng(0))
    b = dlopt.run(rules.gd, f, x0, 10, lr=1e-3, hooks=[noisy], rng=np.random.default_rng(0))
    assert np.array_equal(a.xs, b.xs) and not np.array_equal(a.xs, dlopt.run(rules.gd, f, x0, 10, lr=1e-3).xs)
    with pytest.raises(ValueError):
        runner.gradient_noise(1.0, temperature=0.5)
    with pytest.raises(ValueError):
        runner.clip_norm(0.0)


def test_project_stop_and_record():
    f = functions.Rosenbrock()
    x0 = np.array([[-1.5, 2.0], [0.9, 0.8]])
    t = dlopt.run(rules.gd, f, x0, 50, lr=1e-3, project=(-1.0, 1.0))
    assert np.all(np.abs(t.xs[1:]) <= 1.0)
    stop = lambda X: X[..., 0] > 0.95  # noqa: E731
    t = dlopt.run(rules.adam, f, x0, 400, lr=0.01, stop=stop)
    assert t.hit[1] > 0 and stop(t.xs[t.hit[1], 1]) and not stop(t.xs[t.hit[1] - 1, 1])
    assert np.all(t.xs[t.hit[1]:, 1] == t.xs[t.hit[1], 1])  # frozen once stopped
    t = dlopt.run(rules.adam, f, x0[0], 5, lr=0.1, record=("x", "state", "exp_avg"), every=2)
    assert t.xs.shape == (4, 2)  # 0, 2, 4 and the last step 5
    assert t.trace["t"].tolist() == [1, 2, 3, 4, 5] and t.trace["exp_avg"].shape == (5, 2)
    assert np.array_equal(t.trace["exp_avg"][-1], t.info["state"]["exp_avg"])


def test_single_run_stops_on_blowup_and_tol():
    f = functions.Rosenbrock()
    t = dlopt.run(rules.gd, f, [-1.5, 2.0], 500, lr=0.05)
    assert t.diverged and t.steps < 500 and len(t.xs) == len(t.values) == t.steps + 1
    t = dlopt.run(rules.heavy_ball, f, [-1.5, 2.0], 20000, lr=1e-3, tol=1e-3)
    assert t.converged and t.grad_norms[-1] <= 1e-3 < t.grad_norms[-2]
    with pytest.raises(ValueError, match="tol"):
        dlopt.run(rules.gd, f, np.zeros((2, 2)), 5, tol=1e-3)
    with pytest.raises(ValueError, match="steps"):
        dlopt.run(rules.gd, f, [0.0, 0.0], -1)


def test_as_schedule():
    assert as_schedule(0.5)(7) == 0.5 and isinstance(as_schedule(1)(0), float)
    s = CosineAnnealing(1.0, 10)
    assert as_schedule(s) is s
    with pytest.raises(TypeError):
        as_schedule([0.1, 0.2])


def test_protocols_and_py_typed():
    from pathlib import Path

    from dlopt import protocols, schedules

    f = functions.Rosenbrock()
    assert isinstance(f, protocols.Objective) and not isinstance(lambda x: x, protocols.Objective)
    assert isinstance(rules.adam, protocols.Rule)
    assert isinstance(schedules.CosineAnnealing(1.0, 10), protocols.Schedule)
    assert isinstance(runner.as_oracle(f), protocols.Oracle)
    assert (Path(dlopt.__file__).parent / "py.typed").is_file()


def test_stochastic_line_search_on_minibatch_objectives():
    """The oracle may hand back a mini-batch objective: the rule gets its gradient, the line search
    runs on that batch (not on the full objective), and StopIteration ends the run before the step."""
    from dlopt import linesearch

    X, y = np.random.default_rng(0).standard_normal((50, 3)), np.ones(50)
    risk = functions.LeastSquares(X, y)
    ls = linesearch.Backtracking(eta0=1.0)
    searched, batches = [], []

    def minibatch(w, k, rng):
        if k == 7:
            raise StopIteration
        idx = rng.choice(50, 5, replace=False)
        batches.append(functions.LeastSquares(X[idx], y[idx]))
        return batches[-1]

    def search(f, w, g, d):
        searched.append(f)
        return ls(f, w, g, d)

    traj = dlopt.run(rules.gd, minibatch, np.zeros(3), 20, objective=risk, line_search=search,
                     rng=np.random.default_rng(1))
    assert traj.steps == 7 and searched == batches  # each step searched on its own batch
    w = np.zeros(3)
    for batch, eta in zip(batches, traj.lrs):       # the same steps by hand
        w -= eta * batch.grad(w)
    assert np.array_equal(traj.x, w) and np.allclose(traj.values, risk.value(traj.xs))
    with pytest.raises(ValueError, match="line search needs an objective"):
        dlopt.run(rules.gd, lambda w, k, rng: w, np.zeros(3), 2, line_search=search)


def test_state_entries_are_recorded_under_their_names():
    """record="state" keeps every numeric state entry; a rule's own t is not overwritten by its
    step counter (the accelerated method keeps both)."""
    from dlopt import convergence as cv

    f = functions.Quadratic.from_eigenvalues([0.1, 1.0], seed=0)
    traj = dlopt.run(cv.accelerated_gradient, f, [1.0, 1.0], 5, lr=1 / f.L, record="state")
    assert np.array_equal(traj.trace["step"], np.arange(1, 6))
    assert np.allclose(traj.trace["t"], (np.arange(1, 6) + 2) / 2)  # t_{k+1} = (k + 3) / 2
    assert traj.trace["x"].shape == (5, 2)
    adam = dlopt.run(rules.adam, f, [1.0, 1.0], 3, lr=0.1, record="state")
    assert np.array_equal(adam.trace["t"], [1, 2, 3])  # adam's step counter, as before


def test_a_run_continues_from_its_state():
    """run(..., state=t.info["state"], start=t.steps) continues t exactly (the rule's state, the
    schedules' and the oracle's step index)."""
    f = functions.Rosenbrock()
    lr, seen = (lambda k: 1e-2 / (1 + k)), []

    def oracle(x, k, rng):
        seen.append(k)
        return f.grad(x) * (1 + 0.1 * np.sin(k))

    whole = dlopt.run(rules.adam, oracle, [-1.0, 1.0], 15, lr=lr, objective=f)
    first = dlopt.run(rules.adam, oracle, [-1.0, 1.0], 10, lr=lr, objective=f)
    rest = dlopt.run(rules.adam, oracle, first.x, 5, lr=lr, objective=f, state=first.info["state"],
                     start=first.steps)
    assert seen == [*range(15), *range(10), *range(10, 15)]
    assert np.array_equal(np.vstack([first.xs, rest.xs[1:]]), whole.xs) and rest.steps == 5
    assert np.array_equal(rest.lrs, whole.lrs[10:])
    with pytest.raises(ValueError, match="start must be"):
        dlopt.run(rules.gd, f, [0.0, 0.0], 3, start=-1)


def test_a_non_finite_gradient_norm_is_divergence():
    """A single run stops when the gradient norm overflows, even while the value is still finite."""
    class Steep:
        dim = 1

        def value(self, x):
            return float(np.sum(x ** 2))

        def grad(self, x):
            return np.where(np.abs(x) > 1e3, np.inf, 2 * x)

    traj = dlopt.run(rules.gd, Steep(), [1.0], 50, lr=10.0, blowup=np.inf)
    assert traj.diverged and np.isfinite(traj.values[-1]) and not np.isfinite(traj.grad_norms[-1])
    assert traj.steps < 50
