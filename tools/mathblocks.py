"""Give every ``$$`` display-math block of the book's MyST pages a blank line before and after.

MyST's dollarmath does not let ``$$`` interrupt a paragraph: written right under a line of text the
formula is rendered as literal dollars and LaTeX. ``python tools/mathblocks.py --check`` lists the
offending lines (tests/test_markdown.py runs it); without ``--check`` the pages are fixed in place.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def pages() -> list[Path]:
    return sorted([ROOT / "intro.md", *(ROOT / "chapters").rglob("*.md")])


def fix(text: str) -> tuple[str, list[int]]:
    """Return the fixed text and the (1-based) line numbers that needed a blank line."""
    lines = text.split("\n")
    out: list[str] = []
    bad: list[int] = []
    code_fence: str | None = None  # the fence of a code block (not a MyST directive) we are in
    in_math = False
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if code_fence is None and not in_math and m:
            info = m.group(3).strip()
            is_directive = info.startswith("{") and not info.startswith("{code-cell")
            if not is_directive and info:  # opening a code block (```python, ```{code-cell})
                code_fence = m.group(2)
            out.append(line)
            continue
        if code_fence is not None:
            if m and m.group(2).startswith(code_fence[0]) and len(m.group(2)) >= len(code_fence) \
                    and not m.group(3).strip():
                code_fence = None
            out.append(line)
            continue
        stripped = line.strip()
        opens = stripped.startswith("$$") and not in_math
        closes = in_math and stripped.endswith("$$")
        one_line = opens and len(stripped) > 4 and stripped.endswith("$$")
        if opens:
            prev = out[-1].strip() if out else ""
            if prev:
                bad.append(i + 1)
                out.append("")
            out.append(line)
            if one_line:
                nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
                if nxt:
                    bad.append(i + 1)
                    out.append("")
            else:
                in_math = True
            continue
        if closes:
            in_math = False
            out.append(line)
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt and not FENCE.match(lines[i + 1]):  # the end of a directive may follow
                bad.append(i + 1)
                out.append("")
            continue
        out.append(line)
    return "\n".join(out), bad


def main(argv: list[str]) -> int:
    check = "--check" in argv
    problems = 0
    for page in pages():
        text = page.read_text()
        fixed, bad = fix(text)
        if bad:
            problems += len(bad)
            rel = page.relative_to(ROOT)
            if check:
                print(f"{rel}: $$ block needs blank lines around it at lines {bad}")
            else:
                page.write_text(fixed)
                print(f"fixed {rel} ({len(bad)} places)")
    return 1 if (check and problems) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
