"""Iterate an update rule on an objective and record where it went.

Kept for the name: :func:`run` and :class:`Trajectory` live in :mod:`dlopt.optim.runner`, the one
loop that applies a rule::

    traj = dlopt.run(dlopt.rules.gd, f, x0=[-1.5, 2.0], steps=200, lr=1e-3)
    traj.xs      # (steps+1, n) iterates, x0 first
    traj.values  # f at each iterate
"""

from __future__ import annotations

from .optim.runner import Trajectory, run

__all__ = ["Trajectory", "run"]
