r"""Parallel and distributed SGD: simulators in numpy and real runs on ``torch.distributed``.

The numpy part simulates K workers on least squares
:math:`f(w)=\frac1{2m}\lVert Xw-y\rVert^2` (synchronous data-parallel SGD, asynchronous SGD with
delayed gradients, local SGD with periodic averaging, compressed gradients); the analysis part
gives the stability threshold of the delayed recursion. The ``torch.distributed`` part starts K
processes with the gloo backend on the loopback interface only (they meet through a file store), through
:func:`launch`, which always terminates its processes (bounded time-outs, clean shutdown).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from typing import Callable

import numpy as np

from dlopt.optim import rules
from dlopt.optim.runner import Trajectory, run

__all__ = [
    "allreduce_worker",
    "critical_delay_step",
    "delayed_gd",
    "delayed_spectral_radius",
    "global_batches",
    "launch",
    "local_sgd",
    "lsq_grad",
    "parameter_server_worker",
    "qsgd",
    "sync_sgd",
    "topk",
]


# ----------------------------------------------------------------------------- numpy simulators
def lsq_grad(X, y, w):
    r"""Gradient :math:`\frac1b X^\top(Xw-y)` of :math:`\frac1{2b}\lVert Xw-y\rVert^2` (b = rows)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    return X.T @ (X @ w - y) / X.shape[0]


def global_batches(m: int, workers: int, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    """Sample indices of shape ``(steps, workers, batch)``: each step draws ``workers*batch``
    distinct samples (without replacement) and deals them out in consecutive blocks, so that
    ``global_batches(m, K, b, ...)`` and ``global_batches(m, 1, K*b, ...)`` use the same samples."""
    if workers < 1 or batch < 1 or workers * batch > m:
        raise ValueError(f"need 1 <= workers*batch <= m, got workers={workers}, batch={batch}, m={m}")
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(m, workers * batch, replace=False) for _ in range(steps)])
    return idx.reshape(steps, workers, batch)


def sync_sgd(X, y, w0, *, lr: float, steps: int, workers: int = 1, batch: int = 1, seed: int = 0,
             compress: Callable | None = None, error_feedback: bool = False, rng=None) -> np.ndarray:
    """Synchronous data-parallel SGD on least squares; returns the iterates ``(steps+1, n)``.

    At every step each of the ``workers`` computes the mean gradient on its own ``batch`` samples,
    the gradients are averaged (the all-reduce) and every replica takes the same step. With
    ``compress(g, rng) -> g_hat`` each worker sends a compressed gradient, optionally with error
    feedback (the part left out is added to the next gradient).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    idx = global_batches(X.shape[0], workers, batch, steps, seed)
    rng = np.random.default_rng(seed + 1) if rng is None else rng
    memory = np.zeros((workers, np.size(w0)))

    def all_reduce(w, k, rng):
        """The workers' gradients at step k (compressed, with error feedback), averaged."""
        nonlocal memory
        grads = np.stack([lsq_grad(X[idx[k, r]], y[idx[k, r]], w) for r in range(workers)])
        if compress is not None:
            corrected = grads + memory if error_feedback else grads
            sent = np.stack([compress(g, rng) for g in corrected])
            if error_feedback:
                memory = corrected - sent
            grads = sent
        return grads.mean(axis=0)

    return _xs(run(rules.gd, all_reduce, w0, steps, lr=lr, rng=rng, record="x"))


def local_sgd(X, y, w0, *, lr: float, rounds: int, period: int, workers: int, batch: int = 1,
              seed: int = 0) -> np.ndarray:
    """Local SGD: each worker takes ``period`` SGD steps on its own samples, then the replicas
    are averaged (one communication round). Returns the averaged model after each round,
    shape ``(rounds+1, n)``. ``period=1`` is synchronous SGD."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    idx = global_batches(X.shape[0], workers, batch, rounds * period, seed)

    def own_samples(replicas, k, rng):
        """Each replica's (one row each) gradient on its own samples of step k."""
        return np.stack([lsq_grad(X[idx[k, q]], y[idx[k, q]], replicas[q]) for q in range(workers)])

    w = np.array(w0, dtype=float)
    path = [w.copy()]
    for r in range(rounds):  # the replicas run side by side for `period` steps, then are averaged
        local = run(rules.gd, own_samples, np.tile(w, (workers, 1)), period, lr=lr, record=(),
                    start=r * period)
        w = local.x.mean(axis=0)
        path.append(w.copy())
    return np.array(path)


