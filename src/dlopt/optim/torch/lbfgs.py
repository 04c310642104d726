"""``LBFGS``: a drop-in for ``torch.optim.LBFGS`` on the book's shared L-BFGS code.

The algorithm is not written here a second time: the direction comes from
:func:`dlopt.secondorder.two_loop`, the memory from :func:`dlopt.secondorder.lbfgs_remember`
(with torch's absolute curvature threshold ``yᵀs > 1e-10``) and the step from
:func:`dlopt.linesearch.strong_wolfe`. This class only does what ``torch.optim.LBFGS`` does
around them: flattening the parameters, closures, the iteration and evaluation budgets per
``step``, the stopping rules and the ``state`` (same keys, so ``state_dict`` round-trips).

Semantics follow ``torch.optim.LBFGS`` exactly (in float64 the iterates agree with it to
rounding): first step ``t = min(1, 1/‖g‖₁)·lr``, then ``t = lr``; ``H₀ = (sᵀy/yᵀy) I``; stop when
``‖g‖∞ ≤ tolerance_grad``, ``gᵀd > -tolerance_change``, ``‖t d‖∞ ≤ tolerance_change`` or
``|Δf| < tolerance_change``, or after ``max_iter`` iterations / ``max_eval`` evaluations per step;
the strong-Wolfe search uses ``c1=1e-4, c2=0.9``, a bracket tolerance of ``1e-9`` and torch's
variant of the zoom (``variant="torch"``).
Line-search scalars are compared in float64 even for float32 parameters.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import Optimizer

from dlopt.optim.linesearch import strong_wolfe
from dlopt.optim.secondorder import lbfgs_remember, two_loop

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """L-BFGS with the arguments and defaults of ``torch.optim.LBFGS``.

    Args:
        params: iterable of parameters (one parameter group only).
        lr: step scale (default 1).
        max_iter: iterations per ``step`` (default 20).
        max_eval: closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad: stop when ``‖g‖∞`` is at most this (default 1e-7).
        tolerance_change: stop when the step or the change of the loss is below this (default 1e-9).
        history_size: memory ``m`` of the two-loop recursion (default 100).
        line_search_fn: ``None`` (fixed step ``lr``) or ``'strong_wolfe'``.
    """

    def __init__(self, params, lr=1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"only 'strong_wolfe' is supported, got line_search_fn={line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._numel_cache: int | None = None

    # --- the parameters as one flat vector ----------------------------------------------------

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(2 * p.numel() if torch.is_complex(p) else p.numel() for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self):
        views = []
        for p in self._params:
            if p.grad is None:
                view = p.new(p.numel()).zero_()
            elif p.grad.is_sparse:
                view = p.grad.to_dense().view(-1)
            else:
                view = p.grad.view(-1)
            if torch.is_complex(view):
                view = torch.view_as_real(view).view(-1)
            views.append(view)
        return torch.cat(views, 0)

    def _add_grad(self, step_size, update) -> None:
        """x ← x + step_size · update (update flat)."""
        offset = 0
        for p in self._params:
            if torch.is_complex(p):
                p = torch.view_as_real(p)
            numel = p.numel()
            p.add_(update[offset:offset + numel].view_as(p), alpha=step_size)
            offset += numel

    def _clone_param(self):
        return [p.clone(memory_format=torch.contiguous_format) for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, pdata in zip(self._params, params_data):
            p.copy_(pdata)

    def _line(self, closure, x, d):
        """φ(t) = (f(x + t d), ∇f(x + t d)ᵀd, ∇f(x + t d)) for :func:`dlopt.linesearch.strong_wolfe`;
        the parameters are restored to ``x`` after each evaluation."""

        def phi(t):
            self._add_grad(t, d)
            loss = float(closure())
            flat_grad = self._gather_flat_grad()
            self._set_param(x)
            return loss, flat_grad.dot(d).item(), flat_grad

        return phi

    # --- the iteration -----------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; ``closure()`` re-evaluates the model, calls
        ``backward()`` and returns the loss. Returns the loss at the starting point."""
        if closure is None:
            raise RuntimeError("LBFGS requires a closure that re-evaluates the model and returns the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        # LBFGS has only global state, registered under the first parameter (as torch does)
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        opt_cond = flat_grad.abs().max() <= tolerance_grad
        if opt_cond:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # direction: steepest descent first, then the two-loop recursion
            if state["n_iter"] == 1:
                d = flat_grad.neg()
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                gamma = lbfgs_remember(old_stps, old_dirs, ro, d.mul(t), flat_grad.sub(prev_flat_grad),
                                       history_size, min_curvature=1e-10)
                if gamma is not None:
                    H_diag = gamma
                d = two_loop(flat_grad, old_stps, old_dirs, ro, H_diag)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            # step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr  # a tensor when below 1, as in torch
            else:
                t = lr
            gtd = flat_grad.dot(d).item()
            if gtd > -tolerance_change:
                break

            if line_search_fn is not None:
                x_init = self._clone_param()
                found = strong_wolfe(self._line(closure, x_init, d), t, loss, gtd, flat_grad,
                                     max_iter=max_eval - current_evals,
                                     d_norm=d.abs().max().item(), variant="torch")
                loss, flat_grad, t, ls_func_evals = found.f, found.data, found.t, found.evaluations
                self._add_grad(t, d)
                opt_cond = flat_grad.abs().max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                ls_func_evals = 0
                if n_iter != max_iter:  # no re-evaluation after the last iteration (as torch)
                    with torch.enable_grad():
                        loss = closure()
                    loss = float(loss)
                    flat_grad = self._gather_flat_grad()
                    opt_cond = flat_grad.abs().max() <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping rules
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if d.mul(t).abs().max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
