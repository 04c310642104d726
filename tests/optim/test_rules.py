"""dlopt.rules: each rule on numpy arrays reproduces torch.optim's trajectory; validation; NAMSGrad."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules

from _optim_problem import Problem, rel_err

torch = pytest.importorskip("torch")

STEPS = 200

# (rule, torch.optim class name, hyperparameters): every option of every rule at least once.
CASES = [
    (rules.sgd, "SGD", dict(lr=0.05)),
    (rules.sgd, "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (rules.sgd, "SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    (rules.sgd, "SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    (rules.adagrad, "Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    (rules.adagrad, "Adagrad", dict(lr=0.1, maximize=True)),
    (rules.rmsprop, "RMSprop", dict(lr=0.002, centered=True, weight_decay=0.01)),
    (rules.rmsprop, "RMSprop", dict(lr=0.003, centered=True, momentum=0.5)),
    (rules.rmsprop, "RMSprop", dict(lr=0.001, alpha=0.9)),
    (rules.rmsprop, "RMSprop", dict(lr=0.003, momentum=0.9, maximize=True)),
    (rules.adadelta, "Adadelta", dict(weight_decay=0.01)),
    (rules.adadelta, "Adadelta", dict(lr=0.5, rho=0.95, maximize=True)),
    (rules.adam, "Adam", dict(lr=0.01)),
    (rules.adam, "Adam", dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.01)),
    (rules.adam, "Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    (rules.adamw, "AdamW", dict(lr=0.01, amsgrad=True)),
    (rules.adamw, "AdamW", dict(lr=0.01, weight_decay=0.1, eps=1e-6)),
    (rules.nadam, "NAdam", dict(lr=0.01)),
    (rules.nadam, "NAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True, momentum_decay=0.01)),
    (rules.nadam, "NAdam", dict(lr=0.01, weight_decay=0.01, maximize=True)),
    (rules.radam, "RAdam", dict(lr=0.01)),
    (rules.radam, "RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (rules.radam, "RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.01, maximize=True)),
]


def ids(case):
    rule, _, hp = case
    return rule.__name__ + "-" + "-".join(f"{k}={v}" for k, v in hp.items())


@pytest.fixture
def float64_default():
    """torch.optim keeps step and NAdam's mu_product in the default dtype: make it float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def run_numpy(rule, hp, problem, steps=STEPS):
    xs = [x.copy() for x in problem.x0]
    states = [{} for _ in xs]
    for _ in range(steps):
        for x, g, state in zip(xs, problem.grads(xs), states):
            rule(x, g, state, **hp)
    return xs


def run_torch_optim(cls, hp, problem, steps=STEPS):
    params = [torch.tensor(x) for x in problem.x0]
    opt = cls(params, foreach=False, **hp)
    for _ in range(steps):
        for p, g in zip(params, problem.grads([p.numpy() for p in params])):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    return [p.numpy() for p in params]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_numpy_rule_reproduces_torch_optim(case, float64_default):
    rule, name, hp = case
    problem = Problem(maximize=hp.get("maximize", False))
    ours = run_numpy(rule, hp, problem)
    theirs = run_torch_optim(getattr(torch.optim, name), hp, problem)
    assert rel_err(ours, problem.x0) > 1e-2, "the run did not move: the test would be vacuous"
    assert rel_err(ours, theirs) <= 1e-12


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_rule_on_tensors_is_torch_optim_bit_for_bit(case):
    rule, name, hp = case
    problem = Problem(maximize=hp.get("maximize", False))
    params = [torch.tensor(x) for x in problem.x0]
    states = [{} for _ in params]
    for _ in range(STEPS):
        for p, g, state in zip(params, problem.grads([p.numpy() for p in params]), states):
            rule(p, torch.from_numpy(g), state, **hp)
    theirs = run_torch_optim(getattr(torch.optim, name), hp, problem)
    assert rel_err([p.numpy() for p in params], theirs) == 0.0


