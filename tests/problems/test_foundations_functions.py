"""Objectives of the foundations chapter: derivatives, shapes, and the properties pages rely on."""

from __future__ import annotations

import numpy as np
import pytest

from dlopt import calculus as C
from dlopt import functions as F

rng = np.random.default_rng(1)

NEW = [F.MonkeySaddle(), F.PLNonconvex(), F.PLNonconvex(dim=2), F.PLNonconvex(dim=4, a=1.5)]


@pytest.mark.parametrize("f", NEW, ids=repr)
def test_derivatives_match_finite_differences(f):
    for _ in range(5):
        x = rng.uniform(-2, 2, f.dim)
        np.testing.assert_allclose(f.grad(x), C.gradient(f, x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f.hess(x), C.hessian(f, x, grad=f.grad), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("f", NEW, ids=repr)
def test_batched_points(f):
    X = rng.uniform(-1, 1, (3, 5, f.dim))
    V, G, H = f.value(X), f.grad(X), f.hess(X)
    assert V.shape == (3, 5) and G.shape == (3, 5, f.dim) and H.shape == (3, 5, f.dim, f.dim)
    np.testing.assert_allclose(H[1, 2], f.hess(X[1, 2]))
    np.testing.assert_allclose(V[2, 4], f.value(X[2, 4]))


def test_values_accept_torch():
    import torch

    for f in NEW:
        x = torch.tensor(rng.uniform(-1, 1, f.dim), requires_grad=True)
        f.value(x).backward()
        np.testing.assert_allclose(x.grad.numpy(), f.grad(x.detach().numpy()), rtol=1e-10)


def test_pl_nonconvex_is_pl_smooth_and_not_convex():
    f = F.PLNonconvex()
    mu = f.pl_constant
    assert 1 / 32 < mu < 0.2
    t = np.linspace(-30, 30, 200_001)[:, None]
    ratio = 0.5 * f.grad(t)[:, 0] ** 2 / np.maximum(f.value(t), 1e-300)
    assert ratio.min() >= mu * (1 - 1e-6)
    curv = f.hess(t)[:, 0, 0]
    assert curv.min() < 0 and np.isclose(curv.max(), f.L, rtol=1e-6)
    g = F.PLNonconvex(dim=3)
    X = rng.uniform(-5, 5, (1000, 3))
    assert np.all(0.5 * (g.grad(X) ** 2).sum(1) >= mu * g.value(X) * (1 - 1e-9))
    with pytest.raises(ValueError):
        F.PLNonconvex(dim=0)


def test_monkey_saddle_is_harmonic():
    f = F.MonkeySaddle()
    X = rng.uniform(-2, 2, (50, 2))
    assert np.allclose(np.trace(f.hess(X), axis1=-2, axis2=-1), 0.0)
