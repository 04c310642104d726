r"""Learning-rate schedules: plain callables ``lr(k) -> float`` of the step index ``k = 0, 1, ...``.

Pass one to :func:`dlopt.run` as ``lr=``, plot it with ``schedule.values(steps)``, or drive a
``torch.optim`` optimizer with it::

    sched = dlopt.schedules.Sequential([LinearWarmup(0.1, 100), CosineAnnealing(0.1, 900)], milestones=[100])
    traj = dlopt.run(dlopt.rules.gd, f, x0, steps=1000, lr=sched)
    scheduler = sched.to_torch(optimizer)      # a torch.optim.lr_scheduler.LRScheduler
    ...; optimizer.step(); scheduler.step()

Where ``torch.optim.lr_scheduler`` has the same schedule the values agree with it:

- ``Constant(lr)`` -- no scheduler;
- ``StepDecay(lr, step_size, gamma)`` -- ``StepLR``;
- ``MultiStepDecay(lr, milestones, gamma)`` -- ``MultiStepLR``;
- ``ExponentialDecay(lr, gamma)`` -- ``ExponentialLR``;
- ``CosineAnnealing(lr, T_max, eta_min)`` -- ``CosineAnnealingLR`` for ``k <= T_max`` (afterwards
  dlopt stays at ``eta_min`` while torch's cosine rises again);
  ``CosineAnnealing(lr, T_0, eta_min, restarts=True, T_mult=...)`` -- ``CosineAnnealingWarmRestarts``;
- ``LinearRamp(lr, start_factor, end_factor, total_iters)`` -- ``LinearLR`` (``LinearWarmup`` is
  the ramp up to ``lr``);
- ``PolynomialDecay(lr, total_iters, power)`` -- ``PolynomialLR``;
- ``Sequential(schedules, milestones)`` -- ``SequentialLR``;
- ``a * b`` (:class:`Product`) -- ``ChainedScheduler`` of factor schedules;
- ``InverseTime(lr, gamma, power)``, ``InverseSqrt`` -- ``LambdaLR(lambda k: (1 + gamma*k)**-power)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "MultiStepDecay",
    "ExponentialDecay",
    "CosineAnnealing",
    "LinearRamp",
    "LinearWarmup",
    "PolynomialDecay",
    "InverseTime",
    "InverseSqrt",
    "Sequential",
    "Product",
    "TorchScheduler",
    "as_schedule",
]


def _positive(name, value, strict=True):
    value = float(value)
    if not (value > 0 if strict else value >= 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'positive' if strict else 'non-negative'} and finite, got {value}")
    return value


def _count(name, value, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _step_index(k) -> int:
    if int(k) != k or k < 0:
        raise ValueError(f"the step index k must be a non-negative integer, got {k}")
    return int(k)


class Schedule:
    """Base class: a schedule is called with the step index ``k`` and returns the step size."""

    def __call__(self, k) -> float:
        return self.value(_step_index(k))

    def value(self, k: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, steps: int) -> np.ndarray:
        """The first ``steps`` values ``[lr(0), ..., lr(steps-1)]``."""
        return np.array([self(k) for k in range(_count("steps", steps, 0))])

    def __mul__(self, other) -> "Product":
        return Product(self, other)

    __rmul__ = __mul__

    def to_torch(self, optimizer, last_epoch: int = -1):
        """A ``torch.optim.lr_scheduler.LRScheduler`` that sets every parameter group's ``lr`` to
        this schedule's value; call its ``step()`` after each ``optimizer.step()``."""
        return TorchScheduler(optimizer, self, last_epoch)

    def _fields(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._fields()})"


class Constant(Schedule):
    r""":math:`\eta_k=\eta`."""

    def __init__(self, lr: float):
        self.lr = _positive("lr", lr, strict=False)

    def value(self, k):
        return self.lr


