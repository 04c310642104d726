r"""Update rules, each written once.

Every rule in this module follows one convention, so that the 2-D demos (numpy arrays), the
training loops (torch tensors) and the ``torch.optim``-style classes of ``dlopt.torch`` all call
the *same* code:

.. code-block:: python

    rule(param, grad, state, *, lr, **hyperparameters) -> None

- ``param`` is updated **in place** (a float numpy array or a torch tensor);
- ``grad`` is the gradient (or a stochastic estimate of it) at ``param``; it is not modified;
- ``state`` is a ``dict`` owned by the caller: empty before the first step, filled and updated
  in place by the rule (momentum buffers, moment estimates, the step counter ``state["step"]``);
- hyperparameters are keyword-only and carry the names and defaults ``torch.optim`` uses;
  invalid values raise ``ValueError`` with ``torch.optim``'s wording.

The rules:

=================  =============================================================================
``gd``             gradient descent :math:`x \leftarrow x - \eta g`
``normalized_gd``  a step of length :math:`\eta` along :math:`-g/\lVert g\rVert`
``sgd``            ``torch.optim.SGD``: momentum, dampening, Nesterov, L2 weight decay, maximize
``heavy_ball``     Polyak: :math:`x_{k+1} = x_k - \eta g_k + \beta (x_k - x_{k-1})`
``nesterov``       Nesterov's accelerated gradient, with the gradient taken at the current point
``adagrad``        ``torch.optim.Adagrad`` (``lr_decay``, ``initial_accumulator_value``)
``rmsprop``        ``torch.optim.RMSprop`` (``centered``, ``momentum``)
``adadelta``       ``torch.optim.Adadelta``
``adam``           ``torch.optim.Adam`` (``amsgrad``, ``decoupled_weight_decay``)
``adamw``          ``torch.optim.AdamW``: Adam with decoupled weight decay
``nadam``          ``torch.optim.NAdam`` (momentum decay schedule :math:`\mu_t`)
``radam``          ``torch.optim.RAdam`` (rectified when :math:`\rho_t > 5`)
``namsgrad``       the book's hybrid: Nesterov first moment + AMSGrad second moment
=================  =============================================================================

On torch tensors the rules use the operations of ``torch.optim``'s single-tensor
(``foreach=False``) implementations, in the same order, so they reproduce ``torch.optim``'s
trajectories; on numpy arrays they use the same arithmetic through numpy ufuncs. On a list of
torch tensors the same body runs once for the whole list: its arithmetic and helpers are
``torch._foreach_*`` operations in the order of ``torch.optim``'s multi-tensor (``foreach=True``)
implementations. Where torch's two implementations round differently (NAdam's
:math:`\sqrt{v/(1-\beta_2^t)}`, RAdam's step, the order in which Adagrad scales its step), the
helper the rule calls (``_sqrt_div``, ``_rectified_step_``, ``_addcdiv_(..., scale_first=True)``)
rounds as each of them does, so ``dlopt.torch`` is bit for bit ``torch.optim`` in both modes.

Writing the update in place keeps one pass over memory, which is what makes the torch shells fast
(an out-of-place ``m = b1*m + (1-b1)*g`` allocates a temporary per term). The small helpers at the
end of the module (``_ema_``, ``_addcdiv_``, ...) are the only places that know whether they hold a
numpy array or a tensor.

A rule's body should read like the formula in the book: the chapter shows it with
``literalinclude``, so the mathematics on the page, the code shown and the code tested are one.
"""

from __future__ import annotations

import functools
import operator
import sys

import numpy as np

from dlopt.optim.support import check_hyperparameters as _check
from dlopt.optim.support import compiling as _compiling
from dlopt.optim.support import scalar_dtype as _scalar_dtype

__all__ = [
    "gd",
    "normalized_gd",
    "sgd",
    "heavy_ball",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "radam",
    "namsgrad",
]


