"""Read a source notebook (the problem set) and a student's submission."""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .instrument import CheckPlan, FormatError, instrument
from .submission import MAX_CELLS, InvalidSubmission, parse_notebook, python_source

__all__ = ["Check", "Manual", "ProblemSet", "Submission", "InvalidSubmission", "load_problem_set",
           "read_submission", "python_source"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Check:
    id: str
    points: float
    hidden: bool
    timeout: float | None
    cell: int          # index of the cell in the source notebook
    plan: CheckPlan
    parts: dict = field(default_factory=dict)  # group name -> points (partial credit), or empty
    fetch: list = field(default_factory=list)  # the student's names this check reads (from the student)


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
    student_names: list = field(default_factory=list)  # names whose values come from the student

    @property
    def name(self) -> str:
        return self.path.stem

    def max_points(self) -> float:
        return sum(c.points for c in self.checks) + sum(m.points for m in self.manuals)


@dataclass
class Submission:
    cells: list = field(default_factory=list)        # (notebook cell number, python code)
    answers: dict = field(default_factory=dict)      # manual id -> answer text


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
    parts = meta.get("parts")
    if parts is not None:
        if (not isinstance(parts, dict) or not parts
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in parts.values())):
            raise FormatError(f"{where} ({cid}): dlopt.parts must map group names to points")
        if abs(sum(parts.values()) - points) > 1e-9:
            raise FormatError(f"{where} ({cid}): the points of dlopt.parts add up to "
                              f"{sum(parts.values()):g}, not {points:g}")
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
            parts = dict(meta.get("parts") or {})
            for site in plan.sites:
                group = site.options.get("group")
                if parts and group not in parts:
                    raise FormatError(f"{where} ({meta['id']}), {site.label()}: group= must be one of "
                                      f"{sorted(parts)} (the check has parts)")
                if not parts and group is not None:
                    raise FormatError(f"{where} ({meta['id']}), {site.label()}: group= needs "
                                      "dlopt.parts in the cell's metadata")
            checks.append(Check(meta["id"], meta["points"], "hidden" in tags, meta.get("timeout"), i, plan, parts))
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
    names = student_names(cells)
    for c in checks:
        c.fetch = sorted(_loads(c.plan.student_code) & names)
    return ProblemSet(path=path, checks=checks, manuals=manuals, cells=cells, digest=digest,
                      student_names=sorted(names))


def _loads(code: str) -> set:
    """Every name a piece of code reads (function bodies included)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _binds(code: str) -> set:
    """The module-level names a cell binds, imports excepted (the driver imports for itself)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    bound: set = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            return  # their bodies bind local names
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            bound.add(node.target.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return bound


def student_names(cells: list) -> set:
    """The names a check must take from the student's process: those bound by a cell with a
    solution region (``### BEGIN SOLUTION``), and, in source order, those bound by any cell that
    reads one of them (a given cell that calls the student's function computes the student's value).
    Every other name a check reads is the instructor's, taken from the driver's own run of the
    source notebook."""
    names: set = set()
    for code in cells:
        if "### BEGIN SOLUTION" in code or _loads(code) & names:
            names |= _binds(code)
    return names


def read_submission(path: str | Path, manuals: list | tuple = (), max_mb: float = 20) -> Submission:
    """The code cells (except check cells) and the manual answers of a notebook file.

    For the instructor's own files and tests: the grader never parses a student's notebook in its
    own process (it sends the bytes to the sandbox, see :mod:`dlopt.grading.submission`)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_mb * 2**20:
        raise InvalidSubmission(f"the file is {size / 2**20:.1f} MB, larger than the {max_mb:g} MB limit")
    cells, answers = parse_notebook(path.read_bytes(), [m.id for m in manuals], max_cells=MAX_CELLS)
    return Submission(cells=cells, answers=answers)
