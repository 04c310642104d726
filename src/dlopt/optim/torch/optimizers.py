"""Drop-in ``torch.optim`` classes, each a thin shell over one rule of :mod:`dlopt.rules`.

The split is TorchOpt's: the update formula lives once, in a function of :mod:`dlopt.rules`; the
class here only does the bookkeeping ``torch.optim.Optimizer`` already knows (parameter groups,
``state``, ``state_dict``, ``zero_grad``, closures) and, in :meth:`step`, calls the rule on every
parameter that has a gradient. There is no second copy of any update formula.

Three ways to run a step, all the same rule:

- **for-loop** (``foreach=False``): the rule on each parameter in turn, with the operations of
  ``torch.optim``'s single-tensor implementations; bit for bit ``torch.optim(foreach=False)``.
- **foreach** (``foreach=True``): the rule once on the list of a group's parameters (split, as
  torch does, by device and dtype, and by step count); the list's arithmetic and the rules' small
  helpers are ``torch._foreach_*`` ops in the order of ``torch.optim``'s multi-tensor
  implementations, bit for bit ``torch.optim(foreach=True)``. ``foreach=None`` (the default)
  decides as torch does: foreach for CUDA tensors, the for-loop on CPU (where ``_foreach`` ops
  are a loop over tensors, and a pass over memory per op costs more than the per-tensor loop
  that stays in cache).
- **compiled** (``compile=True``, keyword only, not in ``torch.optim``): the step of a whole
  parameter group traced once (the rule tensor by tensor, one graph per group) and compiled by
  ``torch.compile`` into fused loops, one pass over memory per tensor; ``compile="reduce-overhead"``
  adds CUDA graphs on CUDA. The first step runs eagerly (it creates the state), the second
  compiles (tens of seconds on a small CPU, growing with the number of tensors); the step counter
  and ``lr`` are tensor inputs of the compiled step, so later steps and learning-rate schedules
  do not recompile, but a changed group (a tensor added, a new shape or dtype, a state entry
  created later) does, and after ``torch._dynamo.config.cache_size_limit`` layouts dynamo falls
  back to eager. Inside the compiled step the bias corrections are computed from the float32
  step tensor (like ``torch.optim``'s ``capturable`` path), so trajectories agree with eager mode
  to float32 rounding, not bit for bit. ``RAdam``'s branch on :math:`\\rho_t > 5` breaks the graph
  there. CUDA graphs need stable addresses: the parameters, gradients and state must stay the
  same tensors between steps (``zero_grad(set_to_none=False)``), and inductor skips the graph
  (with a message) where the step counters, which dlopt keeps on the CPU as torch.optim does, make
  it unsafe.

Differences from ``torch.optim`` (all explicit):

- ``fused=True``, ``capturable=True`` and ``differentiable=True`` are rejected with a
  ``ValueError`` (``compile=True`` is this package's fused path).
- sparse gradients raise ``RuntimeError("<Class> does not support sparse gradients")`` and
  complex parameters ``RuntimeError("<Class> does not support complex parameters")``.
- after ``load_state_dict`` the scalar states ``step`` and ``mu_product`` are kept as CPU tensors
  of the default scalar dtype (``torch.optim`` casts ``mu_product`` to the parameter's dtype and
  device), so that resuming reproduces an uninterrupted run bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import Optimizer

from dlopt.optim import rules
from dlopt.optim.rules import Many
from dlopt.optim.support import check_hyperparameters, default_foreach, scalar_dtype

__all__ = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam", "RAdam", "NAMSGrad"]


def _apply(rule, params, grads, states, hyperparameters):
    """One step of ``rule`` on every parameter of a group, tensor by tensor (``foreach=False``,
    and what ``compile=True`` compiles)."""
    rule = rule.__wrapped__  # the rule itself: the shell has checked its tensors
    for param, grad, state in zip(params, grads, states):
        rule(param, grad, state, **hyperparameters)


def _apply_many(rule, params, grads, state, hyperparameters):
    """One step of ``rule`` on a list of tensors at once (``foreach=True``): the rule sees
    ``params``, ``grads`` and every state entry that is a list as one :class:`~dlopt.optim.rules.Many`, whose arithmetic
    and helpers are ``torch._foreach_*`` ops.

    ``state`` maps each state name to the list of the tensors' entries; the rule's new entries
    (first step) are left in it for the caller to hand back to the tensors."""
    many = {key: Many(value) if isinstance(value, list) else value for key, value in state.items()}
    rule.__wrapped__(Many(params), Many(grads), many, **hyperparameters)  # tensors checked by the shell
    state.update(many)


def _buckets(params, grads, states):
    """Split a group into lists one foreach call can take: one device and dtype (as torch.optim
    groups them), the same state entries and the same step count (torch.optim keeps one step per
    tensor; a tensor that had no gradient at some steps is behind the others)."""
    buckets: dict = {}
    for p, g, state in zip(params, grads, states):
        step = state.get("step")
        key = (p.device, p.dtype, tuple(state), None if step is None else float(step))
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = ([], [], [])
        bucket[0].append(p)
        bucket[1].append(g)
        bucket[2].append(state)
    return buckets.values()


_compiled_steps: dict = {}


def _compiled(device_type: str, rule, mode="default", layout=None):
    """``torch.compile(_apply)`` for one device type, rule, mode and layout of tensors, built once
    and shared by all optimizers of that rule: the step of up to ``COMPILE_CHUNK`` tensors of a
    group is one graph, and chunks of the same layout (shapes, dtypes, state entries) share it.

    It is the rule traced tensor by tensor, not on lists of tensors: inductor fuses each tensor's
    update into one loop (one pass over memory), and on CUDA ``combo_kernels`` groups the
    tensors' kernels horizontally, which is what the foreach ops would buy. The list form does not
    trace well: dynamo breaks the graph at arithmetic between a list subclass and a 0-d tensor
    (the step count inside a compiled step), and on CPU its lowering makes a pass over memory per
    ``_foreach`` op (measured: 5× ``fused=True`` at 100 tensors × 100k against about 1.1× for
    this form).

    Each (device type, rule, mode, layout) gets its own copy of ``_apply``, hence its own
    compilation cache, so dynamo's limit of entries per function
    (``torch._dynamo.config.cache_size_limit``) is not reached by models with many shapes. The
    chunks bound the compile time: inductor's time grows faster than the size of the graph (1000
    tensors in one graph took more than 10 minutes on a shared 2-core CPU), while 1000 tensors of one shape are
    10 chunks of one layout, compiled once. Inside the compiled step the rules read
    step counters as 0-d tensors (see ``dlopt.rules._read``) and the shell passes ``lr`` as a 0-d
    tensor, so a new step or learning rate is a new input value, not a recompilation. A low
    ``realize_opcount_threshold`` makes inductor compute step-dependent scalars (bias corrections)
    once per step instead of once per element inside the fused loop; on CUDA, ``combo_kernels``
    fuses the per-tensor kernels of a list horizontally. The generated wrapper's size/stride and
    alignment asserts are switched off: with ``dynamic=False`` dynamo's guards already pin every
    input's shape, stride and dtype. ``mode="reduce-overhead"`` adds CUDA graphs (inductor's
    ``triton.cudagraphs``): one replay per step instead of one launch per kernel.
    """
    key = (device_type, rule, mode, layout)
    step = _compiled_steps.get(key)
    if step is None:
        import types

        options: dict[str, Any] = {"realize_opcount_threshold": 4, "size_asserts": False,
                                   "alignment_asserts": False}
        if device_type == "cuda":
            options["combo_kernels"] = True
            if mode == "reduce-overhead":
                options["triton.cudagraphs"] = True
        code = _apply.__code__.replace(co_name=f"_apply_{rule.__name__}_{device_type}_{len(_compiled_steps)}")
        try:
            step = torch.compile(types.FunctionType(code, _apply.__globals__, code.co_name),
                                 dynamic=False, options=options)
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                f"compile=True needs a working torch.compile (a C++ compiler on CPU, triton on "
                f"CUDA); it failed with: {exc!r}. Use compile=False."
            ) from exc
        _compiled_steps[key] = step
    return step


_COMPILE_MODES = (False, True, "default", "reduce-overhead")
COMPILE_CHUNK = 100  # tensors per compiled graph (see _compiled)


class _RuleOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose step calls :attr:`rule` on the parameters of a group:
    tensor by tensor, on lists of tensors (``foreach``), or compiled (``compile``).

    Subclasses set ``rule`` (a function of :mod:`dlopt.rules`), ``hyperparameters`` (the group
    keys passed to it) and ``checked`` (the keys validated in the constructor, in torch's order).
    """

    rule: Any = None
    hyperparameters: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, *, compile: bool | str = False):
        name = type(self).__name__
        lr = defaults["lr"]
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_hyperparameters(**{key: (defaults[key] if key != "nesterov" else
                        (defaults["nesterov"], defaults["momentum"], defaults["dampening"]))
                  for key in self.checked})
        for flag in ("fused", "capturable", "differentiable"):
            if defaults.get(flag):
                raise ValueError(
                    f"dlopt.torch.{name} does not implement {flag}=True; "
                    + ("use compile=True for fused kernels" if flag == "fused" else
                       "use torch.optim for this option")
                )
        if compile not in _COMPILE_MODES:
            raise ValueError(f"compile must be one of {_COMPILE_MODES}, got {compile!r}")
        super().__init__(params, defaults)
        self.compile = "default" if compile is True else compile
        self._lr_inputs: dict[int, torch.Tensor] = {}
        self._compiled_chunks: dict[tuple, Any] = {}

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("compile", False)  # unpickled without __init__
        self.__dict__.setdefault("_lr_inputs", {})
        self.__dict__.setdefault("_compiled_chunks", {})
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        step_dtype = scalar_dtype()
        for p_state in self.state.values():
            for key in ("step", "mu_product"):
                if key in p_state:
                    p_state[key] = torch.as_tensor(p_state[key]).to(device="cpu", dtype=step_dtype)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, states, new = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                if torch.is_complex(p):
                    raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
                params.append(p)
                grads.append(p.grad)
                state = self.state.get(p)  # one hash lookup; .get does not insert
                new.append(state is None)
                states.append({} if state is None else state)
            if not params:
                continue
            hp = {key: group[key] for key in self.hyperparameters}
            if isinstance(hp["lr"], torch.Tensor):
                hp["lr"] = hp["lr"].item()
            foreach = group.get("foreach")
            if self.compile and all(states):  # the first step creates the state eagerly
                # lr enters the compiled step as a 0-d tensor: a scheduler's new value is a
                # new input, not a recompilation
                lr = self._lr_inputs.setdefault(id(group), torch.zeros((), dtype=torch.float64))
                hp["lr"] = lr.fill_(hp["lr"])
                for lo in range(0, len(params), COMPILE_CHUNK):
                    chunk = slice(lo, lo + COMPILE_CHUNK)
                    ids = tuple(map(id, params[chunk]))  # cheap lookup; dynamo's guards check the rest
                    step = self._compiled_chunks.get(ids)
                    if step is None:
                        layout = tuple((p.shape, p.dtype, p.device, tuple(s))
                                       for p, s in zip(params[chunk], states[chunk]))
                        step = self._compiled_chunks[ids] = _compiled(
                            params[lo].device.type, type(self).rule, self.compile, layout)
                    step(type(self).rule, params[chunk], grads[chunk], states[chunk], hp)
            elif default_foreach(params) if foreach is None else foreach:
                for b_params, b_grads, b_states in _buckets(params, grads, states):
                    lists = {key: [s[key] for s in b_states] for key in b_states[0]}
                    known = set(lists)
                    _apply_many(type(self).rule, b_params, b_grads, lists, hp)
                    for key in lists.keys() - known:  # entries the rule created: one per tensor
                        value = lists[key]
                        if not isinstance(value, list):
                            value = [value.clone() if torch.is_tensor(value) else value
                                     for _ in b_states]
                        for s, v in zip(b_states, value, strict=True):
                            s[key] = v
            else:
                _apply(type(self).rule, params, grads, states, hp)
            for p, state, is_new in zip(params, states, new):
                if is_new and state:  # a stateless rule leaves no entry
                    self.state[p] = state
        return loss


