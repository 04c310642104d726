"""dlopt.seed seeds torch too, also when torch is imported only afterwards (without importing it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys, dlopt
dlopt.seed({first}); dlopt.seed({seed})
assert "torch" not in sys.modules, "dlopt.seed imported torch"
import numpy as np, torch
a = torch.rand(3)
torch.manual_seed({seed}); b = torch.rand(3)
assert torch.equal(a, b), (a, b)
dlopt.seed({seed}); c = torch.rand(3)   # torch imported by now: seeded at once
assert torch.equal(c, b)
print("ok")
"""


@pytest.mark.parametrize("first, seed", [(0, 0), (1, 7)])
def test_torch_is_seeded_on_later_import(first, seed):
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(first=first, seed=seed)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
