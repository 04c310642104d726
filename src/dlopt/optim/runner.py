r"""The one loop that applies an update rule: :func:`dlopt.run`.

.. code-block:: python

    traj = dlopt.run(dlopt.rules.gd, f, x0=[-1.5, 2.0], steps=200, lr=1e-3)
    traj.xs        # (steps+1, n) iterates, x0 first
    traj.values    # f at each iterate

Everything the book does with a rule outside ``dlopt.torch`` goes through this function:

- the **oracle** is an objective (``dlopt.functions``; its exact gradient) or any callable
  ``grad(x, k, rng)`` (a mini-batch sampler, a replayed gradient sequence, a preconditioned
  direction, ...); it may hand back a mini-batch *objective* for a stochastic line search, and end
  the run by raising ``StopIteration``;
- ``x0`` may carry **leading batch dimensions**: ``x0`` of shape ``(S, n)`` runs ``S`` independent
  copies side by side (the rules are coordinate-wise, so one call updates every row);
- **every hyperparameter** -- ``lr``, ``beta``, ``betas``, ``weight_decay``, ... -- is a number or
  a schedule ``k -> value`` (:func:`dlopt.optim.schedules.as_schedule`);
- **gradient hooks** ``hook(g, x, k, rng, hp) -> g`` change the gradient before the rule sees it
  (:func:`clip_norm`, :func:`mask`, :func:`gradient_noise`), and ``project`` maps the iterate
  back onto a feasible set after each step;
- ``record=`` names what to keep (iterates, values, gradient norms, step sizes, gradients, the
  rule's state) and ``stop=`` freezes runs that reached a target; the result is one
  :class:`Trajectory`;
- ``state=`` and ``start=`` continue a run where another one ended.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from dlopt.protocols import Objective, Oracle, Rule, Schedule
from dlopt.optim.schedules import as_schedule

__all__ = [
    "Trajectory",
    "run",
    "clip_norm",
    "mask",
    "gradient_noise",
    "as_oracle",
]


@dataclass
class Trajectory:
    """The record of a run (or of many runs side by side).

    ``xs[j]`` is the j-th recorded iterate (``xs[0]`` is the starting point; with ``every=1`` the
    j-th iterate), ``values[j] = f(xs[j])``, ``grad_norms[j] = ‖∇f(xs[j])‖`` (of the true gradient,
    also for stochastic runs) and ``lrs[k]`` the step size used to go from iterate k to k+1. For
    runs stacked along leading batch dimensions these arrays carry the batch dimensions after the
    first axis. Entries not recorded are ``None``; ``trace`` holds the other recorded quantities
    (gradients, entries of the rule's state), one row per step. ``hit`` is the first step at which
    ``stop`` held (per run; ``-1``: never), ``None`` without ``stop``.
    """

    xs: np.ndarray | None
    values: np.ndarray | None = None
    grad_norms: np.ndarray | None = None
    lrs: np.ndarray | None = None
    diverged: Any = False
    converged: bool = False
    hit: np.ndarray | None = None
    trace: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def x(self) -> np.ndarray:
        """The last iterate."""
        if "x" in self.info:
            return self.info["x"]
        assert self.xs is not None
        return self.xs[-1]

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return int(self.info.get("steps", 0 if self.xs is None else len(self.xs) - 1))

    @property
    def escaped(self) -> np.ndarray:
        """Boolean mask of the runs whose stop condition was met."""
        if self.hit is None:
            raise ValueError("this run had no stop condition")
        return self.hit >= 0

    def __repr__(self) -> str:
        status = ("diverged" if np.any(self.diverged) else "converged" if self.converged
                  else "stopped")
        tail = ""
        if self.values is not None and np.ndim(self.values) == 1:
            tail += f", f(x)={self.values[-1]:.6g}"
        if self.grad_norms is not None and np.ndim(self.grad_norms) == 1:
            tail += f", |grad|={self.grad_norms[-1]:.3g}"
        return f"Trajectory({self.steps} steps, {status}{tail})"


# ---------------------------------------------------------------------------------------------
# Oracles and hooks.


def _positional_arity(fn: Callable) -> int:
    """How many positional arguments ``fn`` accepts (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return 3
    n = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 1 << 16
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def as_oracle(oracle: Objective | Oracle | Callable) -> Oracle:
    """The gradient oracle protocol ``grad(x, k, rng) -> array``.

    An objective (anything with a ``grad`` method) gives its exact gradient; a callable taking
    three positional arguments is returned unchanged; a callable ``grad(x, k)`` (the older
    two-argument form) is wrapped.
    """
    if hasattr(oracle, "grad") and callable(oracle.grad):
        exact = oracle.grad
        return lambda x, k, rng: exact(x)
    if not callable(oracle):
        raise TypeError(f"an oracle must be an objective or a callable grad(x, k, rng), got {oracle!r}")
    fn: Any = oracle
    n = _positional_arity(fn)
    if n >= 3:
        return fn
    if n == 2:
        return lambda x, k, rng: fn(x, k)
    raise TypeError("a gradient oracle must accept (x, k, rng)")


def clip_norm(max_norm: float) -> Callable:
    """A gradient hook: ``dlopt.nn.clip_by_norm`` applied to each run's gradient (rescaled to
    Euclidean norm at most ``max_norm``, as ``torch.nn.utils.clip_grad_norm_`` does to a model)."""
    from dlopt.problems.nn import clip_by_norm

    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")

    def hook(g, x, k, rng, hp):
        if np.ndim(g) == 1:
            return clip_by_norm(g, max_norm)
        rows = np.reshape(g, (-1, np.shape(g)[-1]))
        return np.stack([clip_by_norm(r, max_norm) for r in rows]).reshape(np.shape(g))

    return hook


def mask(keep) -> Callable:
    """A gradient hook: ``g * keep``, zero where ``keep`` is false (frozen or pruned weights)."""
    keep = np.asarray(keep, dtype=bool)

    def hook(g, x, k, rng, hp):
        return g * keep

    return hook


def gradient_noise(sigma: float = 0.0, *, temperature=None, cov=None) -> Callable:
    r"""A gradient hook adding Gaussian noise: ``g + σ_k ξ_k`` with fresh standard normal ``ξ_k``
    for every run and step, drawn from the runner's ``rng``.

    ``σ_k = sigma`` (SGD with additive noise; with ``cov``, ``ξ ~ N(0, cov)``), or with
    ``temperature=T`` (a number or one per run) ``σ_k = sqrt(2T/η_k)``, so that every step is a
    Langevin step :math:`x-\eta\nabla f(x)+\sqrt{2\eta T}\,\xi` whatever the step size. A zero step
    (``η_k = 0``, e.g. the start of a warm-up) draws no noise.
    """
    if temperature is not None and np.any(sigma):
        raise ValueError("give either sigma (SGD noise) or temperature (Langevin), not both")
    if np.any(np.asarray(sigma) < 0):
        raise ValueError(f"sigma must be non-negative, got {sigma}")
    if temperature is not None:
        temperature = np.asarray(temperature, dtype=float)
        if np.any(temperature < 0):
            raise ValueError("temperature must be non-negative")
        if temperature.ndim == 1:
            temperature = temperature[:, None]
    chol_t = None if cov is None else np.linalg.cholesky(np.asarray(cov, dtype=float)).T

    def hook(g, x, k, rng, hp):
        eta = hp["lr"]
        s = np.sqrt(2.0 * temperature / eta) if temperature is not None and eta > 0 else sigma
        if eta > 0 and np.any(s):
            xi = rng.standard_normal(np.shape(x))
            g = g + s * (xi if chol_t is None else xi @ chol_t)
        return g

    return hook


# ---------------------------------------------------------------------------------------------
# The loop.

_PER_ITERATE = ("x", "value", "grad_norm")


def _resolve(value, k):
    """A hyperparameter's value at step ``k``: schedules are called, tuples resolved entrywise."""
    if callable(value):
        return value(k)
    if isinstance(value, tuple) and any(callable(v) for v in value):
        return tuple(v(k) if callable(v) else v for v in value)
    return value


def _projection(project):
    if project is None or callable(project):
        return project
    low, high = project
    return lambda Z, _lo=low, _hi=high: np.clip(Z, _lo, _hi, out=Z)


def run(
    rule: Rule | Callable[..., Any],
    oracle: Objective | Oracle | Callable,
    x0: Any = None,
    steps: int = 100,
    *,
    lr: float | Schedule = 0.1,
    objective: Objective | None = None,
    grad: Oracle | Callable | None = None,
    rng: np.random.Generator | None = None,
    hooks: Sequence[Callable] | Callable = (),
    project=None,
    stop: Callable | None = None,
    tol: float | None = None,
    blowup: float | None = 1e12,
    record: Iterable[str] | str | None = None,
    every: int = 1,
    line_search: Callable | None = None,
    progress: bool = False,
    desc: str | None = None,
    state: dict | None = None,
    start: int = 0,
    **hyperparameters,
) -> Trajectory:
    r"""Run ``steps`` iterations of ``rule`` from ``x0``.

    Parameters
    ----------
    rule
        An update rule ``rule(param, grad, state, *, lr, **hyperparameters)``
        (:mod:`dlopt.optim.rules`).
    oracle
        An objective (``value``, ``grad``: its exact gradient is used and values are recorded), or
        a gradient oracle ``grad(x, k, rng)``. A stochastic oracle may also return a mini-batch
        *objective* (anything with ``value`` and ``grad``): the rule gets its gradient at ``x`` and
        ``line_search`` searches along it on that mini-batch (stochastic line search). An oracle
        that raises ``StopIteration`` ends the run before step ``k``.
    x0
        The starting point, shape ``(n,)``, or ``(*batch, n)`` for runs side by side.
    lr, **hyperparameters
        Numbers, or schedules ``k -> value`` called at every step ``k = 0, 1, ...`` (for a tuple
        such as ``betas``, entry by entry).
    objective
        The objective whose values and gradient norms are recorded when ``oracle`` is a stochastic
        oracle (default: ``oracle`` itself when it is an objective).
    grad
        Shorthand for a stochastic oracle with ``oracle`` the objective:
        ``run(rule, f, x0, grad=sampler)`` is ``run(rule, sampler, x0, objective=f)``.
    rng
        The generator handed to the oracle and the hooks (default: a fresh unseeded one).
    hooks
        Gradient hooks ``hook(g, x, k, rng, hp) -> g`` applied in order before the rule (``hp``: the
        step's resolved hyperparameters, ``hp["lr"]`` the step size).
    project
        ``None``, a pair ``(low, high)`` to clip the iterates to, or a function modifying ``x`` in
        place, applied after every step.
    stop
        ``stop(x) -> bool`` (one per run): a run that meets it is frozen and the step recorded in
        ``hit``; the loop ends once every run has stopped (checked after each step).
    tol
        Stop once ``‖∇f(x)‖ ≤ tol`` (single runs with an objective; sets ``converged``).
    blowup
        Stop and flag ``diverged`` once ``|f(x)|`` exceeds this or is not finite, or the gradient
        norm (where it is computed) is not finite (single runs whose values are recorded); ``None``
        never stops.
    record
        What to keep: ``"x"``, ``"value"``, ``"grad_norm"`` (per recorded iterate, every ``every``
        steps and always the last), ``"lr"``, ``"grad"`` (the gradient after the hooks), names of
        entries of the rule's ``state``, or ``"state"`` for all numeric state entries (per step,
        in ``trace``). Default: iterates, values, gradient norms and step sizes with an objective,
        iterates and step sizes without.
    every
        Record the per-iterate quantities every ``every`` steps.
    line_search
        A line search ``line_search(objective, x, g, d)`` choosing the step along ``d = -g`` (it
        overrides ``lr``; steepest descent only), on the objective, or on the mini-batch objective
        the oracle returned.
    state, start
        Continue a run: the rule's state to start from (it is updated in place, and is the
        ``info["state"]`` of the result) and the index of the first step, so that schedules and
        the oracle see ``k = start, start + 1, ...``. ``run(rule, f, t.x, m, state=t.info["state"],
        start=t.steps)`` continues the run ``t`` by ``m`` steps exactly as if it had been longer.
    """
    obj: Any = objective
    orc: Any = oracle
    if orc is None or x0 is None:
        raise ValueError("run() needs an oracle (or objective) and a starting point x0")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if int(start) != start or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start}")
    if grad is not None:
        if obj is not None:
            raise ValueError("give the stochastic oracle either as grad= or as the oracle, not both")
        obj, orc = orc, grad
    if obj is None and hasattr(orc, "grad") and hasattr(orc, "value"):
        obj = orc
    exact = obj is not None and orc is obj
    if line_search is not None:
        from dlopt.optim import rules

        if rule is not rules.gd:
            raise ValueError("a line search chooses the step of steepest descent; use rule=dlopt.rules.gd")
    g_of = as_oracle(orc)
    if not callable(rule):
        raise TypeError(f"rule must be an update rule rule(param, grad, state, *, lr, ...), got {rule!r}")

    x = np.array(x0, dtype=float)
    if x.ndim == 0:
        raise ValueError("x0 must have at least one dimension (the parameters)")
    dim = getattr(obj, "dim", None)
    if obj is not None and isinstance(dim, int) and x.shape[-1] != dim:
        raise ValueError(f"x0 has shape {x.shape}, the objective expects (..., {dim})")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 must be finite")
    batch = x.shape[:-1]
    single = not batch

    if record is None:
        record = ("x", "value", "grad_norm", "lr") if obj is not None else ("x", "lr")
    elif isinstance(record, str):
        record = (record,)
    record = tuple(record)
    if obj is None and ("value" in record or "grad_norm" in record):
        raise ValueError("recording values or gradient norms needs an objective")
    keep = {name: name in record for name in (*_PER_ITERATE, "lr", "grad")}
    state_names = [r for r in record if r not in keep and r != "state"]
    all_state = "state" in record
    if tol is not None and not (single and obj is not None):
        raise ValueError("tol= needs a single run on an objective")
    need_norm = keep["grad_norm"] or tol is not None
    if callable(hooks):
        hooks = (hooks,)
    project = _projection(project)
    rng = np.random.default_rng() if rng is None else rng
    schedules = {"lr": as_schedule(lr), **{name: v for name, v in hyperparameters.items()}}

    def value(z):
        v = obj.value(z)
        return float(v) if single else v

    def norm(g):
        return float(np.linalg.norm(g)) if single else np.linalg.norm(g, axis=-1)

    need_true = obj is not None and (need_norm or exact)
    state = {} if state is None else state
    xs = [x.copy()] if keep["x"] else None
    values = [value(x)] if keep["value"] else None
    g_true = obj.grad(x) if need_true else None
    last_norm: Any = norm(g_true) if need_norm else None
    norms = [last_norm] if keep["grad_norm"] else None
    lrs: list = []
    trace: dict[str, list] = {name: [] for name in state_names}
    if keep["grad"]:
        trace["grad"] = []
    hit: np.ndarray | None = None
    active: np.ndarray | None = None

    def keep_iterate():
        """Record the iterate, its value and its gradient norm (of the gradient at x, last_norm)."""
        if xs is not None:
            xs.append(x.copy())
        if values is not None:
            values.append(value(x))
        if norms is not None:
            norms.append(last_norm)

    if stop is not None:
        hit = np.full(batch, -1, dtype=int)
        active = np.ones(batch, dtype=bool)
        done = np.asarray(stop(x), dtype=bool)
        hit[done], active[done] = 0, False
    diverged = converged = False
    taken = last_recorded = 0

    iterator: Iterable[int] = range(int(start), int(start) + int(steps))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=desc or getattr(rule, "__name__", "run"), leave=False)

    with np.errstate(over="ignore", invalid="ignore"):
        for k in iterator:
            if tol is not None and last_norm <= tol:
                converged = True
                break
            searched = obj
            if exact:
                g: Any = g_true
            else:
                try:
                    g = g_of(x, k, rng)
                except StopIteration:  # the sampler has nothing more to give: end before step k
                    break
                if hasattr(g, "grad") and hasattr(g, "value"):  # a mini-batch objective
                    searched, g = g, g.grad(x)
                g = np.asarray(g, dtype=float)
            hp = {name: _resolve(v, k) for name, v in schedules.items()}
            if line_search is not None:
                if searched is None:
                    raise ValueError("a line search needs an objective (or an oracle that returns "
                                     "mini-batch objectives)")
                hp["lr"] = line_search(searched, x, g, -g)
            for hook in hooks:
                g = hook(g, x, k, rng, hp)
            frozen = None if active is None or single else x[~active].copy()
            rule(x, g, state, **hp)
            taken = k + 1 - start
            if frozen is not None and active is not None and len(frozen):
                x[~active] = frozen  # stopped runs stay where they are
            if project is not None:
                project(x)
            if keep["lr"]:
                lrs.append(hp["lr"])
            if keep["grad"]:
                trace["grad"].append(np.array(g, dtype=float, copy=True))
            for name in state_names:
                trace[name].append(np.array(state[name], dtype=float, copy=True))
            if all_state:
                for key, v in state.items():
                    if key not in state_names and isinstance(v, (int, float, np.ndarray, np.number)):
                        # the rule's step counter is t (unless the rule has a t of its own)
                        name = "t" if key == "step" and "t" not in state else key
                        trace.setdefault(name, []).append(np.array(v, dtype=float, copy=True))
            if need_true:
                g_true = obj.grad(x)
                if need_norm:
                    last_norm = norm(g_true)
            if taken % every == 0 or taken == steps:
                last_recorded = taken
                keep_iterate()
                if single and blowup is not None and values is not None:
                    fx = values[-1]
                    if not np.isfinite(fx) or abs(fx) > blowup or (need_norm and not np.isfinite(last_norm)):
                        diverged = True
                        break
            if stop is not None:
                assert hit is not None and active is not None
                new = active & np.asarray(stop(x), dtype=bool)
                hit[new] = taken
                active &= ~new
                if not active.any():
                    break
        else:
            converged = tol is not None and last_norm <= tol

    if last_recorded != taken:  # stopped early between two records: keep the final iterate
        keep_iterate()
    info = {"rule": getattr(rule, "__name__", repr(rule)), "state": state, "x": x, "steps": taken}
    return Trajectory(
        xs=None if xs is None else np.array(xs),
        values=None if values is None else np.array(values),
        grad_norms=None if norms is None else np.array(norms),
        lrs=np.array(lrs, dtype=float) if keep["lr"] else None,
        diverged=diverged,
        converged=converged,
        hit=hit,
        trace={name: np.array(v) for name, v in trace.items()},
        info=info,
    )
