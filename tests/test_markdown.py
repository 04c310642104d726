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


def test_no_control_characters_in_sources():
    """A LaTeX command written into a file from a non-raw Python string loses its backslash:
    ``\\frac`` becomes a form feed and ``rac``, ``\\varepsilon`` a vertical tab and ``arepsilon``.
    Sphinx renders the garbage without a warning, so look for the control bytes themselves."""
    bad = []
    for pattern in ("chapters/**/*.md", "*.md", "src/dlopt/**/*.py", "references.bib"):
        for path in ROOT.glob(pattern):
            text = path.read_bytes().decode("utf8")  # read_text would turn \r into \n
            for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines: it splits at \f
                if any(ord(c) < 32 and c not in "\t" for c in line):
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {line[:60]!r}")
    assert not bad, "control characters in sources:\n" + "\n".join(bad[:20])
