"""Function+gradient evaluations to reach ‖∇f‖∞ ≤ 1e-5, memory m = 10:

- ``dlopt.minimize(method='l-bfgs')`` (two-loop recursion, strong Wolfe),
- ``scipy.optimize.minimize(method='L-BFGS-B')`` (maxcor=10),
- ``torch.optim.LBFGS`` (history_size=10, line_search_fn='strong_wolfe', float64, otherwise its
  defaults: max_iter=20 per ``step``, tolerance_change=1e-9), ``step`` called until the tolerance
  is reached (at most 5000 evaluations); every closure call counts. With the default
  tolerance_change torch stops short (``gᵀd > -1e-9`` ends every ``step`` before it moves) on
  problems whose gradient is still above 1e-5 there; the column "torch tc=1e-12" lowers it,
- ``dlopt.torch.LBFGS`` with the same settings (it reproduces torch's iterates).

BLAS runs single-threaded (``threadpoolctl``): with several threads on a busy 2-core machine
scipy's run on the n = 1000 quadratic takes minutes instead of a second.

Prints a table and the geometric mean of the ratio dlopt / scipy (target: ≤ 1).
Run with ``make bench`` or ``python bench/bench_lbfgs.py``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import torch
from threadpoolctl import threadpool_limits

import dlopt
import dlopt.torch
from dlopt import functions

GTOL = 1e-5
M = 10
MAX_EVALS = 5000  # torch's runs that stall are cut here


def problems():
    rng = np.random.default_rng(0)
    n = 1000
    quad = functions.Quadratic.from_condition_number(1e4, n=n, seed=0, b=rng.standard_normal(n))
    quad.name = "quadratic κ=1e4, n=1000"
    return [
        (functions.Rosenbrock(2), np.array([-1.2, 1.0])),
        (functions.Rosenbrock(100), np.tile([-1.2, 1.0], 50)),
        (functions.Beale(), np.array([1.0, 1.0])),
        (functions.PowellSingular(), functions.PowellSingular().x0),
        (quad, np.zeros(n)),
    ]


def run_dlopt(f, x0):
    res = dlopt.minimize(f, x0, method="l-bfgs", options={"m": M, "gtol": GTOL, "maxiter": 100000})
    return res.nfev, float(np.max(np.abs(f.grad(res.x))))


def run_scipy(f, x0):
    res = scipy.optimize.minimize(lambda x: (f.value(x), f.grad(x)), x0, jac=True, method="L-BFGS-B",
                                  options={"maxcor": M, "gtol": GTOL, "ftol": 0.0,
                                           "maxiter": 100000, "maxfun": 100000})
    return res.nfev, float(np.max(np.abs(f.grad(res.x))))


def run_torch(cls, f, x0, max_steps=5000, **options):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = cls([x], history_size=M, line_search_fn="strong_wolfe", tolerance_grad=GTOL, **options)
    evals = 0

    def closure():
        nonlocal evals
        evals += 1
        opt.zero_grad()
        loss = f.value(x)
        loss.backward()
        return loss

    for _ in range(max_steps):
        if evals >= MAX_EVALS:
            break
        opt.step(closure)
        if float(torch.max(torch.abs(torch.as_tensor(f.grad(x.detach().numpy()))))) <= GTOL:
            break
    return evals, float(np.max(np.abs(f.grad(x.detach().numpy()))))


def main():
    rows = []
    t0 = time.perf_counter()
    for f, x0 in problems():
        row = {"problem": f.name}
        row["dlopt"] = run_dlopt(f, x0)
        row["scipy"] = run_scipy(f, x0)
        row["torch"] = run_torch(torch.optim.LBFGS, f, x0)
        row["torch tc=1e-12"] = run_torch(torch.optim.LBFGS, f, x0, tolerance_change=1e-12)
        row["dlopt.torch"] = run_torch(dlopt.torch.LBFGS, f, x0)
        rows.append(row)
    cols = ["dlopt", "scipy", "torch", "torch tc=1e-12", "dlopt.torch"]
    print(f"evaluations to ‖∇f‖∞ ≤ {GTOL:g} (m = {M}); * = tolerance not reached")
    header = f"{'problem':<26}" + "".join(f"{c:>16}" for c in cols) + f"{'dlopt/scipy':>13}"
    print(header)
    print("-" * len(header))
    ratios = []
    for row in rows:
        cells = "".join(f"{row[c][0]:>15d}{'*' if row[c][1] > GTOL else ' '}" for c in cols)
        ratio = row["dlopt"][0] / row["scipy"][0]
        ratios.append(ratio)
        print(f"{row['problem']:<26}{cells}{ratio:>13.3f}")
    gmean = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean dlopt/scipy: {gmean:.3f} (target ≤ 1)   [{time.perf_counter() - t0:.1f} s]")
    return rows, gmean


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