def test_heavy_ball_is_sgd_momentum_and_the_textbook_recursion():
    problem = Problem()
    hb = run_numpy(rules.heavy_ball, dict(lr=0.05, beta=0.8), problem, steps=50)
    sgd = run_numpy(rules.sgd, dict(lr=0.05, momentum=0.8), problem, steps=50)
    assert rel_err(hb, sgd) <= 1e-12
    # x_{k+1} = x_k - η ∇f(x_k) + β (x_k - x_{k-1}) on a quadratic, written out
    f = functions.Quadratic.from_eigenvalues([1.0, 10.0], seed=0)
    traj = dlopt.run(rules.heavy_ball, f, [1.0, 1.0], steps=30, lr=0.05, beta=0.7)
    prev, x = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    for k in range(30):
        prev, x = x, x - 0.05 * f.grad(x) + 0.7 * (x - prev)
        np.testing.assert_allclose(traj.xs[k + 1], x, rtol=1e-13, atol=1e-13)


def test_nesterov_is_the_textbook_method_at_the_look_ahead_point():
    f = functions.Quadratic.from_eigenvalues([1.0, 10.0], seed=0)
    eta, beta = 0.05, 0.7
    traj = dlopt.run(rules.nesterov, f, [1.0, 1.0], steps=30, lr=eta, beta=beta)
    # textbook: y_k = x_k + β (x_k - x_{k-1}), x_{k+1} = y_k - η ∇f(y_k); the rule holds y_k
    x_prev = x = np.array([1.0, 1.0])
    for k in range(30):
        y = x + beta * (x - x_prev)
        np.testing.assert_allclose(traj.xs[k], y, rtol=1e-13, atol=1e-13)
        x_prev, x = x, y - eta * f.grad(y)
    # and it is torch's SGD(nesterov=True)
    problem = Problem()
    ours = run_numpy(rules.nesterov, dict(lr=0.05, beta=0.9), problem, steps=50)
    sgd = run_numpy(rules.sgd, dict(lr=0.05, momentum=0.9, nesterov=True), problem, steps=50)
    assert rel_err(ours, sgd) <= 1e-12


def test_namsgrad_three_steps_by_hand():
    b1, b2, eps, lr = 0.9, 0.99, 1e-8, 0.1
    x = np.array([1.0, -2.0])
    grads = [np.array([0.5, -1.0]), np.array([2.0, 0.1]), np.array([-0.3, 0.0])]
    state: dict = {}
    m = v = vhat = np.zeros(2)
    expected = x.copy()
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vhat = np.maximum(vhat, v)
        expected = expected - lr * (b1 * m + (1 - b1) * g) / (np.sqrt(vhat) + eps)
        rules.namsgrad(x, g, state, lr=lr, betas=(b1, b2), eps=eps)
        np.testing.assert_allclose(x, expected, rtol=1e-14, atol=1e-15)
    # the hand computation above, step 3 written with literal numbers for the first coordinate
    m1 = [0.05, 0.245, 0.1905]
    v1 = [0.0025, 0.042475, 0.04295025]
    x1 = 1.0
    for t in range(3):
        x1 -= lr * (b1 * m1[t] + (1 - b1) * grads[t][0]) / (np.sqrt(max(v1[: t + 1])) + eps)
    assert abs(x[0] - x1) < 1e-12
    assert state["step"] == 3


def test_namsgrad_second_moment_is_monotone_and_step_is_bounded():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(50)
    state: dict = {}
    lr, eps, b1 = 0.01, 1e-8, 0.9
    previous = np.zeros(50)
    for t in range(200):
        g = rng.standard_normal(50) * (3.0 if t % 17 == 0 else 0.3)
        before = x.copy()
        rules.namsgrad(x, g, state, lr=lr, eps=eps, betas=(b1, 0.999))
        vhat = state["max_exp_avg_sq"]
        assert np.all(vhat >= previous)
        assert np.all(vhat >= state["exp_avg_sq"])
        previous = vhat.copy()
        # |β1 m + (1-β1) g| ≤ max_{s≤t} |g_s|, so each coordinate moves at most lr·max|g|/(√v̂+ε)
        bound = lr * (b1 * np.abs(state["exp_avg"]) + (1 - b1) * np.abs(g)) / (np.sqrt(vhat) + eps)
        assert np.all(np.abs(x - before) <= bound * (1 + 1e-12))


