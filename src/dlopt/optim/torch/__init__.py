"""``torch.optim``-compatible optimizers built on :mod:`dlopt.rules` (``import dlopt.torch``).

.. code-block:: python

    opt = dlopt.torch.Adam(model.parameters(), lr=1e-3)          # drop-in for torch.optim.Adam
    opt = dlopt.torch.Adam(model.parameters(), foreach=True)      # one _foreach op per line of the rule
    opt = dlopt.torch.Adam(model.parameters(), compile=True)      # the step compiled and fused

``SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW, NAdam, RAdam`` take ``torch.optim``'s arguments
(names, order, defaults) and give its trajectories; ``NAMSGrad`` is the book's hybrid method.
Each class is a thin shell (param groups, state, ``state_dict``, closures) whose ``step`` calls one
function of :mod:`dlopt.rules` per parameter, or once per list of parameters (``foreach=True``,
torch's default on CUDA: ``torch._foreach_*`` ops); see :mod:`dlopt.torch.optimizers` for the
details and the few deliberate differences. ``LBFGS`` comes from :mod:`dlopt.torch.lbfgs` when present.

This subpackage imports torch; ``import dlopt`` alone does not.
"""

from __future__ import annotations

from dlopt.optim.torch.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, NAMSGrad, RAdam, RMSprop

__all__ = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam", "RAdam", "NAMSGrad"]

try:  # written separately (second-order methods); optional until that module exists
    from dlopt.optim.torch.lbfgs import LBFGS  # noqa: F401 - exported below
except ModuleNotFoundError as exc:  # pragma: no cover
    if exc.name != f"{__name__}.lbfgs":
        raise
else:
    __all__.append("LBFGS")
