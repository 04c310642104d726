"""The contracts the package is built on, as ``typing.Protocol`` classes.

- :class:`Rule` -- an update rule ``rule(param, grad, state, *, lr, **hyperparameters) -> None``
  (:mod:`dlopt.optim.rules`): updates ``param`` in place, keeps its buffers in ``state``;
- :class:`Oracle` -- a gradient oracle ``grad(x, k, rng) -> array`` (exact, mini-batch, replayed);
- :class:`Objective` -- a function with ``value``, ``grad`` (and usually ``hess``) on inputs of
  shape ``(..., n)`` (``dlopt.functions``);
- :class:`Schedule` -- a hyperparameter as a function of the step, ``schedule(k) -> value``
  (:mod:`dlopt.optim.schedules`).

They are ``runtime_checkable``: ``isinstance(f, dlopt.protocols.Objective)`` checks that the
methods exist (not their signatures); type checkers check the signatures.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Rule", "Oracle", "Objective", "Schedule"]


@runtime_checkable
class Rule(Protocol):
    """``rule(param, grad, state, *, lr, **hyperparameters) -> None``: one in-place update.

    ``param`` is a float numpy array or torch tensor, or a list/dict of them; ``grad`` has the same
    structure; ``state`` is a dict the rule owns (empty before the first step).
    """

    def __call__(self, param: Any, grad: Any, state: dict | None = ..., /, **hyperparameters: Any) -> None: ...


@runtime_checkable
class Oracle(Protocol):
    """``grad(x, k, rng) -> array``: a gradient (or an estimate of it) at ``x`` for step ``k``,
    drawing any randomness from ``rng``; ``x`` may carry leading batch dimensions."""

    def __call__(self, x: np.ndarray, k: int, rng: np.random.Generator, /) -> np.ndarray: ...


@runtime_checkable
class Objective(Protocol):
    """A differentiable function of ``x`` of shape ``(..., dim)``, vectorised over leading axes."""

    dim: int

    def value(self, x: Any) -> Any: ...

    def grad(self, x: Any) -> np.ndarray: ...


@runtime_checkable
class Schedule(Protocol):
    """``schedule(k) -> value`` for the step index ``k = 0, 1, ...``."""

    def __call__(self, k: int, /) -> Any: ...