class _Many(list):
    """Several arrays (or tensors) updated as one parameter: arithmetic applies entry by entry.

    A rule called with a list or dict of arrays sees its parameters, gradients and state buffers as
    ``_Many`` lists, so its body -- ``v *= beta``, ``m / (1 - beta1**t)`` -- is unchanged. On numpy
    arrays the arithmetic and the helpers below go entry by entry; on torch tensors they call one
    ``torch._foreach_*`` op for the whole list (the multi-tensor path of ``torch.optim``'s
    ``foreach=True``, in its order of operations).
    """

    __slots__ = ()
    __array_ufunc__ = None  # numpy scalars defer to _Many's reflected operators

    def _map(self, fn, other):
        if _is_tensors(self):
            return _Many(_foreach(_FOREACH[fn], self, other))
        if isinstance(other, _Many):
            return _Many([fn(a, b) for a, b in zip(self, other, strict=True)])
        return _Many([fn(a, other) for a in self])

    def _imap(self, fn, other):
        if _is_tensors(self):
            _foreach(_FOREACH[fn], self, other)
            return self
        others = other if isinstance(other, _Many) else [other] * len(self)
        for i, (a, b) in enumerate(zip(self, others, strict=True)):
            self[i] = fn(a, b)  # numpy and torch update ``a`` in place and return it
        return self

    def __add__(self, o): return self._map(operator.add, o)  # noqa: E704
    def __radd__(self, o): return self._map(operator.add, o) if _is_tensors(self) else self._map(lambda a, b: b + a, o)  # noqa: E501, E704
    def __sub__(self, o): return self._map(operator.sub, o)  # noqa: E704
    def __mul__(self, o): return self._map(operator.mul, o)  # noqa: E704
    def __rmul__(self, o): return self._map(operator.mul, o) if _is_tensors(self) else self._map(lambda a, b: b * a, o)  # noqa: E501, E704
    def __truediv__(self, o): return self._map(operator.truediv, o)  # noqa: E704
    def __iadd__(self, o): return self._imap(operator.iadd, o)  # noqa: E704
    def __isub__(self, o): return self._imap(operator.isub, o)  # noqa: E704
    def __imul__(self, o): return self._imap(operator.imul, o)  # noqa: E704
    def __itruediv__(self, o): return self._imap(operator.itruediv, o)  # noqa: E704

    def __neg__(self):
        return _Many(_foreach("neg", self) if _is_tensors(self) else [-a for a in self])

    def __rsub__(self, o):  # o - x
        if _is_tensors(self):
            return _Many(_foreach("add_", _foreach("neg", self), o))  # -x + o, exactly o - x
        return self._map(lambda a, b: b - a, o)

    def __rtruediv__(self, o):  # o / x
        if _is_tensors(self):  # as torch's Tensor.__rtruediv__: x.reciprocal() * o
            return _Many(_foreach("mul_", _foreach("reciprocal", self), o))
        return self._map(lambda a, b: b / a, o)


# the torch._foreach_* op that applies an operator to a list of tensors
_FOREACH = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
            operator.iadd: "add_", operator.isub: "sub_", operator.imul: "mul_",
            operator.itruediv: "div_"}


def _is_tensors(x) -> bool:
    """Is ``x`` a ``_Many`` of torch tensors (the lists that go to ``torch._foreach_*`` ops)?"""
    return isinstance(x, _Many) and not isinstance(x[0], np.ndarray)


def _foreach(name, xs, *args, **kwargs):
    """``torch._foreach_<name>(xs, *args)``; returns the new list (in place: ``xs``).

    A 0-d tensor as the scalar (the learning rate
    or a bias correction inside a compiled step) goes to the ``Tensor`` overloads, which exist for
    ``add``, ``mul`` and ``div``; ``x - s`` becomes ``x + (-s)``, which IEEE arithmetic rounds the
    same."""
    import torch

    if name.startswith("sub") and args and not isinstance(args[0], (_Many, int, float)):
        name, args = "add" + name[3:], (-args[0], *args[1:])
    # plain lists in: torch.compile does not trace a list subclass into an op's arguments
    out = getattr(torch, "_foreach_" + name)(
        list(xs), *[list(a) if isinstance(a, _Many) else a for a in args], **kwargs)
    return xs if name.endswith("_") else out


#: the public name of the parameter-collection type, for the multi-tensor path of dlopt.torch
Many = _Many


def _each(fn, *args):
    """Apply a helper entry by entry over the ``_Many`` arguments (others are shared)."""
    n = next(len(a) for a in args if isinstance(a, _Many))
    cols = [list(a) if isinstance(a, _Many) else [a] * n for a in args]  # plain lists: traceable
    return _Many([fn(*row) for row in zip(*cols, strict=True)])


