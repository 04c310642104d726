"""Every rule of dlopt.rules is shown in the book with ``literalinclude`` (visible, not folded)
next to its formula: the mathematics on the page, the code shown and the code tested are one."""

import re
from pathlib import Path

import pytest

from dlopt import rules

ROOT = Path(__file__).resolve().parents[1]
RULES_FILE = (ROOT / "src" / "dlopt" / "optim" / "rules.py").resolve()
DIRECTIVE = re.compile(r"^```\{literalinclude\}\s+(\S+)\s*\n((?::[^\n]*\n)*)```", re.M)
INLINE_EQUATION = re.compile(r"\$[^$]*=[^$]*\$")  # an equation in the text, $x_{t+1}=...$
FORMULA_WINDOW = 25  # lines: how far above the code the page's formula may stand


def _shown():
    """``{rule name: [(page, line, options)]}`` for every literalinclude of the rules module."""
    found: dict[str, list] = {}
    for page in sorted((ROOT / "chapters").rglob("*.md")):
        text = page.read_text()
        for m in DIRECTIVE.finditer(text):
            if (page.parent / m.group(1)).resolve() != RULES_FILE:
                continue
            options = dict(re.findall(r"^:([\w-]+):\s*(.*)$", m.group(2), re.M))
            line = text.count("\n", 0, m.start())
            found.setdefault(options.get("pyobject", ""), []).append((page, line, options))
    return found


SHOWN = _shown()


@pytest.mark.parametrize("name", rules.__all__)
def test_rule_is_shown_next_to_its_formula(name):
    places = SHOWN.get(name)
    assert places, f"rules.{name} is not shown in any chapter with literalinclude :pyobject: {name}"
    ok = []
    for page, line, options in places:
        folded = "dropdown" in options.get("class", "") or "hide" in options.get("class", "")
        above = page.read_text().splitlines()[max(0, line - FORMULA_WINDOW):line]
        has_formula = any(s.strip().startswith("$$") or "{math}" in s or INLINE_EQUATION.search(s)
                          for s in above)
        ok.append(not folded and has_formula)
    assert any(ok), f"rules.{name} is shown, but folded or without a formula within {FORMULA_WINDOW} lines above"


def test_the_check_sees_a_missing_rule():
    """A name that is not shown is reported (the test above cannot pass vacuously)."""
    assert "no_such_rule" not in SHOWN and set(rules.__all__) <= set(SHOWN)
