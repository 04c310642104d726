"""Drop-in ``torch.optim`` classes, each a thin shell over one rule of :mod:`dlopt.rules`.

The split is TorchOpt's: the update formula lives once, in a function of :mod:`dlopt.rules`; the
class here only does the bookkeeping ``torch.optim.Optimizer`` already knows (parameter groups,
``state``, ``state_dict``, ``zero_grad``, closures) and, in :meth:`step`, calls the rule on every
parameter that has a gradient. There is no second copy of any update formula.

Differences from ``torch.optim`` (all explicit):

- ``foreach`` is accepted and ignored: the rule runs tensor by tensor (on CPU this is what
  ``torch.optim`` does by default, too). The result does not depend on it.
- ``fused=True``, ``capturable=True`` and ``differentiable=True`` are rejected with a
  ``ValueError``; ``compile=True`` (keyword only, not in ``torch.optim``) is this package's fast
  path: the whole step of a parameter group (the same rule, traced) is compiled with
  ``torch.compile`` into fused kernels, one pass over memory per tensor. The first step runs
  eagerly (it creates the state), the second compiles; the step counter and ``lr`` are tensor
  inputs of the compiled step, so later steps and learning-rate schedules do not recompile.
  Inside the compiled step the bias corrections are computed from the float32 step tensor
  (like ``torch.optim``'s ``capturable`` path), so trajectories agree with eager mode to float32
  rounding, not bit for bit. ``RAdam``'s branch on :math:`\rho_t > 5` breaks the graph there.
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
from dlopt.optim.support import check_hyperparameters, scalar_dtype

__all__ = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam", "RAdam", "NAMSGrad"]


def _apply(rule, params, grads, states, hyperparameters):
    """One step of ``rule`` on every parameter of a group (the function ``compile=True`` compiles)."""
    for param, grad, state in zip(params, grads, states):
        rule(param, grad, state, **hyperparameters)


_compiled_steps: dict = {}


def _compiled(device_type: str, rule):
    """``torch.compile(_apply)`` for one device type and rule, built once and shared by all
    optimizers of that rule.

    Each (device type, rule) gets its own copy of ``_apply``, hence its own compilation cache
    (dynamo keeps at most 8 entries per function: one per parameter-group layout). Inside the
    compiled step the rules read step counters as 0-d tensors (see ``dlopt.rules._read``) and the
    shell passes ``lr`` as a 0-d tensor, so a new step or learning rate is a new input value, not
    a recompilation. A low ``realize_opcount_threshold`` makes inductor compute step-dependent
    scalars (bias corrections) once per step instead of once per element inside the fused loop;
    on CUDA, ``combo_kernels`` fuses the per-tensor kernels of a group horizontally. The generated
    wrapper's size/stride and alignment asserts are switched off: with ``dynamic=False`` dynamo's
    guards already pin every input's shape, stride and dtype, and the asserts (five per parameter)
    were a third of the fixed per-step cost with 100 parameters.
    """
    step = _compiled_steps.get((device_type, rule))
    if step is None:
        import types

        options: dict[str, Any] = {"realize_opcount_threshold": 4, "size_asserts": False, "alignment_asserts": False}
        if device_type == "cuda":
            options["combo_kernels"] = True
        code = _apply.__code__.replace(co_name=f"_apply_{rule.__name__}_{device_type}")
        try:
            step = torch.compile(types.FunctionType(code, _apply.__globals__, code.co_name),
                                 dynamic=False, options=options)
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                f"compile=True needs a working torch.compile (a C++ compiler on CPU, triton on "
                f"CUDA); it failed with: {exc!r}. Use compile=False."
            ) from exc
        _compiled_steps[(device_type, rule)] = step
    return step


class _RuleOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose step calls :attr:`rule` on each parameter.

    Subclasses set ``rule`` (a function of :mod:`dlopt.rules`), ``hyperparameters`` (the group
    keys passed to it) and ``checked`` (the keys validated in the constructor, in torch's order).
    """

    rule: Any = None
    hyperparameters: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, *, compile: bool = False):
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
        super().__init__(params, defaults)
        self.compile = bool(compile)
        self._lr_inputs: dict[int, torch.Tensor] = {}
        if self.compile:
            for group in self.param_groups:
                for p in group["params"]:
                    _compiled(p.device.type, type(self).rule)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("compile", False)  # unpickled without __init__
        self.__dict__.setdefault("_lr_inputs", {})
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
            if params:
                hp = {key: group[key] for key in self.hyperparameters}
                if isinstance(hp["lr"], torch.Tensor):
                    hp["lr"] = hp["lr"].item()
                if self.compile and all(states):  # the first step creates the state eagerly
                    # lr enters the compiled step as a 0-d tensor: a scheduler's new value is a
                    # new input, not a recompilation
                    lr = self._lr_inputs.setdefault(id(group), torch.zeros((), dtype=torch.float64))
                    hp["lr"] = lr.fill_(hp["lr"])
                    step = _compiled(params[0].device.type, type(self).rule)
                    step(type(self).rule, params, grads, states, hp)
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
