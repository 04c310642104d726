"""What the update rules (:mod:`dlopt.optim.rules`) and the ``torch.optim`` shells
(:mod:`dlopt.torch`) share: hyperparameter validation with torch.optim's messages, whether
``torch.compile`` is tracing, the dtype of torch.optim's 0-d state tensors, and torch.optim's
default for ``foreach=``. The two private torch functions dlopt calls are called here only.

Nothing here imports torch unless torch is in use: numpy users don't pay for it.
"""

from __future__ import annotations

import sys

__all__ = ["check_hyperparameters", "compiling", "scalar_dtype", "default_foreach"]


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
    comparison does not turn a changing learning rate into a recompilation. Valid combinations of
    plain numbers are remembered: a ``dlopt.torch`` step calls a rule once per tensor with the
    same hyperparameters, and validating them each time was a fifth of its Python overhead."""
    if compiling():
        return
    key: tuple | None = tuple(hyperparameters.items())
    try:
        if key in _SEEN_VALID:
            return
    except TypeError:  # an unhashable value (betas as a list): validated every time
        key = None
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
    if key is not None:
        if len(_SEEN_VALID) >= 4096:  # e.g. a learning-rate schedule: a new value at every step
            _SEEN_VALID.clear()
        _SEEN_VALID.add(key)


_SEEN_VALID: set = set()


def compiling() -> bool:
    """Are we being traced by ``torch.compile``? (Never imports torch: numpy users don't pay.)"""
    is_compiling = _IS_COMPILING.get("torch")
    if is_compiling is None:
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        is_compiling = _IS_COMPILING["torch"] = torch.compiler.is_compiling
    return is_compiling()


_IS_COMPILING: dict = {}  # torch.compiler.is_compiling, once torch is imported


def scalar_dtype():
    """The dtype torch.optim gives 0-d state tensors such as ``step`` (float32, or float64 when that
    is torch's default dtype).

    The one place where dlopt uses a private torch function (``torch.optim.optimizer.
    _get_scalar_dtype``, what torch.optim itself calls): a change in torch touches this line only.
    """
    from torch.optim.optimizer import _get_scalar_dtype

    return _get_scalar_dtype()


def default_foreach(params) -> bool:
    """``foreach=None`` decided as torch.optim decides it: on when every tensor is on a device
    with native foreach kernels (CUDA), off otherwise (CPU).

    The second use of a private torch function (``torch.optim.optimizer.
    _default_to_fused_or_foreach``), so that the choice follows torch's own list of devices."""
    from torch.optim.optimizer import _default_to_fused_or_foreach

    return _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)[1]
