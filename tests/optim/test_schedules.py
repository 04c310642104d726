"""dlopt.schedules: values, composition, bad arguments, and agreement with torch's schedulers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules
from dlopt import schedules as S

torch = pytest.importorskip("torch")
lrs = torch.optim.lr_scheduler

STEPS = 200
LR = 0.1


def torch_sequence(make_scheduler, steps=STEPS, lr=LR):
    """The lr torch's scheduler sets at steps 0..steps-1 (one optimizer.step() per step)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


CASES = [
    ("step", S.StepDecay(LR, 30, gamma=0.5), lambda o: lrs.StepLR(o, 30, gamma=0.5)),
    ("multistep", S.MultiStepDecay(LR, [20, 70, 150], gamma=0.3),
     lambda o: lrs.MultiStepLR(o, [20, 70, 150], gamma=0.3)),
    ("exponential", S.ExponentialDecay(LR, 0.97), lambda o: lrs.ExponentialLR(o, 0.97)),
    ("cosine", S.CosineAnnealing(LR, STEPS, eta_min=1e-3), lambda o: lrs.CosineAnnealingLR(o, STEPS, eta_min=1e-3)),
    ("cosine-restarts", S.CosineAnnealing(LR, 10, eta_min=1e-3, restarts=True, T_mult=2),
     lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3)),
    ("linear-warmup", S.LinearWarmup(LR, 25, start_factor=0.1),
     lambda o: lrs.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=25)),
    ("linear-decay", S.LinearRamp(LR, 1.0, 0.05, 150),
     lambda o: lrs.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=150)),
    ("polynomial", S.PolynomialDecay(LR, 150, power=2.0), lambda o: lrs.PolynomialLR(o, 150, power=2.0)),
    ("inverse-time", S.InverseTime(LR, gamma=0.1), lambda o: lrs.LambdaLR(o, lambda k: 1 / (1 + 0.1 * k))),
    ("inverse-sqrt", S.InverseSqrt(LR, gamma=0.5), lambda o: lrs.LambdaLR(o, lambda k: (1 + 0.5 * k) ** -0.5)),
    ("warmup-then-cosine",
     S.Sequential([S.LinearWarmup(LR, 20, start_factor=0.01), S.CosineAnnealing(LR, 180)], milestones=[20]),
     lambda o: lrs.SequentialLR(o, [lrs.LinearLR(o, start_factor=0.01, total_iters=20),
                                    lrs.CosineAnnealingLR(o, 180)], milestones=[20])),
    ("product", S.ExponentialDecay(LR, 0.98) * S.LinearWarmup(1.0, 10, start_factor=0.2),
     lambda o: lrs.ChainedScheduler([lrs.ExponentialLR(o, 0.98),
                                     lrs.LinearLR(o, start_factor=0.2, total_iters=10)])),
]


