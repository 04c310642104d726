"""dlopt.distributed: simulators, the delayed-recursion threshold, compressors, a gloo run."""

import numpy as np
import pytest

import dlopt
from dlopt import distributed as D


@pytest.fixture(scope="module")
def problem():
    X, y, w_star = dlopt.data.linear_regression(m=128, n=4, seed=1)
    return X, y, np.zeros(4)


def test_sync_sgd_equals_large_batch(problem):
    X, y, w0 = problem
    a = D.sync_sgd(X, y, w0, lr=0.2, steps=30, workers=4, batch=8)
    b = D.sync_sgd(X, y, w0, lr=0.2, steps=30, workers=1, batch=32)
    np.testing.assert_allclose(a, b, atol=1e-13)
    c = D.sync_sgd(X, y, w0, lr=0.2, steps=30, workers=1, batch=8)
    assert np.abs(a - c).max() > 1e-3


def test_global_batches_rejects_too_large():
    with pytest.raises(ValueError):
        D.global_batches(10, 4, 3, 1)


def test_local_sgd_period_one_is_sync(problem):
    X, y, w0 = problem
    a = D.local_sgd(X, y, w0, lr=0.1, rounds=20, period=1, workers=4, batch=2)
    b = D.sync_sgd(X, y, w0, lr=0.1, steps=20, workers=4, batch=2)
    np.testing.assert_allclose(a, b, atol=1e-13)


def test_critical_delay_step_closed_form():
    for tau in range(6):
        assert D.critical_delay_step(tau) == pytest.approx(2 * np.sin(np.pi / (2 * (2 * tau + 1))), abs=1e-8)


def test_delayed_gd_diverges_above_threshold():
    lam, tau = 1.0, 3
    a = D.critical_delay_step(tau)
    grad = lambda x: lam * x
    below = D.delayed_gd(grad, [1.0], lr=0.9 * a, steps=600, delay=tau)
    above = D.delayed_gd(grad, [1.0], lr=1.1 * a, steps=600, delay=tau)
    assert abs(below[-1, 0]) < 1e-3 and not abs(above[-1, 0]) < 1e3


def test_delayed_gd_random_delay_and_errors():
    path = D.delayed_gd(lambda x: x, [1.0], lr=0.1, steps=50, delay=lambda k, rng: rng.integers(0, 3))
    assert path.shape == (51, 1) and abs(path[-1, 0]) < 0.1
    with pytest.raises(ValueError):
        D.delayed_gd(lambda x: x, [1.0], lr=0.1, steps=5, delay=-1)


def test_qsgd_unbiased_and_topk():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(8)
    samples = np.array([D.qsgd(v, 2, rng) for _ in range(20000)])
    np.testing.assert_allclose(samples.mean(0), v, atol=0.03)
    # variance bound of Alistarh et al.: E||Q(v)-v||^2 <= min(n/s^2, sqrt(n)/s) ||v||^2
    var = ((samples - v) ** 2).sum(1).mean()
    assert var <= min(8 / 4, np.sqrt(8) / 2) * (v @ v)
    t = D.topk(np.array([3.0, -5.0, 1.0, 0.5]), 2)
    np.testing.assert_array_equal(t, [3.0, -5.0, 0.0, 0.0])
    assert np.all(D.qsgd(np.zeros(3), 4, rng) == 0)


def test_error_feedback_converges(problem):
    X, y, w0 = problem
    w_opt = np.linalg.lstsq(X, y, rcond=None)[0]
    ef = D.sync_sgd(X, y, w0, lr=0.1, steps=300, workers=2, batch=64, compress=lambda g, r: D.topk(g, 1),
                    error_feedback=True)
    assert np.linalg.norm(ef[-1] - w_opt) < 0.05


def test_gloo_allreduce_and_parameter_server(problem):
    X, y, w0 = problem
    ref = D.sync_sgd(X, y, w0, lr=0.2, steps=10, workers=1, batch=16)[-1]
    res = D.launch(D.allreduce_worker, 2, timeout=60, X=X, y=y, w0=w0, lr=0.2, steps=10, batch=8)
    np.testing.assert_allclose(res[0]["w"], ref, atol=1e-12)
    np.testing.assert_allclose(res[1]["w"], ref, atol=1e-12)
    res = D.launch(D.parameter_server_worker, 3, timeout=60, X=X, y=y, w0=w0, lr=0.2, updates=10,
                   batch=8, mode="async")
    assert len(res[0]["staleness"]) == 10 and res[0]["staleness"].max() >= 1  # only one first gradient is fresh
    assert sum(r["gradients"] for r in res[1:]) == 10


def test_launch_cleans_up_after_a_failing_rank(problem):
    import multiprocessing
    import time

    X, y, w0 = problem
    # rank 0 raises (unknown mode) while rank 1 blocks in recv: launch must raise and kill rank 1
    t0 = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whatever the worker raised, launch re-raises it
        D.launch(D.parameter_server_worker, 2, timeout=30, X=X, y=y, w0=w0, lr=0.1, updates=2, batch=4,
                 mode="bogus")
    assert time.monotonic() - t0 < 25
    assert not [p for p in multiprocessing.active_children() if p.is_alive() and "ForkServer" not in p.name]