class SGD(_RuleOptimizer):
    """``torch.optim.SGD`` over :func:`dlopt.rules.sgd`."""

    rule = staticmethod(rules.sgd)
    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    checked = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None, compile=False):
        super().__init__(params, dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
            fused=fused), compile=compile)


class Adagrad(_RuleOptimizer):
    """``torch.optim.Adagrad`` over :func:`dlopt.rules.adagrad`."""

    rule = staticmethod(rules.adagrad)
    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")
    checked = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None,
                 compile=False):
        super().__init__(params, dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused), compile=compile)
        # as torch.optim.Adagrad: the accumulators of the constructor's groups start at the
        # constructor's initial_accumulator_value (a group's own value applies to groups added later)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] = torch.tensor(0.0, dtype=scalar_dtype())
                self.state[p]["sum"] = torch.full_like(
                    p, initial_accumulator_value, memory_format=torch.preserve_format)


class RMSprop(_RuleOptimizer):
    """``torch.optim.RMSprop`` over :func:`dlopt.rules.rmsprop`."""

    rule = staticmethod(rules.rmsprop)
    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")
    checked = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False, *, compile=False):
        super().__init__(params, dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
            differentiable=differentiable), compile=compile)


class Adadelta(_RuleOptimizer):
    """``torch.optim.Adadelta`` over :func:`dlopt.rules.adadelta`."""

    rule = staticmethod(rules.adadelta)
    hyperparameters = ("lr", "rho", "eps", "weight_decay", "maximize")
    checked = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False, compile=False):
        super().__init__(params, dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
            capturable=capturable, foreach=foreach, differentiable=differentiable), compile=compile)


