"""A small deterministic problem shared by the rule and torch-shell parity tests.

f(x) = ½‖A x − b‖² + 0.025 Σ x⁴ over three parameter tensors of different shapes (x is their
concatenation); with ``maximize=True`` the problem is −f. The
gradient is computed in numpy so every optimizer sees the same numbers.
"""

from __future__ import annotations

import numpy as np

SHAPES = [(5, 3), (3,), (2, 2, 2)]


class Problem:
    def __init__(self, seed: int = 0, maximize: bool = False):
        self.sign = -1.0 if maximize else 1.0  # maximize -f, so that maximize=True converges
        rng = np.random.default_rng(seed)
        n = sum(int(np.prod(s)) for s in SHAPES)
        self.A = rng.standard_normal((40, n)) / 4
        self.b = rng.standard_normal(40)
        self.x0 = [rng.standard_normal(s) for s in SHAPES]

    def grads(self, xs):
        x = np.concatenate([np.asarray(a, dtype=float).ravel() for a in xs])
        g = self.sign * (self.A.T @ (self.A @ x - self.b) + 0.1 * x**3)
        out, i = [], 0
        for s in SHAPES:
            k = int(np.prod(s))
            out.append(g[i : i + k].reshape(s))
            i += k
        return out


def rel_err(xs, ys) -> float:
    """max |x − y| / max(|x|, 1) over all entries of all tensors."""
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y)) / np.maximum(np.abs(np.asarray(x)), 1.0)))
        for x, y in zip(xs, ys)
    )
