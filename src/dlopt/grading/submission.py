"""Read a submitted notebook: plain Python for its code cells, the text of its free-text answers.

This module runs **inside the sandbox** (the grader's own process never parses a student's
notebook): :mod:`dlopt.grading._child` loads it by path, before any student code runs, so a
notebook built to make a parser slow only spends its own time limit. Everything here is linear
in the size of the input and bounded: the JSON parser of the standard library, a line-by-line
rewrite of IPython's magics, at most :data:`MAX_CELLS` cells and :data:`MAX_ANSWER` characters per
answer. It imports nothing from ``dlopt`` (it is loaded without its package).
"""

from __future__ import annotations

import json
import re

__all__ = ["InvalidSubmission", "parse_notebook", "python_source", "MAX_CELLS", "MAX_ANSWER",
           "MAX_CELL_CHARS"]

MAX_CELLS = 5000
MAX_ANSWER = 20_000
MAX_CELL_CHARS = 2_000_000
# ``name = %magic`` or ``a, b = !cmd`` at the start of a line (one line: no newline can be crossed)
_ASSIGNED_MAGIC = re.compile(r"([A-Za-z_][A-Za-z0-9_, ]{0,200})=[ \t]*[%!]")


class InvalidSubmission(Exception):
    """A file that cannot be graded as a notebook; the message says why."""


def python_source(cell_source: str) -> str:
    """Plain Python for a code cell: IPython syntax becomes statements that do nothing.

    A cell that already compiles is returned unchanged. Otherwise every line that starts with
    ``%`` or ``!`` becomes ``pass``, ``x = %magic`` / ``x = !cmd`` become ``x = None``, a trailing
    ``?`` (help) becomes ``pass``, and a cell magic (a first line starting with ``%%``) makes the
    whole cell do nothing -- what IPython would do with the no-op ``get_ipython()`` the grader
    provides. One pass over the lines: linear time, whatever the cell holds.
    """
    if len(cell_source) > MAX_CELL_CHARS:
        return cell_source  # reported as an error when it runs
    try:
        compile(cell_source, "<cell>", "exec", 0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
        return cell_source
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        pass
    lines = cell_source.split("\n")
    if lines[0].lstrip().startswith("%%"):
        return "pass"
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%", "!")):
            out.append(indent + "pass")
            continue
        match = _ASSIGNED_MAGIC.match(stripped)
        if match and not stripped.startswith("#"):
            out.append(f"{indent}{match[1].strip()} = None")
        elif stripped.rstrip().endswith("?") and not stripped.startswith("#"):
            out.append(indent + "pass")
        else:
            out.append(line)
    return "\n".join(out)


def _tags(meta) -> list:
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _text(value):
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "".join(value)
    return value


def parse_notebook(raw: bytes, manual_ids=(), *, max_cells: int = MAX_CELLS) -> tuple[list, dict]:
    """``(cells, answers)``: ``[(notebook cell number, python code), ...]`` of the code cells that
    are not check cells, and ``{manual id: answer text}``; :class:`InvalidSubmission` says why a
    file is not a notebook. Reads nbformat 4 and the ``worksheets`` of nbformat 3."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(f"the file is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(f"the file is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise InvalidSubmission("the file is not a notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook (no list of cells)")
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):  # nbformat 3
        sheets = [w.get("cells") for w in data["worksheets"] if isinstance(w, dict)]
        lists = [s for s in sheets if isinstance(s, list)]
        if len(lists) == len(sheets):
            cells = [c for s in lists for c in s]
    if not isinstance(cells, list):
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook (no list of cells)")
    if len(cells) > max_cells:
        raise InvalidSubmission(f"the notebook has {len(cells)} cells, more than the limit of {max_cells}")
    code: list = []
    by_id: dict = {}
    plain: list = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise InvalidSubmission(f"cell {i + 1} is malformed")
        kind = cell.get("cell_type")
        source = _text(cell.get("source", cell.get("input", "")) if kind == "code" else cell.get("source", ""))
        meta = cell.get("metadata", {})
        if not isinstance(source, str) or not isinstance(meta, dict):
            raise InvalidSubmission(f"cell {i + 1} is malformed")
        plain.append((kind, source))
        if kind == "code" and "check" not in _tags(meta):
            code.append((i + 1, python_source(source)))
        dmeta = meta.get("dlopt")
        if isinstance(dmeta, dict) and isinstance(dmeta.get("id"), str) and dmeta["id"] in manual_ids:
            by_id.setdefault(dmeta["id"], i)
    answers = {}
    for mid in manual_ids:
        at = by_id.get(mid)
        if at is not None and at + 1 < len(plain) and plain[at + 1][0] == "markdown":
            answers[mid] = plain[at + 1][1][:MAX_ANSWER]
    return code, answers