def delayed_gd(grad: Callable, x0, *, lr: float, steps: int, delay=0, seed: int = 0) -> np.ndarray:
    r"""Asynchronous SGD as gradient descent with stale gradients:
    :math:`x_{k+1}=x_k-\eta\,\nabla f(x_{k-\tau_k})` (with :math:`x_j=x_0` for :math:`j<0`).

    ``delay`` is a fixed integer :math:`\tau` or a callable ``delay(k, rng) -> tau_k``.
    Returns the iterates ``(steps+1, n)``; stops early (padding with ``inf``) on overflow.
    """
    x0 = np.atleast_1d(np.asarray(x0, dtype=float))
    seen: list[np.ndarray] = []  # x_0, ..., x_k

    def stale_gradient(x, k, rng):
        """The gradient at x_{k - tau_k}, the iterate the worker read tau_k updates ago."""
        seen.append(x.copy())
        tau = int(delay(k, rng)) if callable(delay) else int(delay)
        if tau < 0:
            raise ValueError(f"delays must be >= 0, got {tau}")
        return grad(seen[max(k - tau, 0)])

    def overflow(x):
        return not np.all(np.isfinite(x)) or np.abs(x).max() > 1e150

    traj = run(rules.gd, stale_gradient, x0, steps, lr=lr, rng=np.random.default_rng(seed), record="x",
               stop=overflow)
    path = np.full((steps + 1, x0.size), np.inf)
    kept = int(traj.hit) if traj.hit is not None and traj.hit >= 0 else steps + 1
    path[:kept] = _xs(traj)[:kept]
    return path


def _xs(traj: Trajectory) -> np.ndarray:
    """The recorded iterates of a run that recorded them."""
    assert traj.xs is not None
    return traj.xs


def delayed_spectral_radius(a: float, tau: int) -> float:
    r"""Largest root modulus of :math:`z^{\tau+1}-z^\tau+a`, the characteristic polynomial of
    :math:`e_{k+1}=e_k-a\,e_{k-\tau}` (one eigen-direction, :math:`a=\eta\lambda`)."""
    coeffs = np.zeros(tau + 2)
    coeffs[0], coeffs[1], coeffs[-1] = 1.0, -1.0, a
    if tau == 0:
        coeffs = np.array([1.0, a - 1.0])
    return float(np.abs(np.roots(coeffs)).max())


def critical_delay_step(tau: int, tol: float = 1e-10) -> float:
    r"""Largest :math:`a=\eta\lambda` for which the delayed recursion is stable, found by
    bisection on :func:`delayed_spectral_radius` (it equals :math:`2\sin\frac{\pi}{2(2\tau+1)}`)."""
    lo, hi = 0.0, 2.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if delayed_spectral_radius(mid, tau) < 1 else (lo, mid)
    return lo


def topk(v, k: int, rng=None) -> np.ndarray:
    """Keep the ``k`` entries of largest magnitude, zero the rest (a biased compressor)."""
    v = np.asarray(v, dtype=float)
    out = np.zeros_like(v)
    keep = np.argsort(-np.abs(v))[:k]
    out[keep] = v[keep]
    return out


def qsgd(v, levels: int, rng: np.random.Generator) -> np.ndarray:
    r"""QSGD stochastic quantisation: :math:`\lVert v\rVert\,\mathrm{sign}(v_i)\,\xi_i/s` with
    :math:`\xi_i\in\{\ell,\ell+1\}` rounded at random so that the result is unbiased."""
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v)
    if norm == 0:
        return np.zeros_like(v)
    scaled = np.abs(v) / norm * levels
    lower = np.floor(scaled)
    xi = lower + (rng.random(v.shape) < scaled - lower)
    return norm * np.sign(v) * xi / levels


# ----------------------------------------------------------------------- torch.distributed runs


def _init(rank: int, world: int, store: str, timeout: float):
    """Join the gloo group. The ranks meet through a file store in a fresh temporary directory
    rather than a TCP store on a pre-chosen port: a port picked as free can be taken by another
    process (a Jupyter kernel starting next door, say) before rank 0 binds it. Gloo's own
    connections then bind port 0 on loopback, which the operating system assigns atomically."""
    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout))
    return dist