@pytest.mark.parametrize("name,schedule,make", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_scheduler(name, schedule, make):
    expected = torch_sequence(make)
    np.testing.assert_allclose(schedule.values(STEPS), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,schedule,make", CASES, ids=[c[0] for c in CASES])
def test_to_torch_drives_an_optimizer(name, schedule, make):
    got = torch_sequence(lambda o: schedule.to_torch(o))
    np.testing.assert_allclose(got, schedule.values(STEPS), rtol=1e-15, atol=0)
    got = torch_sequence(lambda o: S.TorchScheduler(o, schedule), steps=5)
    np.testing.assert_allclose(got, schedule.values(5), rtol=1e-15, atol=0)


def test_cosine_after_T_max_stays_at_eta_min():
    """Up to T_max as torch; afterwards dlopt stays at eta_min, torch's cosine rises again."""
    ours, theirs = S.CosineAnnealing(LR, 120).values(STEPS), torch_sequence(lambda o: lrs.CosineAnnealingLR(o, 120))
    np.testing.assert_allclose(ours[:121], theirs[:121], rtol=1e-12, atol=1e-15)
    assert np.all(ours[120:] == 0.0) and np.all(np.diff(theirs[120:]) > 0)


def test_values_by_formula():
    assert S.Constant(0.3)(7) == 0.3
    assert S.StepDecay(1.0, 10, 0.5)(25) == 0.25
    assert S.MultiStepDecay(1.0, [3, 5], 0.1)(4) == pytest.approx(0.1)
    c = S.CosineAnnealing(1.0, 10, eta_min=0.1)
    assert c(0) == 1.0 and c(5) == pytest.approx(0.55) and c(10) == pytest.approx(0.1) and c(50) == 0.1
    r = S.CosineAnnealing(1.0, 4, restarts=True)
    assert r(4) == 1.0 and r(2) == pytest.approx(0.5) and r(6) == pytest.approx(0.5)
    w = S.LinearWarmup(2.0, 4)
    assert [w(k) for k in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert S.PolynomialDecay(1.0, 4, power=2)(2) == 0.25 and S.PolynomialDecay(1.0, 4)(9) == 0.0
    rm = S.InverseTime(1.0, gamma=1.0)
    assert [rm(k) for k in range(3)] == [1.0, 0.5, 1 / 3]
    assert S.InverseSqrt(1.0, gamma=1.0)(3) == 0.5
    seq = S.Sequential([S.Constant(1.0), S.Constant(2.0), S.ExponentialDecay(4.0, 0.5)], milestones=[2, 5])
    assert [seq(k) for k in range(7)] == [1.0, 1.0, 2.0, 2.0, 2.0, 4.0, 2.0]
    assert (S.Constant(3.0) * 0.5)(1) == 1.5 and (2 * S.Constant(3.0))(1) == 6.0


def test_robbins_monro_conditions():
    """1/t: the partial sums of η grow like log k (diverge); those of η² converge."""
    eta = S.InverseTime(1.0).values(100_000)
    assert abs((eta.sum() - eta[:100].sum()) - math.log(1000)) < 0.01  # + log 1000 per factor 1000
    assert (eta**2).sum() < math.pi**2 / 6 + 1e-9
    assert abs((eta**2)[:1000].sum() - (eta**2).sum()) < 1.1e-3


def test_schedule_in_dlopt_run():
    f = functions.Quadratic.from_eigenvalues([1.0, 10.0])
    sched = S.StepDecay(0.15, 10, gamma=0.5)
    traj = dlopt.run(rules.gd, f, [1.0, 1.0], steps=30, lr=sched)
    np.testing.assert_array_equal(traj.lrs, sched.values(30))


@pytest.mark.parametrize("make", [
    lambda: S.Constant(-0.1),
    lambda: S.StepDecay(0.1, 0),
    lambda: S.StepDecay(0.1, 2.5),
    lambda: S.StepDecay(0.1, 10, gamma=0.0),
    lambda: S.MultiStepDecay(0.1, [10, 5]),
    lambda: S.ExponentialDecay(0.1, -0.9),
    lambda: S.CosineAnnealing(0.1, 0),
    lambda: S.CosineAnnealing(0.1, 10, eta_min=0.5),
    lambda: S.CosineAnnealing(0.1, 10, restarts=True, T_mult=0),
    lambda: S.LinearRamp(0.1, start_factor=1.5),
    lambda: S.LinearWarmup(0.1, 0),
    lambda: S.PolynomialDecay(0.1, 10, power=-1),
    lambda: S.InverseTime(0.1, gamma=-1),
    lambda: S.Sequential([], []),
    lambda: S.Sequential([S.Constant(0.1), S.Constant(0.2)], []),
    lambda: S.Sequential([S.Constant(0.1), 0.2], [3]),
    lambda: S.Product(S.Constant(0.1), "fast"),
    lambda: S.Constant(0.1)(-1),
    lambda: S.Constant(0.1)(1.5),
    lambda: S.Constant(0.1).to_torch(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), last_epoch=-1)
    and S.TorchScheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), "cosine"),
])
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_repr():
    assert repr(S.StepDecay(0.1, 5)) == "StepDecay(lr=0.1, step_size=5, gamma=0.1)"
