r"""Experiment harnesses for the chapter on adaptive methods (and anyone who needs them).

- :func:`replay` feeds a *given* gradient sequence to an update rule and records the rule's state
  (moment estimates, accumulators) and the step it took, one row per step -- the way to tabulate
  what Adam or RMSProp does with an outlier or a sign-flipping gradient.
- :func:`run_batch` advances many independent runs at once: the iterate is an ``(S, n)`` array,
  one row per run (seed), and the rules of :mod:`dlopt.rules`, being coordinate-wise, update all
  rows in one call. An optional projection keeps the iterates in a box (online problems).
- :func:`mean_ci` (:func:`dlopt.stochastic.mean_ci`) turns the per-seed results into a mean and a
  confidence half-width.
- :func:`mlp_grad` and :func:`mlp_sampler` give the gradient of a :class:`dlopt.nn.MLP` for a
  *stack* of parameter vectors (one network per row), so that :func:`run_batch` trains many
  networks -- seeds -- in one vectorised loop.
- :func:`digits_cnn` and :func:`train_classifier` train a small CNN on scikit-learn's digits with
  any ``torch.optim``-style optimizer, on ``dlopt.device()``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from dlopt.optim.runner import as_oracle, run
from dlopt.book.stochastic import mean_ci

__all__ = ["replay", "run_batch", "mean_ci", "mlp_grad", "mlp_sampler", "digits_cnn", "train_classifier"]


def replay(rule: Callable, grads, *, lr, x0=None, **hyperparameters) -> dict:
    """Apply ``rule`` to the gradient sequence ``grads`` (shape ``(T, n)`` or ``(T,)``).

    The gradients are *given* (they do not depend on the iterate), so the record shows how the
    rule turns a gradient history into steps. Returns a dict of arrays with one row per step:
    ``"x"`` (the iterate after the step), ``"step"`` (``x_{t} - x_{t-1}``), ``"grad"``, and one
    entry per array-valued or scalar entry of the rule's ``state`` after the step (for example
    ``"exp_avg"`` and ``"exp_avg_sq"`` for Adam; the rule's step counter ``state["step"]`` is
    recorded as ``"t"``). A view of :func:`dlopt.run` with the oracle ``k -> grads[k]``.
    """
    g = np.asarray(grads, dtype=float)
    squeeze = g.ndim == 1
    g = g.reshape(len(g), -1)
    x = np.zeros(g.shape[1]) if x0 is None else np.array(x0, dtype=float).reshape(-1).copy()
    traj = run(rule, lambda x, k, rng: g[k], x, len(g), lr=lr, record=("x", "grad", "state"),
               blowup=None, **hyperparameters)
    assert traj.xs is not None
    out = {"x": traj.xs[1:], "step": np.diff(traj.xs, axis=0), "grad": traj.trace["grad"]}
    out.update((key, v) for key, v in traj.trace.items() if key != "grad")
    if squeeze:
        out = {key: (v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v) for key, v in out.items()}
    return out


def run_batch(rule: Callable, grad: Callable, x0, steps: int, *, lr, project=None, every: int = 1,
              trace: tuple[str, ...] = (), progress: bool = False, desc: str | None = None,
              **hyperparameters):
    """Run ``steps`` iterations of ``rule`` on a stack of independent iterates: a view of
    :func:`dlopt.run` returning arrays.

    Parameters
    ----------
    rule
        A coordinate-wise rule of :mod:`dlopt.rules` (``rule(param, grad, state, lr=..., **hp)``).
    grad
        Gradient oracle ``grad(X, k, rng)`` (or ``grad(X, k)``) of the same shape as ``X``, where
        ``X`` holds one iterate per row (for instance a mini-batch sampler that draws one batch
        per row).
    x0
        Starting points, shape ``(S, n)`` (``(n,)`` is treated as ``S = 1``).
    lr
        A constant step size or a schedule ``lr(k)`` (so is every other hyperparameter).
    project
        ``None``, a pair ``(low, high)`` to clip the iterates to after each step (projected
        online methods), or a function modifying ``X`` in place.
    every
        Record the iterates every ``every`` steps (and always the last one).
    trace
        Names of entries of the rule's ``state`` to record after *every* step (e.g.
        ``("exp_avg", "max_exp_avg_sq")``); ``"grad"`` records the oracle's gradients and
        ``"lr"`` the step sizes.

    Returns the recorded iterates, shape ``(records, S, n)``; row 0 is ``x0``. With ``trace``,
    returns ``(iterates, traced)`` where ``traced[name]`` has shape ``(steps, S, n)`` (``(steps,)``
    for ``"lr"``).
    """
    X = np.array(x0, dtype=float)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"x0 must have shape (S, n) or (n,), got {np.shape(x0)}")
    traj = run(rule, as_oracle(grad), X, steps, lr=lr, project=project, every=every,
               record=("x", *trace), blowup=None, progress=progress,
               desc=desc or getattr(rule, "__name__", "run_batch"), **hyperparameters)
    if trace:
        return traj.xs, {name: traj.lrs if name == "lr" else traj.trace[name] for name in trace}
    return traj.xs


def mlp_grad(net, Theta, X, y, loss: str = "squared"):
    r"""Gradients of the empirical risk of ``net`` (a :class:`dlopt.nn.MLP`) for a stack of
    parameter vectors at once.

    ``Theta`` has shape ``(S, P)`` with ``P = net.n_params`` (``(P,)`` is treated as ``S = 1``).
    ``X`` is either one batch ``(B, d)`` shared by all rows, with targets ``y`` of shape ``(B, ...)``,
    or one batch per row, ``(S, B, d)`` with ``y`` of shape ``(S, B, ...)``. Returns an array of the
    shape of ``Theta`` whose row ``s`` is ``net.loss_and_grad(Theta[s], X[s], y[s], loss)[1]``: the
    network's own backpropagation (:meth:`dlopt.nn.MLP.backward`), row by row.
    """
    from dlopt.problems.nn import LOSSES

    Theta = np.asarray(Theta, dtype=float)
    squeeze = Theta.ndim == 1
    Theta = Theta[None, :] if squeeze else Theta
    if Theta.ndim != 2 or Theta.shape[1] != net.n_params:
        raise ValueError(f"Theta must have shape (S, {net.n_params}), got {np.shape(Theta)}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    S = Theta.shape[0]
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim == 2:                                   # one batch shared by every row
        X = np.broadcast_to(X, (S,) + X.shape)
        y = np.broadcast_to(y, (S,) + y.shape)
    if X.ndim != 3 or X.shape[0] != S or y.shape[:2] != X.shape[:2]:
        raise ValueError(f"X must be (B, d) or ({S}, B, d) with matching y, got {X.shape} and {y.shape}")
    out = np.stack([net.loss_and_grad(Theta[s], X[s], y[s], loss)[1] for s in range(S)])
    return out[0] if squeeze else out


def mlp_sampler(net, X, y, batch_size: int, rng: np.random.Generator, loss: str = "squared"):
    r"""A mini-batch gradient oracle ``g(Theta, k, rng)`` (using its own ``rng``) for
    :func:`run_batch`: every row of the stack ``Theta`` (one network per row) draws its own batch
    of ``batch_size`` samples of ``(X, y)`` (uniformly, with replacement) at every call, and gets
    :func:`mlp_grad` on it."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    m = X.shape[0]
    if not 1 <= batch_size <= m:
        raise ValueError(f"batch_size must be in [1, {m}], got {batch_size}")
    if y.shape[0] != m:
        raise ValueError(f"X and y must have the same number of samples, got {m} and {y.shape[0]}")

    def oracle(Theta, k, rng_=None):
        rows = 1 if np.ndim(Theta) == 1 else np.shape(Theta)[0]
        idx = rng.integers(0, m, size=(rows, batch_size))
        g = mlp_grad(net, np.reshape(Theta, (rows, -1)), X[idx], y[idx], loss)
        return g.reshape(np.shape(Theta))

    return oracle