def test_namsgrad_weight_decay_is_l2():
    x, y = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    sx, sy = {}, {}
    g = np.array([0.3, -0.2])
    rules.namsgrad(x, g, sx, lr=0.1, weight_decay=0.5)
    rules.namsgrad(y, g + 0.5 * np.array([1.0, 2.0]), sy, lr=0.1)
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("rule", [rules.adam, rules.adamw, rules.nadam, rules.radam, rules.namsgrad,
                                  rules.adagrad, rules.rmsprop, rules.adadelta, rules.sgd])
def test_runner_smoke_on_rosenbrock(rule):
    f = functions.Rosenbrock()
    hp = {rules.adadelta: dict(lr=1.0), rules.sgd: dict(lr=1e-3), rules.radam: dict(lr=1e-3)}.get(rule, dict(lr=1e-2))
    traj = dlopt.run(rule, f, [-1.0, 1.5], steps=300, **hp)
    assert not traj.diverged
    assert traj.values[-1] < traj.values[0]
    assert traj.info["state"] or rule is rules.sgd


def test_runner_adam_with_a_schedule_solves_a_quadratic():
    f = functions.Quadratic.from_eigenvalues([1.0, 5.0], seed=0, b=[1.0, -1.0])
    traj = dlopt.run(rules.adam, f, [3.0, 3.0], steps=2000, lr=lambda k: 0.1 / np.sqrt(k + 1))
    assert traj.grad_norms[-1] < 1e-3 * traj.grad_norms[0]


INVALID = [
    ("SGD", rules.sgd, dict(lr=-1.0)),
    ("SGD", rules.sgd, dict(lr=0.1, momentum=-0.1)),
    ("SGD", rules.sgd, dict(lr=0.1, weight_decay=-1)),
    ("SGD", rules.sgd, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("SGD", rules.sgd, dict(lr=0.1, nesterov=True)),
    ("Adagrad", rules.adagrad, dict(lr=-0.5)),
    ("Adagrad", rules.adagrad, dict(lr_decay=-1.0)),
    ("Adagrad", rules.adagrad, dict(initial_accumulator_value=-0.1)),
    ("Adagrad", rules.adagrad, dict(eps=-1e-10)),
    ("RMSprop", rules.rmsprop, dict(alpha=-0.9)),
    ("RMSprop", rules.rmsprop, dict(momentum=-0.1)),
    ("RMSprop", rules.rmsprop, dict(eps=-1e-08)),
    ("Adadelta", rules.adadelta, dict(rho=1.5)),
    ("Adadelta", rules.adadelta, dict(weight_decay=-1)),
    ("Adam", rules.adam, dict(betas=(1.0, 0.999))),
    ("Adam", rules.adam, dict(betas=(0.9, -0.1))),
    ("Adam", rules.adam, dict(eps=-1e-08)),
    ("AdamW", rules.adamw, dict(weight_decay=-0.01)),
    ("NAdam", rules.nadam, dict(momentum_decay=-0.1)),
    ("NAdam", rules.nadam, dict(lr=-1.0)),
    ("RAdam", rules.radam, dict(betas=(0.5, 1.0))),
]


@pytest.mark.parametrize("name, rule, hp", INVALID, ids=[f"{n}-{list(h)}" for n, _, h in INVALID])
def test_rules_raise_torch_optim_messages(name, rule, hp):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **hp)
    with pytest.raises(ValueError) as ours:
        rule(np.zeros(2), np.ones(2), {}, **hp)
    assert str(ours.value) == str(theirs.value)


def test_momentum_rules_validate_beta():
    with pytest.raises(ValueError, match="Invalid beta value: -0.5"):
        rules.heavy_ball(np.zeros(2), np.ones(2), {}, lr=0.1, beta=-0.5)
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        rules.nesterov(np.zeros(2), np.ones(2), {}, lr=-0.1)


def test_every_public_rule_is_listed():
    # functions: the one public class, rules.Many (a parameter collection), is not a rule
    public = {n for n, f in vars(rules).items() if inspect.isfunction(f) and not n.startswith("_")
              and getattr(f, "__module__", "") == rules.__name__}
    assert public == set(rules.__all__)
