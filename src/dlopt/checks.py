r"""Checks with stated tolerances: the book's numerical assertions.

Every check of a claim in the book states how close is close enough. :func:`close` compares two
arrays elementwise with the test

.. math::

    \lvert a-e\rvert \le \mathrm{atol} + \mathrm{rtol}\,\lvert e\rvert

(``numpy.isclose``'s test, asymmetric in ``expected``), but it has no default tolerances: both
``rtol`` and ``atol`` must be given, and ``rtol=0, atol=0`` asks for exact equality. When the test
fails it raises :class:`AssertionError` naming what was compared and where the largest violation
is, so that a failing page says which claim broke and by how much.

>>> import numpy as np
>>> from dlopt import checks
>>> checks.close(np.sqrt(2.0) ** 2, 2.0, rtol=1e-15, atol=0, what="sqrt(2)^2")
4.440892098500626e-16
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["close"]


def _tolerance(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (value >= 0.0) or not np.isfinite(value):
        raise ValueError(f"Invalid {name} value: {value}")
    return value


def close(actual, expected, *, rtol, atol, what: str = "value") -> float:
    r"""Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise; return the largest error.

    ``actual`` and ``expected`` are numbers or arrays (numpy, torch tensors, lists) whose shapes
    broadcast. ``rtol`` and ``atol`` are required keywords (non-negative, finite): a check states
    its tolerance. ``what`` names the quantity in the error message. NaN never compares close,
    not even to NaN; infinities compare close only to the same infinity.

    Returns the largest absolute difference :math:`\max\lvert a-e\rvert` (``0.0`` for empty
    arrays), convenient for printing or glueing the achieved accuracy.

    Raises :class:`AssertionError` when some element violates the test, :class:`ValueError` for
    shapes that do not broadcast or a negative tolerance, and :class:`TypeError` for a tolerance
    that is not a real number.
    """
    rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
    a, e = _as_array(actual), _as_array(expected)
    try:
        a, e = np.broadcast_arrays(a, e)
    except ValueError:
        raise ValueError(f"{what}: shapes {a.shape} and {e.shape} do not broadcast") from None
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        same_inf = np.isinf(a) & np.isinf(e) & (a == e)
        diff = np.where(same_inf, 0.0, np.abs(a - e))
        allowed = atol + rtol * np.abs(e)
        ok = same_inf | (np.isfinite(diff) & (diff <= allowed))
    finite = diff[np.isfinite(diff)]
    largest = float(finite.max()) if finite.size else float("inf")
    if np.all(ok):
        return largest
    bad = ~ok
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        excess = np.where(bad, np.nan_to_num(diff, nan=np.inf) - allowed, -np.inf)
    where = np.unravel_index(int(np.argmax(excess)), excess.shape)
    at = "" if a.ndim == 0 else f" at index {tuple(int(i) for i in where)}"
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {a.size} element(s) not within rtol={rtol:g}, atol={atol:g};"
        f" worst{at}: actual {a[where]!r}, expected {e[where]!r}, |difference| {diff[where]:.3g}"
        f" > allowed {allowed[where]:.3g}")


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"cannot compare values of dtype {arr.dtype} numerically")
    return arr.astype(np.float64) if arr.dtype.kind in "biu" else arr
