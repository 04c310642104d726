r"""The checks of a problem set: ``expect.close``, ``expect.equal``, ``expect.holds``, ``expect.raises``.

A check cell of an exercise notebook is ordinary Python that calls these functions, e.g.::

    from dlopt.grading import expect

    expect.close(gd_rate([1.0, 10.0], 0.1), 0.9)
    expect.close(best_step(lam), 2 / (lam.min() + lam.max()), rtol=1e-10)
    expect.holds(losses(f, x0), lambda v: np.all(np.diff(v) <= 0), "the loss never increases")
    expect.raises(ValueError, lambda: backtracking(f, g, x, c=2.0))

**In a notebook** (a student running the visible checks) each call compares on the spot and raises
``AssertionError`` with a message that says what was expected and what came back.

**When grading** the same cell is split three ways, so that nothing the student's code does can
change a score (see :mod:`dlopt.grading`):

- the *first* argument (the ``actual`` value, or the callable of ``raises``) is evaluated in the
  grader's check driver, where each function the student wrote is a stand-in that forwards the
  call (name and arguments) to the student's sandboxed process and gets its value back as data
  (see :mod:`dlopt.grading.channel`); only its JSON form is recorded;
- the *second* argument of ``close``/``equal`` (the ``expected`` value) is removed from that code
  and evaluated instead in a separate process that ran the reference solution;
- the predicate of ``holds`` and the keyword options (``rtol``, ``atol``, ``msg``) are taken from
  the instructor's source and evaluated in the grader's own process, on the JSON data.

Therefore: the ``actual`` argument should *return data* (numbers, arrays, lists, strings, bools;
dicts with string keys); put the judgement in ``expected`` or in the predicate, never in the
actual expression. Keyword options must be literals. ``group="name"`` puts a call in a part of
its check: a check whose metadata lists ``"parts": {"name": points, ...}`` gives each part its
points when all the calls of that part pass (partial credit inside one check). Each call site's
``expected``/predicate may
use any name defined in the notebook (the reference side) and ``np``.

Data are compared through their JSON form, so a numpy array and the nested list of its values
are the same; tuples are lists; NaN only equals NaN and ``inf`` only ``inf`` of the same sign.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

__all__ = ["close", "equal", "holds", "raises", "to_data", "compare_close", "compare_equal",
           "CheckFailure"]


class CheckFailure(AssertionError):
    """A check that did not pass; the message says why."""


# ----------------------------------------------------------------------------------------------
# JSON data: what a check records
# ----------------------------------------------------------------------------------------------
def _float_to_data(x: float):
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return x


def to_data(value: Any, _depth: int = 0):
    """Convert a value to plain JSON-able data (numbers, strings, bools, None, lists, dicts).

    numpy arrays/scalars and torch tensors become (nested) lists of Python numbers; NaN and inf
    become ``{"__float__": "nan" | "inf" | "-inf"}`` so that JSON can carry them. Anything else
    raises ``TypeError``: a check must return data, not objects.
    """
    if _depth > 50:
        raise TypeError("value is nested too deeply to be data")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float_to_data(float(value))
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError("complex numbers are not supported in checks")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"arrays of dtype {value.dtype} are not data")
        return to_data(value.tolist(), _depth + 1)
    if isinstance(value, (list, tuple)):
        return [to_data(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be strings, got {type(k).__name__}")
            out[k] = to_data(v, _depth + 1)
        return out
    raise TypeError(f"a check needs data (numbers, arrays, lists, strings), got {type(value).__name__}")


def from_data(data):
    """Inverse of the float encoding of :func:`to_data` (lists stay lists)."""
    if isinstance(data, dict):
        if set(data) == {"__float__"}:
            return float(data["__float__"])
        return {k: from_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_data(v) for v in data]
    return data


def _describe(data, limit: int = 160) -> str:
    text = repr(from_data(data))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Comparisons: pure functions of data, run by the grader in its own process
# ----------------------------------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _close_numbers(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _kind(x) -> str:
    if _is_number(x):
        return "a number"
    return {list: "a list", dict: "a dict", str: "a string", bool: "a bool", type(None): "None"}.get(
        type(x), type(x).__name__)


def _close(a, b, rtol, atol, where, reveal=True) -> str | None:
    """Why ``a`` is not close to ``b``; with ``reveal=False`` the words never quote ``b``."""
    tol = f"rtol={rtol:g}, atol={atol:g}" if rtol or atol else "exact comparison"
    if _is_number(a) and _is_number(b):
        if not _close_numbers(float(a), float(b), rtol, atol):
            if not reveal:
                return f"{where}your value {a!r} is not the reference value ({tol})"
            return f"{where}got {a!r}, expected {b!r} ({tol})"
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}got a list of length {len(a)}, expected length {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            err = _close(x, y, rtol, atol, f"{where}[{i}] ", reveal)
            if err:
                return err
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            if not reveal:
                return f"{where}got keys {sorted(a)}, which are not the expected keys"
            return f"{where}got keys {sorted(a)}, expected keys {sorted(b)}"
        for k in b:
            err = _close(a[k], b[k], rtol, atol, f"{where}[{k!r}] ", reveal)
            if err:
                return err
        return None
    if a == b and type(a) is type(b):
        return None
    if not reveal:
        if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
            return f"{where}got {_kind(a)} ({_describe(a, 60)}) where {_kind(b)} was expected"
        return f"{where}got {_describe(a, 60)}, which is not the expected value"
    return f"{where}got {_describe(a)}, expected {_describe(b)}"


def compare_close(actual, expected, rtol: float = 1e-7, atol: float = 1e-12, *, reveal: bool = True) -> str | None:
    """``None`` when the data agree within ``|a-b| ≤ atol + rtol·|b|`` elementwise, else why not.

    Shapes (list lengths, dict keys) must match exactly; non-numbers must be equal. With
    ``reveal=False`` the reason says what is wrong in words and never quotes the expected data.
    """
    return _close(from_data(actual), from_data(expected), float(rtol), float(atol), "", reveal)


def compare_equal(actual, expected, *, reveal: bool = True) -> str | None:
    """``None`` when the data are equal (NaN equals NaN), else why not."""
    return _close(from_data(actual), from_data(expected), 0.0, 0.0, "", reveal)


def as_array_if_numeric(data):
    """Turn numeric (nested) lists into numpy arrays for a predicate; leave other data alone."""
    data = from_data(data)
    if isinstance(data, list) and _all_numbers(data):
        try:
            return np.asarray(data, dtype=float)
        except (TypeError, ValueError):  # ragged lists stay lists
            return data
    return data


def _all_numbers(data, depth: int = 0) -> bool:
    if depth > 60:
        return False
    if isinstance(data, list):
        return all(_all_numbers(v, depth + 1) for v in data)
    return isinstance(data, (int, float))  # bools are ints; strings are not numbers


# ----------------------------------------------------------------------------------------------
# The notebook-side API (what a check cell calls)
# ----------------------------------------------------------------------------------------------
def _fail(msg: str, why: str):
    raise CheckFailure(f"{msg}: {why}" if msg else why)


def close(actual, expected, *, rtol: float = 1e-7, atol: float = 1e-12, msg: str = "", group: str = "") -> None:
    """Check that ``actual`` is numerically close to ``expected`` (arrays, lists, scalars)."""
    why = compare_close(to_data(actual), to_data(expected), rtol, atol)
    if why:
        _fail(msg, why)


def equal(actual, expected, *, msg: str = "", group: str = "") -> None:
    """Check that ``actual`` equals ``expected`` exactly (ints, bools, strings, lists of them)."""
    why = compare_equal(to_data(actual), to_data(expected))
    if why:
        _fail(msg, why)


def holds(actual, predicate: Callable[[Any], bool], msg: str = "", *, group: str = "") -> None:
    """Check that ``predicate(actual)`` is true; numeric lists reach the predicate as arrays."""
    ok = predicate(as_array_if_numeric(to_data(actual)))
    if not bool(ok):
        _fail(msg or "the property does not hold", f"for {_describe(to_data(actual))}")


def raises(exception: type[BaseException], call: Callable[[], Any], *, msg: str = "", group: str = "") -> None:
    """Check that ``call()`` raises ``exception`` (or a subclass)."""
    name = exception.__name__
    try:
        call()
    except exception:
        return
    except Exception as exc:  # noqa: BLE001 - reported to the student
        _fail(msg, f"expected {name}, got {type(exc).__name__}: {exc}")
    _fail(msg, f"expected {name} to be raised, nothing was")