def digits_cnn(channels: tuple[int, int] = (16, 32), classes: int = 10):
    """A small CNN for 1×8×8 images: two 3×3 conv layers with ReLU, 2×2 max-pooling, a linear head."""
    from torch import nn

    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 16, classes),
    )


def train_classifier(model, optimizer, X_train, y_train, X_test, y_test, *, epochs: int = 10,
                     batch_size: int = 64, device=None, seed: int = 0, progress: bool = True,
                     desc: str = "training") -> dict:
    """Train ``model`` with cross-entropy and mini-batches reshuffled every epoch.

    ``X_*``/``y_*`` are numpy arrays or tensors; they are moved once to ``device`` (default: the
    model's device). Returns per-epoch lists ``train_loss`` (mean over the epoch's batches),
    ``test_loss`` and ``test_acc``, plus ``seconds`` (wall time of the whole loop).
    """
    import time

    import torch
    from torch.nn import functional as F

    if device is None:
        device = next(model.parameters()).device
    as_t = lambda a, dt: torch.as_tensor(a, dtype=dt).to(device)  # noqa: E731
    Xtr, ytr = as_t(X_train, torch.float32), as_t(y_train, torch.long)
    Xte, yte = as_t(X_test, torch.float32), as_t(y_test, torch.long)
    gen = torch.Generator().manual_seed(seed)
    m = len(Xtr)
    history: dict[str, Any] = {"train_loss": [], "test_loss": [], "test_acc": []}
    start = time.perf_counter()
    epochs_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs_iter = tqdm(epochs_iter, desc=desc, leave=False)
    for _ in epochs_iter:
        model.train()
        perm = torch.randperm(m, generator=gen).to(device)
        total = torch.zeros((), device=device)
        batches = 0
        for i in range(0, m, batch_size):
            idx = perm[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(Xtr[idx]), ytr[idx])
            loss.backward()
            optimizer.step()
            total += loss.detach()
            batches += 1
        model.eval()
        with torch.no_grad():
            logits = model(Xte)
            history["test_loss"].append(float(F.cross_entropy(logits, yte)))
            history["test_acc"].append(float((logits.argmax(1) == yte).float().mean()))
        history["train_loss"].append(float(total) / batches)
    history["seconds"] = time.perf_counter() - start
    return history
