"""Source-level checks of the book's MyST pages that Sphinx does not warn about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_display_math_has_blank_lines_around_it():
    """``$$`` right under a line of text renders as literal dollars (no Sphinx warning)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "mathblocks.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, (
        "display math needs a blank line before and after; run `python tools/mathblocks.py`:\n"
        + proc.stdout
    )
