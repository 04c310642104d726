"""Every theorem, lemma, proposition and corollary of a chapter has a code cell that checks it.

The check of a result names the result's label (in a comment or a string) in a code cell of the
same page, so that a reader -- and this test -- can find it.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "chapters").rglob("*.md"))
DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{prf:(theorem|lemma|proposition|corollary)\}[^\n]*\n"
                       r"((?:[ \t]*:[\w-]+:[^\n]*\n)*)", re.M)
LABEL = re.compile(r"^[ \t]*:label:[ \t]*(\S+)", re.M)


def results(text: str) -> list[tuple[str, str]]:
    """(kind, label) of each theorem-like directive; a missing label is reported as ''."""
    out = []
    for m in DIRECTIVE.finditer(text):
        label = LABEL.search(m.group(3))
        out.append((m.group(2), label.group(1) if label else ""))
    return out


def code(page: Path) -> str:
    return "\n".join(c.source for c in jupytext.read(page).cells if c.cell_type == "code")


def test_parser_reads_labels():
    text = "```{prf:theorem} A title\n:label: thm-a\n:nonumber:\n\nbody\n```\n" \
           "::::{prf:lemma}\n:class: x\n:label: lem-b\nbody\n::::\n```{prf:definition} D\n:label: def-c\n```\n"
    assert results(text) == [("theorem", "thm-a"), ("lemma", "lem-b")]


def test_there_are_results_to_check():
    assert sum(len(results(p.read_text(encoding="utf-8"))) for p in PAGES) >= 90


@pytest.mark.parametrize("page", [p for p in PAGES if results(p.read_text(encoding="utf-8"))],
                         ids=lambda p: str(p.relative_to(ROOT / "chapters")))
def test_every_result_is_named_by_a_code_cell(page):
    found = results(page.read_text(encoding="utf-8"))
    assert all(label for _, label in found), f"{page}: a theorem-like block without a :label:"
    cells = code(page)
    unchecked = [f"{kind} {label}" for kind, label in found
                 if not re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", cells)]
    assert not unchecked, f"{page.relative_to(ROOT)}: no code cell names " + ", ".join(unchecked)
