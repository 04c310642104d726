r"""Update rules, each written once.

Every rule in this module follows one convention, so that the 2-D demos (numpy arrays), the
training loops (torch tensors) and the ``torch.optim``-style classes all call the *same* code:

.. code-block:: python

    rule(param, grad, state, *, lr, **hyperparameters) -> None

- ``param`` is updated **in place** (a float numpy array or a torch tensor);
- ``grad`` is the gradient (or a stochastic estimate of it) at ``param``; it is not modified;
- ``state`` is a ``dict`` owned by the caller: empty before the first step, filled and updated
  in place by the rule (momentum buffers, moment estimates, step counters);
- hyperparameters are keyword-only and carry the names ``torch.optim`` uses.

Writing the update in place keeps one pass over memory, which is what makes the torch shells fast
(an out-of-place ``m = b1*m + (1-b1)*g`` allocates a temporary per term).

A rule's body should read like the formula in the book: the chapter shows it with
``literalinclude``, so the mathematics on the page, the code shown and the code tested are one.
"""

from __future__ import annotations

__all__ = ["gd", "normalized_gd"]


def _norm(x) -> float:
    """Euclidean norm of a numpy array or torch tensor, as a Python float."""
    return float((x * x).sum()) ** 0.5


def gd(param, grad, state=None, *, lr: float):
    r"""Gradient descent: :math:`x_{k+1} = x_k - \eta\,\nabla f(x_k)`.

    Stateless; ``state`` is accepted so that every rule has the same signature.
    """
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    param -= lr * grad


def normalized_gd(param, grad, state=None, *, lr: float):
    r"""Normalized steepest descent: a step of fixed length :math:`\eta` along
    :math:`-\nabla f(x_k)/\lVert\nabla f(x_k)\rVert`.

    At a stationary point (zero gradient) there is no descent direction and the point is kept.
    """
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    norm = _norm(grad)
    if norm > 0.0:
        param -= (lr / norm) * grad
