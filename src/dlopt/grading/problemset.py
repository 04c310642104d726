"""Read a source notebook (the problem set) and a student's submission."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .instrument import CheckPlan, FormatError, instrument

__all__ = ["Check", "Manual", "ProblemSet", "Submission", "InvalidSubmission", "load_problem_set",
           "read_submission", "python_source"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IPYTHON_SYNTAX = re.compile(r"^\s*[%!]|^[^#\n]*=\s*[%!]|\?\s*$", re.MULTILINE)
_MAX_TRANSFORM = 100_000
MAX_CELLS = 5000


@dataclass
class Check:
    id: str
    points: float
    hidden: bool
    timeout: float | None
    cell: int          # index of the cell in the source notebook
    plan: CheckPlan


@dataclass
class Manual:
    id: str
    points: float
    cell: int
    prompt: str


@dataclass
class ProblemSet:
    path: Path
    checks: list
    manuals: list
    cells: list        # code of the non-check code cells (reference solution), in order
    digest: str

    @property
    def name(self) -> str:
        return self.path.stem

    def max_points(self) -> float:
        return sum(c.points for c in self.checks) + sum(m.points for m in self.manuals)


@dataclass
class Submission:
    cells: list = field(default_factory=list)        # (notebook cell number, python code)
    answers: dict = field(default_factory=dict)      # manual id -> answer text


class InvalidSubmission(Exception):
    """A file that cannot be graded as a notebook; the message says why."""


def python_source(cell_source: str) -> str:
    """Plain Python for a code cell: IPython magics (``%...``, ``!...``) become ``get_ipython()``
    calls, which do nothing while grading. The grader applies a *fresh* IPython transformer here,
    in its own process, so transformers a student registers in their kernel play no part."""
    if len(cell_source) > _MAX_TRANSFORM or not _IPYTHON_SYNTAX.search(cell_source):
        return cell_source  # plain Python (the transformer is slow on huge cells: a DoS otherwise)
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython is always there with Jupyter
        return cell_source
    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 - leave it; a syntax error is reported when it runs
        return cell_source


def _tags(cell) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _meta(cell, where: str) -> dict:
    meta = cell.get("metadata", {}).get("dlopt")
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: needs metadata {{\"dlopt\": {{\"id\": ..., \"points\": ...}}}}")
    cid, points = meta.get("id"), meta.get("points")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise FormatError(f"{where}: dlopt.id must be a short name of letters, digits, '-', '_', '.'")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise FormatError(f"{where} ({cid}): dlopt.points must be a non-negative number")
    timeout = meta.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise FormatError(f"{where} ({cid}): dlopt.timeout must be a positive number of seconds")
    return meta


def load_problem_set(path: str | Path) -> ProblemSet:
    """Parse a source notebook; :class:`FormatError` says what does not follow the format."""
    import nbformat

    path = Path(path)
    raw = path.read_bytes()
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    checks, manuals, cells, ids = [], [], [], set()
    for i, cell in enumerate(nb.cells):
        tags, where = _tags(cell), f"{path.name}, cell {i + 1}"
        if cell.cell_type == "code" and "check" in tags:
            meta = _meta(cell, where)
            plan = instrument(cell.source, f"{where} ({meta['id']})")
            checks.append(Check(meta["id"], meta["points"], "hidden" in tags, meta.get("timeout"), i, plan))
            cid = meta["id"]
        elif cell.cell_type == "markdown" and "manual" in tags:
            meta = _meta(cell, where)
            following = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if following is None or following.cell_type != "markdown" or "answer" not in _tags(following):
                raise FormatError(f"{where} ({meta['id']}): a manual question must be followed by "
                                  "a markdown cell tagged 'answer'")
            manuals.append(Manual(meta["id"], meta["points"], i, cell.source))
            cid = meta["id"]
        else:
            if "hidden" in tags and cell.cell_type == "code":
                raise FormatError(f"{where}: a code cell tagged 'hidden' must also be tagged 'check'")
            if cell.cell_type == "code":
                cells.append(python_source(cell.source))
            continue
        if cid in ids:
            raise FormatError(f"{where}: duplicate id {cid!r}")
        ids.add(cid)
    if not checks and not manuals:
        raise FormatError(f"{path.name}: no check cells (code cells tagged 'check')")
    digest = hashlib.sha256(raw).hexdigest()
    return ProblemSet(path=path, checks=checks, manuals=manuals, cells=cells, digest=digest)


def read_submission(path: str | Path, manuals: list = (), max_mb: float = 20) -> Submission:
    """The code cells (except check cells) and the manual answers of a submitted notebook."""
    import nbformat

    path = Path(path)
    size = path.stat().st_size
    if size > max_mb * 2**20:
        raise InvalidSubmission(f"the file is {size / 2**20:.1f} MB, larger than the {max_mb:g} MB limit")
    raw = path.read_bytes()
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
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook (no list of cells)")
    if isinstance(data.get("cells"), list):  # nbformat 4: read directly (nbformat's validation is slow)
        cells = data["cells"]
    else:
        try:
            cells = nbformat.reads(text, as_version=4).cells
        except Exception as exc:  # noqa: BLE001
            raise InvalidSubmission(f"the file is not a Jupyter notebook ({type(exc).__name__})") from None
    if len(cells) > MAX_CELLS:
        raise InvalidSubmission(f"the notebook has {len(cells)} cells, more than the limit of {MAX_CELLS}")
    sub = Submission()
    by_id, plain = {}, []
    for i, cell in enumerate(cells):
        source = cell.get("source", "") if isinstance(cell, dict) else None
        if isinstance(source, list) and all(isinstance(x, str) for x in source):
            source = "".join(source)
        meta = cell.get("metadata", {}) if isinstance(cell, dict) else None
        if not isinstance(source, str) or not isinstance(meta, dict):
            raise InvalidSubmission(f"cell {i + 1} is malformed")
        cell = {"cell_type": cell.get("cell_type"), "source": source, "metadata": meta}
        plain.append(cell)
        if cell["cell_type"] == "code" and "check" not in _tags(cell):
            sub.cells.append((i + 1, python_source(source)))
        dmeta = meta.get("dlopt")
        if isinstance(dmeta, dict) and isinstance(dmeta.get("id"), str):
            by_id[dmeta["id"]] = i
    nb_cells = plain
    for m in manuals:
        i = by_id.get(m.id)
        if i is not None and i + 1 < len(nb_cells) and nb_cells[i + 1]["cell_type"] == "markdown":
            sub.answers[m.id] = nb_cells[i + 1]["source"]
    return sub
