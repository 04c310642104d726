"""Optimization methods: the update rules, the one loop that runs them, schedules, line searches,
second-order methods and the ``torch.optim`` shells.

- :mod:`dlopt.optim.runner` -- :func:`run`, the one loop that applies a rule, and its
  :class:`Trajectory`, gradient hooks and oracle protocol.
"""

from __future__ import annotations

from .runner import Trajectory, as_oracle, clip_norm, gradient_noise, mask, run

__all__ = ["Trajectory", "run", "as_oracle", "clip_norm", "gradient_noise", "mask"]
