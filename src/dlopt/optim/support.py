"""What the update rules (:mod:`dlopt.optim.rules`) and the ``torch.optim`` shells
(:mod:`dlopt.torch`) share: hyperparameter validation with torch.optim's messages, whether
``torch.compile`` is tracing, and the dtype of torch.optim's 0-d state tensors.

Nothing here imports torch unless torch is in use: numpy users don't pay for it.
"""

from __future__ import annotations

import sys

__all__ = ["check_hyperparameters", "compiling", "scalar_dtype"]


#: hyperparameter -> (test, message), torch.optim's wording
_VALID = {
    "lr": (lambda v: 0.0 <= v, "Invalid learning rate: {}"),
    "eps": (lambda v: 0.0 <= v, "Invalid epsilon value: {}"),
    "momentum": (lambda v: 0.0 <= v, "Invalid momentum value: {}"),
    "beta": (lambda v: 0.0 <= v < 1.0, "Invalid beta value: {}"),
    "weight_decay": (lambda v: 0.0 <= v, "Invalid weight_decay value: {}"),
    "lr_decay": (lambda v: 0.0 <= v, "Invalid lr_decay value: {}"),
    "initial_accumulator_value": (lambda v: 0.0 <= v, "Invalid initial_accumulator_value value: {}"),
    "alpha": (lambda v: 0.0 <= v, "Invalid alpha value: {}"),
    "rho": (lambda v: 0.0 <= v <= 1.0, "Invalid rho value: {}"),
    "momentum_decay": (lambda v: 0.0 <= v, "Invalid momentum_decay value: {}"),
}


def check_hyperparameters(**hyperparameters) -> None:
    """Raise ``ValueError`` (torch.optim's wording) for the first invalid hyperparameter (the rules
    and the optimizers of :mod:`dlopt.torch` validate with it).

    Skipped inside ``torch.compile`` (the optimizer validated them when it was built), so that a
    comparison does not turn a changing learning rate into a recompilation."""
    if compiling():
        return
    for name, value in hyperparameters.items():
        if name == "betas":
            for i, beta in enumerate(value):
                if not 0.0 <= beta < 1.0:
                    raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        elif name == "nesterov":
            nesterov, momentum, dampening = value
            if nesterov and (momentum <= 0 or dampening != 0):
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        else:
            ok, message = _VALID[name]
            if not ok(value):
                raise ValueError(message.format(value))


def compiling() -> bool:
    """Are we being traced by ``torch.compile``? (Never imports torch: numpy users don't pay.)"""
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


def scalar_dtype():
    """The dtype torch.optim gives 0-d state tensors such as ``step`` (float32, or float64 when that
    is torch's default dtype).

    The one place where dlopt uses a private torch function (``torch.optim.optimizer.
    _get_scalar_dtype``, what torch.optim itself calls): a change in torch touches this line only.
    """
    from torch.optim.optimizer import _get_scalar_dtype

    return _get_scalar_dtype()