def _as_param(x, what: str):
    """Check one parameter array (or tensor): floating point."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{what} must be a floating-point array (updated in place), got dtype {x.dtype}; "
                            "convert it with np.asarray(x, dtype=float)")
        return x
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.is_complex()):
            raise TypeError(f"{what} must be a floating-point tensor, got dtype {x.dtype}")
        return x
    raise TypeError(f"{what} must be a numpy array or a torch tensor (or a list/dict of them), "
                    f"got {type(x).__name__}")


def _over_collections(rule):
    """Let ``rule`` take one array or a list/tuple/dict of arrays (numpy or torch) as ``param``.

    With a collection, ``grad`` is the same kind of collection (a dict: the same keys); ``state``
    holds one buffer per name for the whole collection (a list of arrays, in ``param``'s order).
    """

    @functools.wraps(rule)
    def step(param, grad, state=None, **hyperparameters):
        if isinstance(param, (list, tuple, dict)) and not isinstance(param, _Many):
            if isinstance(param, dict):
                if not isinstance(grad, dict) or grad.keys() != param.keys():
                    raise TypeError("with a dict of parameters, grad must be a dict with the same keys")
                param, grad = list(param.values()), list(grad.values())
            elif not isinstance(grad, (list, tuple)) or len(grad) != len(param):
                raise TypeError(f"with {len(param)} parameters, grad must be a list of {len(param)} arrays")
            if not param:
                raise ValueError("empty list of parameters")
            param = _Many([_as_param(p, f"parameter {i}") for i, p in enumerate(param)])
            grad = _Many(grad)
        elif not isinstance(param, _Many):
            _as_param(param, "param")
        return rule(param, grad, state, **hyperparameters)

    return step


def _norm(x) -> float:
    """Euclidean norm of a numpy array or torch tensor (of all entries of a collection), as a
    Python float."""
    if isinstance(x, _Many):
        return sum(float((a * a).sum()) for a in x) ** 0.5
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


def sgd(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
        nesterov=False, maximize=False):
    r"""Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD``.

    .. math::

        g_t &= \pm\nabla f(x_t) + \lambda x_t, \\
        b_t &= \mu\, b_{t-1} + (1-\tau)\, g_t \quad (b_1 = g_1), \\
        d_t &= g_t + \mu\, b_t \ \text{(Nesterov)} \quad\text{or}\quad d_t = b_t, \\
        x_{t+1} &= x_t - \eta\, d_t,

    with momentum :math:`\mu`, dampening :math:`\tau` and weight decay :math:`\lambda`
    (without momentum, :math:`d_t = g_t`).
    """
    _check(lr=lr, momentum=momentum, weight_decay=weight_decay,
           nesterov=(nesterov, momentum, dampening))
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize)  # g + λ x
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = _copy(g)    # b_1 = g_1
        else:
            buf *= momentum
            _axpy_(buf, g, 1 - dampening)                # b ← μ b + (1-τ) g
        g = _plus(g, buf, momentum) if nesterov else buf
    _axpy_(param, g, -lr)                                # x ← x - η d


def heavy_ball(param, grad, state, *, lr, beta=0.9):
    r"""Polyak's heavy-ball method.

    .. math::

        x_{k+1} = x_k - \eta\,\nabla f(x_k) + \beta\,(x_k - x_{k-1}), \qquad x_{-1} = x_0.

    The rule keeps the last step :math:`v_k = x_k - x_{k-1}` in ``state["velocity"]``:
    :math:`v_{k+1} = \beta v_k - \eta \nabla f(x_k)`, :math:`x_{k+1} = x_k + v_{k+1}`.
    With a constant :math:`\eta` this is ``sgd(momentum=beta)`` with :math:`v = -\eta b`.
    """
    _check(lr=lr, beta=beta)
    v = _buffer(state, "velocity", param)
    v *= beta
    _axpy_(v, grad, -lr)        # v ← β v - η ∇f(x)
    param += v                  # x ← x + v


def nesterov(param, grad, state, *, lr, beta=0.9):
    r"""Nesterov's accelerated gradient, with the gradient evaluated at the current point.

    The textbook method takes a gradient step from the look-ahead point
    :math:`y_k = x_k + \beta (x_k - x_{k-1})`: :math:`x_{k+1} = y_k - \eta\nabla f(y_k)`.
    A runner can only hand a rule the gradient at the point it holds, so this rule holds
    :math:`y_k` (``param`` is the look-ahead point, ``grad`` is :math:`\nabla f(y_k)`). With
    :math:`v_k = x_k - x_{k-1}` in ``state["velocity"]``:

    .. math::

        v_{k+1} = \beta v_k - \eta\nabla f(y_k), \qquad
        y_{k+1} = y_k - \eta\nabla f(y_k) + \beta v_{k+1},

    and :math:`x_k = y_k - \beta v_k` recovers the textbook iterate. This is exactly
    ``torch.optim.SGD(momentum=beta, nesterov=True)``: its buffer is
    :math:`b = -v/\eta` (for a constant :math:`\eta`) and its update
    :math:`y \leftarrow y - \eta (g + \beta b)` is the line above.

    A momentum that changes with the step, :math:`\beta_k`, is allowed (pass a schedule to
    :func:`dlopt.run`): since :math:`y_k = x_k + \beta_{k-1} v_k`, the velocity is
    :math:`v_{k+1} = \beta_{k-1} v_k - \eta\nabla f(y_k)` and the look-ahead
    :math:`y_{k+1} = y_k - \eta\nabla f(y_k) + \beta_k v_{k+1}`; the rule keeps
    :math:`\beta_{k-1}` in ``state["beta"]``. With :math:`\beta_k = k/(k+3)` this is Nesterov's
    accelerated gradient for convex problems.
    """
    _check(lr=lr, beta=beta)
    v = _buffer(state, "velocity", param)
    v *= state.get("beta", beta)   # β_{k-1} v
    _axpy_(v, grad, -lr)           # v ← β_{k-1} v - η ∇f(y)
    _axpy_(param, grad, -lr)       # y ← y - η ∇f(y) ...
    _axpy_(param, v, beta)         #       ... + β_k v
    state["beta"] = beta


def adagrad(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
            initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    r"""AdaGrad, exactly as ``torch.optim.Adagrad``.

    .. math::

        G_t = G_{t-1} + g_t^2, \qquad
        x_{t+1} = x_t - \frac{\eta}{1 + (t-1)\,\delta}\,\frac{g_t}{\sqrt{G_t} + \epsilon},

    with :math:`G_0` = ``initial_accumulator_value`` and learning-rate decay :math:`\delta`.
    """
    _check(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
           initial_accumulator_value=initial_accumulator_value, eps=eps)
    t = _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize)
    clr = lr / (1 + (t - 1) * lr_decay)
    G = _buffer(state, "sum", param, initial_accumulator_value)
    _addcmul_(G, g, g, 1)                 # G ← G + g²
    std = _sqrt(G)
    std += eps                            # √G + ε
    _addcdiv_(param, g, std, -clr, scale_first=True)  # x ← x - η_t g / (√G + ε)


def rmsprop(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
            momentum=0.0, centered=False, maximize=False):
    r"""RMSprop, exactly as ``torch.optim.RMSprop``.

    .. math::

        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2, \qquad
        s_t = \sqrt{v_t - \bar g_t^{\,2}} + \epsilon \ \text{(centered, } \bar g_t
        = \alpha \bar g_{t-1} + (1-\alpha) g_t) \ \text{ or } \ s_t = \sqrt{v_t} + \epsilon, \\
        x_{t+1} &= x_t - \eta\, g_t / s_t
        \quad\text{or, with momentum } \mu,\quad
        b_t = \mu b_{t-1} + g_t / s_t,\ x_{t+1} = x_t - \eta\, b_t.
    """
    _check(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
    _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize)
    v = _buffer(state, "square_avg", param)
    _ema_sq_(v, g, alpha)                            # v ← α v + (1-α) g²
    if centered:
        g_bar = _buffer(state, "grad_avg", param)
        _ema_(g_bar, g, alpha)                       # ḡ ← α ḡ + (1-α) g
        s = _sqrt_(_addcmul(v, g_bar, g_bar, -1))    # √(v - ḡ²)
    else:
        s = _sqrt(v)
    s += eps
    if momentum > 0:
        buf = _buffer(state, "momentum_buffer", param)
        buf *= momentum
        _addcdiv_(buf, g, s, 1)                      # b ← μ b + g / s
        _axpy_(param, buf, -lr)                      # x ← x - η b
    else:
        _addcdiv_(param, g, s, -lr)                  # x ← x - η g / s


def adadelta(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
             maximize=False):
    r"""AdaDelta, exactly as ``torch.optim.Adadelta``.

    .. math::

        v_t &= \rho v_{t-1} + (1-\rho) g_t^2, \qquad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t, \\
        u_t &= \rho u_{t-1} + (1-\rho) \Delta_t^2, \qquad
        x_{t+1} = x_t - \eta\, \Delta_t.
    """
    _check(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize)
    v = _buffer(state, "square_avg", param)
    u = _buffer(state, "acc_delta", param)
    _ema_sq_(v, g, rho)                  # v ← ρ v + (1-ρ) g²
    delta = _sqrt_(u + eps)
    delta /= _sqrt_(v + eps)
    delta *= g                           # Δ = √(u+ε) / √(v+ε) · g
    _ema_sq_(u, delta, rho)              # u ← ρ u + (1-ρ) Δ²
    _axpy_(param, delta, -lr)            # x ← x - η Δ


def adam(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         amsgrad=False, maximize=False, decoupled_weight_decay=False):
    r"""Adam, exactly as ``torch.optim.Adam`` (AMSGrad variant with ``amsgrad=True``).

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
        x_{t+1} &= x_t - \frac{\eta}{1-\beta_1^t}\,
        \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon},

    where AMSGrad replaces :math:`v_t` by :math:`\hat v_t = \max(\hat v_{t-1}, v_t)`. Weight decay
    :math:`\lambda` is added to the gradient (:math:`g_t + \lambda x_t`), or, with
    ``decoupled_weight_decay=True`` (AdamW), applied to the weights: :math:`x_t \leftarrow
    (1-\eta\lambda)\,x_t`.
    """
    _check(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
    beta1, beta2 = betas
    t = _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                      decoupled=decoupled_weight_decay)  # g + λx, or x ← (1 - ηλ) x
    m = _buffer(state, "exp_avg", param)
    v = _buffer(state, "exp_avg_sq", param)
    _ema_(m, g, beta1)                                   # m ← β1 m + (1-β1) g
    _ema_sq_(v, g, beta2)                                # v ← β2 v + (1-β2) g²
    if amsgrad:
        v = _max_(_buffer(state, "max_exp_avg_sq", param), v)   # v̂ ← max(v̂, v)
    denom = _sqrt(v)
    denom /= (1 - beta2**t) ** 0.5
    denom += eps                                         # √v / √(1-β2^t) + ε
    _addcdiv_(param, m, denom, -lr / (1 - beta1**t))     # x ← x - η/(1-β1^t) · m / denom


def adamw(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
          amsgrad=False, maximize=False):
    r"""AdamW, exactly as ``torch.optim.AdamW``: :func:`adam` with decoupled weight decay,

    .. math::

        x_t \leftarrow (1 - \eta\lambda)\, x_t \quad\text{before the Adam step.}
    """
    adam(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


def nadam(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    r"""NAdam (Adam with Nesterov momentum), exactly as ``torch.optim.NAdam``.

    .. math::

        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr), \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
        x_{t+1} &= x_t - \eta \Bigl(\frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i}
        + \frac{\mu_{t+1}\, m_t}{1 - \prod_{i\le t+1}\mu_i}\Bigr)
        \Big/ \Bigl(\sqrt{v_t / (1-\beta_2^t)} + \epsilon\Bigr),

    with momentum decay :math:`\psi`; weight decay as in :func:`adam`.
    """
    _check(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
    beta1, beta2 = betas
    t = _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                      decoupled=decoupled_weight_decay)
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    prod = _scalar_state(state, "mu_product", param, 1.0)
    prod *= mu                                           # ∏_{i≤t} μ_i
    mu_product = _read(prod)
    state["mu_product"] = prod
    m = _buffer(state, "exp_avg", param)
    v = _buffer(state, "exp_avg_sq", param)
    _ema_(m, g, beta1)
    _ema_sq_(v, g, beta2)
    denom = _sqrt_div(v, 1 - beta2**t)
    denom += eps                                         # √(v / (1-β2^t)) + ε
    _addcdiv_(param, g, denom, -lr * (1 - mu) / (1 - mu_product))
    _addcdiv_(param, m, denom, -lr * mu_next / (1 - mu_product * mu_next))


def radam(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          decoupled_weight_decay=False, maximize=False):
    r"""Rectified Adam, exactly as ``torch.optim.RAdam``.

    .. math::

        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
        \hat m_t = \frac{m_t}{1-\beta_1^t},

    and :math:`x_{t+1} = x_t - \eta\, \hat m_t\, r_t \sqrt{1-\beta_2^t}/(\sqrt{v_t}+\epsilon)` with
    :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`
    while the variance is tractable (:math:`\rho_t > 5`), else plain momentum
    :math:`x_{t+1} = x_t - \eta\,\hat m_t`. Moments and weight decay as in :func:`adam`.
    """
    _check(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
    beta1, beta2 = betas
    t = _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                      decoupled=decoupled_weight_decay)
    m = _buffer(state, "exp_avg", param)
    v = _buffer(state, "exp_avg_sq", param)
    _ema_(m, g, beta1)
    _ema_sq_(v, g, beta2)
    bias_correction1, bias_correction2 = 1 - beta1**t, 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bias_correction2
    r = None                                             # no rectification: x ← x - η m̂
    if rho_t > 5.0:                                      # the variance is tractable
        r = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    s = _sqrt(v)
    s += eps                                             # √v + ε
    _rectified_step_(param, m, s, lr=lr, r=r, bias_correction1=bias_correction1,
                     bias_correction2=bias_correction2)  # x ← x - η r √(1-β2^t) m̂ / s


def namsgrad(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    r"""NAMSGrad: a Nesterov look-ahead on the first moment, AMSGrad's monotone second moment,
    no bias correction.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        \hat v_t = \max(\hat v_{t-1}, v_t) \quad (\hat v_0 = 0), \\
        x_{t+1} &= x_t - \eta_t\, \frac{\beta_1 m_t + (1-\beta_1) g_t}{\sqrt{\hat v_t} + \epsilon},

    with :math:`g_t = \nabla f(x_t) + \lambda x_t` (L2 weight decay :math:`\lambda`). The
    adaptive-methods chapter proves its convergence for :math:`\eta_t = \eta/\sqrt t`.
    """
    _check(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
    beta1, beta2 = betas
    _tick(state, param)
    g = _decayed_grad(param, grad, lr=lr, weight_decay=weight_decay)  # g + λ x
    m = _buffer(state, "exp_avg", param)
    v = _buffer(state, "exp_avg_sq", param)
    v_hat = _buffer(state, "max_exp_avg_sq", param)
    _ema_(m, g, beta1)                       # m ← β1 m + (1-β1) g
    _ema_sq_(v, g, beta2)                    # v ← β2 v + (1-β2) g²
    _max_(v_hat, v)                          # v̂ ← max(v̂, v)
    direction = m * beta1
    _axpy_(direction, g, 1 - beta1)          # β1 m + (1-β1) g
    denom = _sqrt(v_hat)
    denom += eps                             # √v̂ + ε
    _addcdiv_(param, direction, denom, -lr)  # x ← x - η (β1 m + (1-β1) g) / (√v̂ + ε)


# Every rule takes one array or a list/dict of arrays (and checks its parameters' type): the
# wrapper is applied here rather than with ``@`` so that the code the book shows is the rule alone.
for _name in __all__:
    globals()[_name] = _over_collections(globals()[_name])
del _name


# ---------------------------------------------------------------------------------------------
# In-place helpers: the only code that knows whether it holds a numpy array, a torch tensor or a
# list of torch tensors. On a tensor they call the operations torch.optim's single-tensor
# implementations call; on a list of tensors the torch._foreach_* operations of its multi-tensor
# (foreach=True) implementations, in the same order.


def _is_numpy(x) -> bool:
    if isinstance(x, _Many):
        return isinstance(x[0], np.ndarray)
    return isinstance(x, np.ndarray)


def _buffer(state, name, like, fill=0.0):
    """``state[name]``, created as an array like ``like`` filled with ``fill`` on first use."""
    buf = state.get(name)
    if buf is None:
        if isinstance(like, _Many):
            buf = _Many([_buffer({}, name, a, fill) for a in like])
        elif _is_numpy(like):
            buf = np.full_like(like, fill)
        else:
            import torch

            buf = torch.full_like(like, fill, memory_format=torch.preserve_format)
        state[name] = buf
    return buf


def _scalar_state(state, name, like, initial):
    """A scalar kept in ``state``: a Python number for numpy, a 0-d CPU tensor (as torch.optim
    keeps ``step`` and ``mu_product``) for torch, one per tensor for a list of tensors."""
    value = state.get(name)
    if value is None:
        if _is_numpy(like):
            value = type(initial)(initial)
        elif isinstance(like, _Many):
            value = _Many([_scalar_state({}, name, a, initial) for a in like])
        else:
            import torch

            value = torch.tensor(float(initial), dtype=_scalar_dtype())
        state[name] = value
    return value


def _tick(state, like):
    """Advance the step counter ``state["step"]`` and return the new step ``t`` (1 at first)."""
    step = _scalar_state(state, "step", like, 0)
    if _is_tensors(step) and not _compiling() and step[0].is_cpu:
        # as torch.optim: one CPU tensor 1.0 for all counters, not a Python 1 wrapped per tensor
        _foreach("add_", step, _one(), alpha=1.0)
    else:
        step += 1  # in place for a tensor (a list of tensors: one foreach op)
    state["step"] = step
    return _read(step)


@functools.cache
def _one():
    import torch

    return torch.tensor(1.0)


def _read(scalar):
    """A scalar state as a Python float -- or, inside ``torch.compile``, as the 0-d tensor itself,
    so that the compiled step neither breaks the graph nor recompiles when the step changes.

    A list of tensors keeps one counter per tensor (as torch.optim's state); ``dlopt.torch`` hands
    a rule only tensors whose counters agree, so the first one is the list's."""
    if isinstance(scalar, _Many):
        scalar = scalar[0]
    if isinstance(scalar, (int, float)) or not _compiling():
        return float(scalar)
    return scalar


def _number(x) -> bool:
    """Is ``x`` a plain Python/numpy number (not a 0-d tensor from a compiled step)?"""
    return isinstance(x, (int, float))


def _copy(x):
    """A new array equal to ``x``."""
    if isinstance(x, _Many):
        return _each(_copy, x)
    return x.copy() if isinstance(x, np.ndarray) else x.detach().clone()


def _plus(x, y, alpha):
    """A new array ``x + alpha * y``."""
    if type(x) is _Many and _is_tensors(x):
        if _number(alpha):
            return _Many(_foreach("add", x, y, alpha=alpha))
        return _Many(_foreach("add", x, _foreach("mul", y, alpha)))
    if isinstance(x, _Many):
        return _each(_plus, x, y, alpha)
    return x.add(y, alpha=alpha) if not isinstance(x, np.ndarray) and _number(alpha) else x + alpha * y


def _decayed_grad(param, grad, *, lr, weight_decay, maximize=False, decoupled=False):
    """The gradient a rule steps along: ``-grad`` when maximizing, plus the L2 term ``λ x``; or, with
    ``decoupled=True`` (AdamW), the gradient unchanged and the weights shrunk in place,
    ``x ← (1 - ηλ) x``. ``grad`` itself is never modified."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            g = _plus(g, param, weight_decay)
    return g


def _axpy_(y, x, alpha):
    """``y ← y + alpha * x`` in place."""
    if type(y) is _Many and _is_tensors(y):
        if _number(alpha):
            _foreach("add_", y, x, alpha=alpha)
        else:  # a 0-d tensor (compiled step): as torch.optim's foreach SGD, y + x * alpha
            _foreach("add_", y, _foreach("mul", x, alpha))
        return y
    if isinstance(y, _Many):
        return _each(_axpy_, y, x, alpha)
    if isinstance(y, np.ndarray):
        y += alpha * x
    elif _number(alpha):
        y.add_(x, alpha=alpha)
    else:
        y.add_(x * alpha)


def _ema_(m, x, beta):
    """Exponential moving average in place: ``m ← beta * m + (1 - beta) * x``."""
    if type(m) is _Many and _is_tensors(m) and _number(beta):
        return _foreach("lerp_", m, x, 1 - beta)
    if isinstance(m, _Many):
        return _each(_ema_, m, x, beta)
    if isinstance(m, np.ndarray):
        w = 1 - beta  # torch's lerp: m + w (x - m), or x - (1 - w)(x - m) for w ≥ 1/2
        d = np.subtract(x, m)
        if abs(w) < 0.5:
            d *= w
            m += d
        else:
            d *= 1 - w
            np.subtract(x, d, out=m)
    else:
        m.lerp_(x, 1 - beta)


def _ema_sq_(v, x, beta):
    """Exponential moving average of squares in place: ``v ← beta * v + (1 - beta) * x²``."""
    if type(v) is _Many and _is_tensors(v):
        _foreach("mul_", v, beta)
        if _number(beta):
            return _foreach("addcmul_", v, x, x, 1 - beta)
        return _foreach("add_", v, _foreach("mul_", _foreach("mul", x, x), 1 - beta))
    if isinstance(v, _Many):
        return _each(_ema_sq_, v, x, beta)
    if isinstance(v, np.ndarray):
        v *= beta
        _addcmul_(v, x, x, 1 - beta)
    elif _number(beta):
        v.mul_(beta).addcmul_(x, x, value=1 - beta)
    else:
        v.mul_(beta).add_(x * x * (1 - beta))


def _np_scaled_product(a, b, value):
    """A new numpy array ``(value * a) * b``, in torch's order of operations for ``addcmul``."""
    t = np.multiply(a, value)
    t *= b
    return t


def _addcmul_(y, a, b, value):
    """``y ← y + value * a * b`` in place."""
    if type(y) is _Many and _is_tensors(y):
        if _number(value):
            return _foreach("addcmul_", y, a, b, value)
        return _foreach("add_", y, _foreach("mul_", _foreach("mul", a, b), value))
    if isinstance(y, _Many):
        return _each(_addcmul_, y, a, b, value)
    if isinstance(y, np.ndarray):
        y += _np_scaled_product(a, b, value)
    elif _number(value):
        y.addcmul_(a, b, value=value)
    else:
        y.add_(a * b * value)


def _addcmul(y, a, b, value):
    """A new array ``y + value * a * b``."""
    if type(y) is _Many and _is_tensors(y):
        if _number(value):
            return _Many(_foreach("addcmul", y, a, b, value))
        return _Many(_foreach("add", y, _foreach("mul_", _foreach("mul", a, b), value)))
    if isinstance(y, _Many):
        return _each(_addcmul, y, a, b, value)
    if isinstance(y, np.ndarray):
        return _np_scaled_product(a, b, value).__iadd__(y)
    return y.addcmul(a, b, value=value) if _number(value) else y + a * b * value


def _addcdiv_(y, a, b, value, *, scale_first=False):
    """``y ← y + value * a / b`` in place.

    On a list of tensors, ``scale_first=True`` forms ``value * a`` first and adds it divided by
    ``b`` (torch.optim's foreach Adagrad); otherwise ``value`` goes to ``_foreach_addcdiv_``
    (its foreach Adam, NAdam, RMSprop)."""
    if type(y) is _Many and _is_tensors(y):
        if not _number(value):  # a 0-d tensor (compiled step): y + a / b * value
            return _foreach("add_", y, _foreach("mul_", _foreach("div", a, b), value))
        if scale_first:
            return _foreach("addcdiv_", y, _foreach("mul", a, value), b)
        return _foreach("addcdiv_", y, a, b, value)
    if isinstance(y, _Many):
        return _each(_addcdiv_, y, a, b, value)
    if isinstance(y, np.ndarray):
        t = np.multiply(a, value)
        t /= b
        y += t
    elif _number(value):
        y.addcdiv_(a, b, value=value)
    else:
        y.add_(a / b * value)


def _sqrt(x):
    """A new array ``√x``."""
    if type(x) is _Many and _is_tensors(x):
        return _Many(_foreach("sqrt", x))
    if isinstance(x, _Many):
        return _each(_sqrt, x)
    return np.sqrt(x) if isinstance(x, np.ndarray) else x.sqrt()


def _sqrt_(x):
    """``x ← √x`` in place; returns ``x``."""
    if type(x) is _Many and _is_tensors(x):
        return _foreach("sqrt_", x)
    if isinstance(x, _Many):
        return _each(_sqrt_, x)
    if isinstance(x, np.ndarray):
        return np.sqrt(x, out=x)
    return x.sqrt_()


def _max_(y, x):
    """``y ← max(y, x)`` elementwise in place; returns ``y``."""
    if type(y) is _Many and _is_tensors(y):
        return _foreach("maximum_", y, x)
    if isinstance(y, _Many):
        return _each(_max_, y, x)
    if isinstance(y, np.ndarray):
        return np.maximum(y, x, out=y)
    import torch

    return torch.maximum(y, x, out=y)


def _sqrt_div(v, c):
    """A new array ``√(v / c)`` for a positive number ``c``: torch.optim's single-tensor NAdam
    divides and takes the root, its foreach NAdam divides ``√v`` by ``√c``; so do these."""
    if type(v) is _Many and _is_tensors(v):
        return _Many(_foreach("div_", _foreach("sqrt", v), c**0.5))
    return _sqrt_(v / c)


def _rectified_step_(param, m, s, *, lr, r, bias_correction1, bias_correction2):
    """RAdam's step in place: ``x ← x - η r √(1-β2^t) / (1-β1^t) · m / s`` (``s = √v + ε``), or,
    with ``r=None`` (variance not tractable), ``x ← x - η m / (1-β1^t)``.

    Rounded as torch.optim rounds it: its single-tensor RAdam forms ``m̂ = m / (1-β1^t)`` and
    subtracts ``m̂ η (√(1-β2^t) / s) r``; its foreach RAdam folds the scalars into a factor ``k``
    per tensor (``-0.0`` without rectification) and adds ``m · (1 / (s / k) + k')`` with
    ``k' = -η / (1-β1^t)`` without rectification (``-0.0`` with it)."""
    if type(param) is _Many and _is_tensors(param) and _number(lr) and _number(bias_correction1):
        rect, unrectified = (0, 1.0) if r is None else (r, 0)
        k = bias_correction2**0.5 * (lr * rect / bias_correction1) * -1
        step = _foreach("reciprocal_", _foreach("div", s, k))
        _foreach("add_", step, (lr * unrectified / bias_correction1) * -1)
        _foreach("addcmul_", param, m, step)
        return
    m_hat = m / bias_correction1
    if r is None:
        param -= m_hat * lr
    else:
        param -= m_hat * lr * (bias_correction2**0.5 / s) * r