class Adam(_RuleOptimizer):
    """``torch.optim.Adam`` over :func:`dlopt.rules.adam`."""

    rule = staticmethod(rules.adam)
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                       "decoupled_weight_decay")
    checked = ("lr", "eps", "betas", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False, compile=False):
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay), compile=compile)


class AdamW(_RuleOptimizer):
    """``torch.optim.AdamW`` over :func:`dlopt.rules.adamw`."""

    rule = staticmethod(rules.adamw)
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    checked = ("lr", "eps", "betas", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, compile=False):
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused, decoupled_weight_decay=True),
            compile=compile)


class NAdam(_RuleOptimizer):
    """``torch.optim.NAdam`` over :func:`dlopt.rules.nadam`."""

    rule = staticmethod(rules.nadam)
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay",
                       "decoupled_weight_decay", "maximize")
    checked = ("lr", "eps", "betas", "weight_decay", "momentum_decay")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False, compile=False):
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
            capturable=capturable, differentiable=differentiable), compile=compile)


class RAdam(_RuleOptimizer):
    """``torch.optim.RAdam`` over :func:`dlopt.rules.radam`."""

    rule = staticmethod(rules.radam)
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")
    checked = ("lr", "eps", "betas", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, compile=False):
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay, differentiable=differentiable),
            compile=compile)


class NAMSGrad(_RuleOptimizer):
    """The book's NAMSGrad (:func:`dlopt.rules.namsgrad`) as a ``torch.optim`` optimizer.

    For the step sizes :math:`\\eta_t = \\eta/\\sqrt t` of the convergence theorem, combine it
    with ``torch.optim.lr_scheduler.LambdaLR(opt, lambda k: (k + 1) ** -0.5)``.
    """

    rule = staticmethod(rules.namsgrad)
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    checked = ("lr", "eps", "betas", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *,
                 compile=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
                         compile=compile)
