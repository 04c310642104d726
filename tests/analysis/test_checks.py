"""dlopt.checks.close: the one assertion helper with stated tolerances."""

import numpy as np
import pytest

from dlopt import checks


def test_passes_within_tolerance_and_returns_largest_error():
    assert checks.close([1.0, 2.0], [1.0, 2.0 + 1e-10], rtol=1e-9, atol=0) == pytest.approx(1e-10, rel=1e-3)
    assert checks.close(3, 3, rtol=0, atol=0) == 0.0                # exact comparison of integers
    assert checks.close(np.empty(0), np.empty(0), rtol=0, atol=0) == 0.0
    assert checks.close(np.inf, np.inf, rtol=0, atol=0) == 0.0


def test_the_test_is_atol_plus_rtol_times_expected():
    checks.close(1.0 + 1e-6, 1.0, rtol=1e-6, atol=0)
    checks.close(1e-6, 0.0, rtol=0, atol=1e-6)
    with pytest.raises(AssertionError):
        checks.close(1.0 + 3e-6, 1.0, rtol=1e-6, atol=1e-6)
    with pytest.raises(AssertionError):   # relative to the expected value, not to the actual one
        checks.close(2.0, 1.0, rtol=0.6, atol=0)
    checks.close(1.0, 2.0, rtol=0.6, atol=0)


def test_default_tolerances_are_not_allowed():
    with pytest.raises(TypeError):
        checks.close(1.0, 1.0)
    with pytest.raises(TypeError):
        checks.close(1.0, 1.0, rtol=1e-9)
    with pytest.raises(TypeError):
        checks.close(1.0, 1.0, 1e-9, 0.0)    # keyword-only: the call names its tolerances


def test_failure_message_names_the_claim_and_the_worst_element():
    with pytest.raises(AssertionError) as err:
        checks.close([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], rtol=1e-3, atol=0, what="rate of thm-x")
    msg = str(err.value)
    assert "rate of thm-x" in msg and "1 of 3" in msg and "index (1,)" in msg and "rtol=0.001" in msg


def test_nan_and_mismatched_infinities_fail():
    with pytest.raises(AssertionError):
        checks.close(np.nan, np.nan, rtol=1, atol=1)
    with pytest.raises(AssertionError):
        checks.close(np.inf, -np.inf, rtol=1, atol=1)
    with pytest.raises(AssertionError):
        checks.close([1.0, np.nan], [1.0, 1.0], rtol=1, atol=1)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="Invalid rtol value"):
        checks.close(1.0, 1.0, rtol=-1e-3, atol=0)
    with pytest.raises(ValueError, match="Invalid atol value"):
        checks.close(1.0, 1.0, rtol=0, atol=float("nan"))
    with pytest.raises(TypeError, match="rtol must be a real number"):
        checks.close(1.0, 1.0, rtol="1e-3", atol=0)
    with pytest.raises(ValueError, match="do not broadcast"):
        checks.close(np.ones(3), np.ones(2), rtol=0, atol=0)
    with pytest.raises(TypeError, match="dtype"):
        checks.close(["a"], ["a"], rtol=0, atol=0)


def test_torch_tensors_and_broadcasting():
    torch = pytest.importorskip("torch")
    checks.close(torch.ones(2, 3, dtype=torch.float64), 1.0, rtol=0, atol=0)
    with pytest.raises(AssertionError):
        checks.close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.1]), rtol=1e-3, atol=0)