def _entry(rank, worker, world, store, outdir, timeout, kwargs):
    import torch

    torch.set_num_threads(1)
    dist = _init(rank, world, store, timeout)
    try:
        result = worker(rank, world, dist, **kwargs)
        torch.save(result, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def launch(worker: Callable, world_size: int, timeout: float = 60.0, **kwargs) -> list:
    """Run ``worker(rank, world_size, dist, **kwargs)`` in ``world_size`` processes joined by a
    gloo process group on 127.0.0.1 (rendezvous through a file store); return the per-rank results.

    ``worker`` must be a module-level function (spawned processes import it by name). Every
    process is terminated when this function returns, also on error or after ``timeout`` seconds.
    """
    import torch
    import torch.multiprocessing as mp

    # forkserver: one server process imports torch once, every worker is forked from it
    # (a fresh interpreter per worker, as with spawn, costs ~1.6 s of torch import each)
    mp.get_context("forkserver").set_forkserver_preload(["torch", "torch.distributed", __name__])
    with tempfile.TemporaryDirectory() as outdir:
        store = os.path.join(outdir, "rendezvous")
        ctx = mp.start_processes(_entry, args=(worker, world_size, store, outdir, timeout, kwargs),
                                 nprocs=world_size, join=False, start_method="forkserver")
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=0.2):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"distributed run did not finish within {timeout} s")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
            for p in ctx.processes:
                p.join(5)
                if p.is_alive():
                    p.kill()
        return [torch.load(os.path.join(outdir, f"rank{r}.pt"), weights_only=False)
                for r in range(world_size)]


def _torch_grad(X, y, w, rows):
    """Gradient of ``0.5*mean((X w - y)^2)`` on ``rows`` by autograd (float64)."""
    w = w.detach().clone().requires_grad_(True)
    loss = 0.5 * ((X[rows] @ w - y[rows]) ** 2).mean()
    loss.backward()
    return w.grad


def allreduce_worker(rank, world, dist, *, X, y, w0, lr, steps, batch, seed=0):
    """Data-parallel SGD: every rank computes the gradient on its block of the global batch;
    ``dist.all_reduce`` sums them, each replica divides by the world size and steps."""
    import torch

    X, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    idx = torch.as_tensor(global_batches(X.shape[0], world, batch, steps, seed))
    w = torch.as_tensor(w0, dtype=torch.float64).clone()
    for k in range(steps):
        g = _torch_grad(X, y, w, idx[k, rank])
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        rules.gd(w, g / world, lr=lr)  # the averaged gradient, the same step on every replica
    return {"w": w.numpy()}


def parameter_server_worker(rank, world, dist, *, X, y, w0, lr, updates, batch, mode="sync",
                            seed=0):
    """A parameter server on rank 0 and ``world-1`` gradient workers, point-to-point only.

    ``mode="sync"``: at every step the server sends ``w`` to all workers, waits for all their
    gradients, and steps with the average (= synchronous SGD, ``updates`` steps).
    ``mode="async"``: the server applies each gradient the moment it arrives and sends the
    current ``w`` back to that worker only; a gradient computed on version ``v`` applied at version
    ``u`` has staleness ``u - v``. The server returns the final ``w`` and the staleness of each
    update; a message whose last entry is ``-1`` tells a worker to stop.
    """
    import torch

    X, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    n, workers = X.shape[1], world - 1
    msg = torch.zeros(n + 1, dtype=torch.float64)  # parameters or gradient, then version / flag
    if rank == 0:
        w = torch.as_tensor(w0, dtype=torch.float64).clone()
        staleness = []
        if mode == "sync":
            for k in range(updates):
                for r in range(1, world):
                    dist.send(torch.cat([w, torch.tensor([float(k)], dtype=torch.float64)]), dst=r)
                total = torch.zeros(n, dtype=torch.float64)
                for r in range(1, world):
                    dist.recv(msg, src=r)
                    total += msg[:n]
                rules.gd(w, total / workers, lr=lr)
                staleness += [0] * workers
            for r in range(1, world):
                dist.send(torch.cat([w, torch.tensor([-1.0], dtype=torch.float64)]), dst=r)
        elif mode == "async":
            version = sent = received = 0
            for r in range(1, world):
                dist.send(torch.cat([w, torch.tensor([0.0], dtype=torch.float64)]), dst=r)
                sent += 1
            while received < sent:
                src = dist.recv(msg)  # from whichever worker finishes first
                received += 1
                staleness.append(version - int(msg[n]))
                rules.gd(w, msg[:n], lr=lr)
                version += 1
                flag = float(version) if sent < updates else -1.0
                sent += flag >= 0
                dist.send(torch.cat([w, torch.tensor([flag], dtype=torch.float64)]), dst=src)
        else:
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        return {"w": w.numpy(), "staleness": np.array(staleness)}
    # gradient worker
    if mode == "sync":
        idx = torch.as_tensor(global_batches(X.shape[0], workers, batch, updates, seed))
    rng = np.random.default_rng([seed, rank])
    done = 0
    while True:
        dist.recv(msg, src=0)
        if msg[n] < 0:
            return {"gradients": done}
        w = msg[:n].clone()
        if mode == "sync":
            rows = idx[int(msg[n]), rank - 1]
        else:
            rows = torch.as_tensor(rng.choice(X.shape[0], batch, replace=False))
        g = _torch_grad(X, y, w, rows)
        dist.send(torch.cat([g, msg[n:].clone()]), dst=0)
        done += 1
