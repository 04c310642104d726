"""Optimization methods: each update rule written once, the one loop that runs them, schedules,
line searches, second-order methods and the ``torch.optim`` shells.

- :mod:`dlopt.optim.rules` -- the update rules ``rule(param, grad, state, *, lr, **hp)``;
- :mod:`dlopt.optim.runner` -- :func:`run`, the one loop that applies a rule, its
  :class:`Trajectory`, gradient hooks and the oracle protocol;
- :mod:`dlopt.optim.schedules` -- learning-rate (and any hyperparameter) schedules;
- :mod:`dlopt.optim.linesearch` -- exact, backtracking Armijo and strong Wolfe line searches;
- :mod:`dlopt.optim.secondorder` -- Newton, BFGS, L-BFGS, Newton-CG and :func:`minimize`;
- :mod:`dlopt.optim.torch` -- drop-in ``torch.optim`` classes over the rules (imports torch);
- :mod:`dlopt.optim.support` -- what the rules and the torch classes share (hyperparameter
  validation with torch.optim's messages, the one use of a private torch function).
"""

from __future__ import annotations

from dlopt.optim import linesearch, rules, schedules, secondorder
from dlopt.optim.runner import Trajectory, as_oracle, clip_norm, gradient_noise, mask, run
from dlopt.optim.secondorder import minimize

__all__ = ["Trajectory", "run", "as_oracle", "clip_norm", "gradient_noise", "mask", "minimize",
           "rules", "schedules", "linesearch", "secondorder"]