class StepDecay(Schedule):
    r"""Step decay :math:`\eta_k=\eta\,\gamma^{\lfloor k/s\rfloor}` (``StepLR``)."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = _positive("lr", lr, strict=False)
        self.step_size = _count("step_size", step_size)
        self.gamma = _positive("gamma", gamma)

    def value(self, k):
        return self.lr * self.gamma ** (k // self.step_size)


class MultiStepDecay(Schedule):
    r""":math:`\eta_k=\eta\,\gamma^{\#\{m\in\text{milestones}:\,m\le k\}}` (``MultiStepLR``)."""

    def __init__(self, lr: float, milestones, gamma: float = 0.1):
        self.lr = _positive("lr", lr, strict=False)
        self.milestones = [_count("milestone", m) for m in milestones]
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {self.milestones}")
        self.gamma = _positive("gamma", gamma)

    def value(self, k):
        return self.lr * self.gamma ** sum(m <= k for m in self.milestones)


class ExponentialDecay(Schedule):
    r""":math:`\eta_k=\eta\,\gamma^k` (``ExponentialLR``)."""

    def __init__(self, lr: float, gamma: float):
        self.lr = _positive("lr", lr, strict=False)
        self.gamma = _positive("gamma", gamma)

    def value(self, k):
        return self.lr * self.gamma**k


class CosineAnnealing(Schedule):
    r"""Cosine annealing from :math:`\eta` to :math:`\eta_{\min}` over ``T_max`` steps
    (``CosineAnnealingLR``):

    .. math:: \eta_k=\eta_{\min}+\tfrac12(\eta-\eta_{\min})\big(1+\cos(\pi k/T)\big),\quad k\le T,

    then :math:`\eta_{\min}`. With ``restarts=True`` the cosine restarts from :math:`\eta` after
    each period, the period growing by ``T_mult`` (SGDR, ``CosineAnnealingWarmRestarts``).
    """

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0, restarts: bool = False, T_mult: int = 1):
        self.lr = _positive("lr", lr, strict=False)
        self.T_max = _count("T_max", T_max)
        self.eta_min = _positive("eta_min", eta_min, strict=False)
        if self.eta_min > self.lr:
            raise ValueError(f"eta_min ({eta_min}) must not exceed lr ({lr})")
        self.restarts = bool(restarts)
        self.T_mult = _count("T_mult", T_mult)

    def value(self, k):
        T = self.T_max
        if self.restarts:
            while k >= T:  # position within the current period
                k, T = k - T, T * self.T_mult
        elif k >= T:
            return self.eta_min
        return self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * k / T)) / 2


class LinearRamp(Schedule):
    r"""Linear interpolation of the factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, then constant (``LinearLR``):
    :math:`\eta_k=\eta\,\big(s+(e-s)\min(k,T)/T\big)`. Warm-up when ``s < e``, decay when ``s > e``."""

    def __init__(self, lr: float, start_factor: float = 1 / 3, end_factor: float = 1.0, total_iters: int = 5):
        self.lr = _positive("lr", lr, strict=False)
        for name, value in (("start_factor", start_factor), ("end_factor", end_factor)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _count("total_iters", total_iters)

    def value(self, k):
        s, e, T = self.start_factor, self.end_factor, self.total_iters
        return self.lr * (s + (e - s) * min(k, T) / T)


class LinearWarmup(LinearRamp):
    r"""Linear warm-up from ``start_factor·lr`` (default 0) to ``lr`` over ``warmup_steps`` steps,
    then ``lr``; compose it with a decay by :class:`Sequential`."""

    def __init__(self, lr: float, warmup_steps: int, start_factor: float = 0.0):
        super().__init__(lr, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)


class PolynomialDecay(Schedule):
    r""":math:`\eta_k=\eta\,(1-\min(k,T)/T)^p` (``PolynomialLR``): reaches 0 at ``k = T``."""

    def __init__(self, lr: float, total_iters: int = 5, power: float = 1.0):
        self.lr = _positive("lr", lr, strict=False)
        self.total_iters = _count("total_iters", total_iters)
        self.power = _positive("power", power, strict=False)

    def value(self, k):
        return self.lr * (1 - min(k, self.total_iters) / self.total_iters) ** self.power


class InverseTime(Schedule):
    r""":math:`\eta_k=\eta/(1+\gamma k)^p`. With ``p = 1`` the Robbins--Monro :math:`1/t` decay
    (:math:`\sum\eta_k=\infty`, :math:`\sum\eta_k^2<\infty` for :math:`\tfrac12<p\le1`), with
    ``p = 1/2`` the inverse square root."""

    def __init__(self, lr: float, gamma: float = 1.0, power: float = 1.0):
        self.lr = _positive("lr", lr, strict=False)
        self.gamma = _positive("gamma", gamma, strict=False)
        self.power = _positive("power", power, strict=False)

    def value(self, k):
        return self.lr / (1 + self.gamma * k) ** self.power


class InverseSqrt(InverseTime):
    r""":math:`\eta_k=\eta/\sqrt{1+\gamma k}`."""

    def __init__(self, lr: float, gamma: float = 1.0):
        super().__init__(lr, gamma=gamma, power=0.5)


class Sequential(Schedule):
    r"""Run ``schedules[0]`` until ``milestones[0]``, then ``schedules[1]`` restarted from its own
    step 0, and so on (``SequentialLR``) -- e.g. linear warm-up, then cosine decay."""

    def __init__(self, schedules, milestones):
        self.schedules = list(schedules)
        self.milestones = [_count("milestone", m) for m in milestones]
        if not self.schedules:
            raise ValueError("Sequential needs at least one schedule")
        if not all(callable(s) for s in self.schedules):
            raise ValueError("every entry of schedules must be a schedule (callable lr(k))")
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(f"Sequential needs len(schedules) - 1 = {len(self.schedules) - 1} milestones, "
                             f"got {len(self.milestones)}")
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {self.milestones}")

    def value(self, k):
        start = 0
        for schedule, milestone in zip(self.schedules, self.milestones):
            if k < milestone:
                return float(schedule(k - start))
            start = milestone
        return float(self.schedules[-1](k - start))


class Product(Schedule):
    r"""The product :math:`\eta_k=a(k)\,b(k)` of two schedules, or of a schedule and a constant
    (``schedule * 0.5``); e.g. ``CosineAnnealing(0.1, 1000) * LinearWarmup(1.0, 50)`` warms up the cosine."""

    def __init__(self, a, b):
        for factor in (a, b):
            if not (callable(factor) or isinstance(factor, (int, float))):
                raise ValueError(f"can only multiply schedules and numbers, got {factor!r}")
        self.a, self.b = a, b

    def value(self, k):
        a = self.a(k) if callable(self.a) else self.a
        b = self.b(k) if callable(self.b) else self.b
        return float(a) * float(b)


_torch_class = None


def _torch_scheduler_class():
    """Build the ``LRScheduler`` subclass on first use (so that ``import dlopt`` needs no torch)."""
    global _torch_class
    if _torch_class is None:
        from torch.optim.lr_scheduler import LRScheduler

        class TorchScheduler(LRScheduler):
            """Drive a ``torch.optim`` optimizer with a dlopt schedule: after ``k`` calls of
            ``step()`` every parameter group has ``lr = schedule(k)``."""

            def __init__(self, optimizer, schedule, last_epoch: int = -1):
                if not callable(schedule):
                    raise ValueError(f"schedule must be callable lr(k), got {schedule!r}")
                self.schedule = schedule
                super().__init__(optimizer, last_epoch)

            def get_lr(self):
                lr = float(self.schedule(self.last_epoch))
                return [lr for _ in self.optimizer.param_groups]

            _get_closed_form_lr = get_lr

        _torch_class = TorchScheduler
    return _torch_class


def TorchScheduler(optimizer, schedule, last_epoch: int = -1):  # noqa: N802 - reads like the class
    """``torch.optim.lr_scheduler.LRScheduler`` driven by ``schedule`` (see :meth:`Schedule.to_torch`)."""
    return _torch_scheduler_class()(optimizer, schedule, last_epoch)


def as_schedule(value):
    """A hyperparameter as a schedule ``k -> value``: a callable is returned unchanged, a number
    becomes the constant schedule returning ``float(value)`` (the one place a number turns into a
    schedule; :func:`dlopt.run` calls it for ``lr``)."""
    if callable(value):
        return value
    if isinstance(value, bool) or not np.isscalar(value) and np.ndim(value) != 0:
        raise TypeError(f"a schedule must be a number or a callable k -> value, got {value!r}")
    constant = float(value)
    return lambda k: constant
