"""Split a check cell into the code the check driver runs and the code the reference runs.

Every call ``expect.<kind>(...)`` of a check cell is a *call site*, numbered in source order. The
*student variant* of the cell replaces each call site by ``__dlopt_rec__(site, kind, <actual>)``:
the ``expected`` argument, the ``holds`` predicate and the options are not in it. It runs in the
check driver, where the student's functions forward their calls to the student's process. The
*reference variant* replaces it by ``__dlopt_rec__(site, kind, <expected>)`` (for
``close``/``equal``), by a dict of the values of the predicate's free names (for ``holds``) or by
``None`` (for ``raises``). Everything else in the cell (setup statements, loops) stays as written
and runs in both processes.

The grader keeps, for every site, what it needs to judge: the kind, the options (``rtol``,
``atol``, ``msg`` -- literals, read with :func:`ast.literal_eval`), the predicate's source, the
expected exception's name.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import TypeGuard

__all__ = ["Site", "CheckPlan", "FormatError", "instrument", "RECORDER", "KINDS"]

RECORDER = "__dlopt_rec__"
KINDS = ("close", "equal", "holds", "raises")
_OPTIONS = {"close": ("rtol", "atol", "msg", "group"), "equal": ("msg", "group"), "holds": ("msg", "group"),
            "raises": ("msg", "group")}
_SAFE_NAMES = {"np", "numpy", "math"} | set(dir(builtins))


class FormatError(ValueError):
    """A source notebook that does not follow the problem-set format."""


@dataclass
class Site:
    index: int
    kind: str
    line: int
    options: dict = field(default_factory=dict)
    predicate: str | None = None      # holds: source of the predicate expression
    free_names: list = field(default_factory=list)  # holds: names the reference must supply
    exceptions: list = field(default_factory=list)  # raises: accepted exception class names

    def label(self) -> str:
        return f"line {self.line}, expect.{self.kind}"


@dataclass
class CheckPlan:
    sites: list
    student_code: str
    reference_code: str


def _is_expect_call(node) -> TypeGuard[ast.Call]:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "expect"
            and node.func.attr in KINDS)


def _argument(call: ast.Call, position: int, name: str, where: str):
    if len(call.args) > position:
        return call.args[position]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    raise FormatError(f"{where}: missing argument {name!r}")


def _free_names(expr: ast.expr) -> list[str]:
    """Names an expression reads that it does not bind itself (lambda args, comprehension targets)."""
    bound, used = set(), []
    for node in ast.walk(expr):
        if isinstance(node, ast.Lambda):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None:
                    bound.add(arg.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound and node.id not in _SAFE_NAMES and node.id not in used:
                used.append(node.id)
    return used


def _exception_names(node, where: str) -> list[str]:
    if isinstance(node, ast.Tuple):
        return [n for elt in node.elts for n in _exception_names(elt, where)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    raise FormatError(f"{where}: the exception of expect.raises must be a class name")


def _site_from_call(call: ast.Call, index: int, source: str) -> Site:
    assert isinstance(call.func, ast.Attribute)
    kind = call.func.attr
    where = f"line {call.lineno}, expect.{kind}"
    site = Site(index=index, kind=kind, line=call.lineno)
    positional_msg = {"holds": 2}
    if kind in positional_msg and len(call.args) > positional_msg[kind]:
        try:
            site.options["msg"] = ast.literal_eval(call.args[positional_msg[kind]])
        except ValueError as exc:
            raise FormatError(f"{where}: msg must be a literal") from exc
    max_args = {"close": 2, "equal": 2, "holds": 3, "raises": 2}[kind]
    if len(call.args) > max_args:
        raise FormatError(f"{where}: too many positional arguments")
    for kw in call.keywords:
        if kw.arg in ("actual", "expected", "predicate", "exception", "call"):
            continue
        if kw.arg not in _OPTIONS[kind]:
            raise FormatError(f"{where}: unknown option {kw.arg!r}")
        try:
            site.options[kw.arg] = ast.literal_eval(kw.value)
        except ValueError as exc:
            raise FormatError(f"{where}: option {kw.arg}= must be a literal") from exc
    if kind == "holds":
        pred = _argument(call, 1, "predicate", where)
        site.predicate = ast.get_source_segment(source, pred) or ast.unparse(pred)
        site.free_names = _free_names(pred)
    if kind == "raises":
        site.exceptions = _exception_names(_argument(call, 0, "exception", where), where)
    return site


def _segment(lines: list[bytes], node) -> tuple[int, int]:
    """Absolute byte offsets of a node in the source (ast columns are UTF-8 byte offsets)."""
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return (starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset)


def _variant(source: str, calls: list, sites: list, side: str) -> str:
    """Rewrite each call site in the text, keeping every other line where it was."""
    raw = source.encode()
    lines = raw.splitlines(keepends=True)
    out = raw
    for call, site in sorted(zip(calls, sites), key=lambda cs: -cs[1].index):
        where = site.label()
        if side == "student":
            node = _argument(call, 1, "call", where) if site.kind == "raises" else _argument(call, 0, "actual", where)
            a, b = _segment(lines, node)
            payload = raw[a:b].decode()
        elif site.kind in ("close", "equal"):
            a, b = _segment(lines, _argument(call, 1, "expected", where))
            payload = raw[a:b].decode()
        elif site.kind == "holds":
            payload = "{" + ", ".join(f"{n!r}: {n}" for n in site.free_names) + "}"
        else:
            payload = "None"
        text = f"{RECORDER}({site.index}, {site.kind!r}, ({payload}))"
        a, b = _segment(lines, call)
        missing = raw[a:b].count(b"\n") - text.count("\n")
        text = text[:-1] + "\n" * max(missing, 0) + ")"
        out = out[:a] + text.encode() + out[b:]
    return out.decode()


def instrument(source: str, where: str = "check cell") -> CheckPlan:
    """Parse a check cell and return its call sites and its student and reference variants."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FormatError(f"{where}: syntax error: {exc}") from exc
    calls: list[ast.Call] = sorted((n for n in ast.walk(tree) if _is_expect_call(n)),
                                   key=lambda n: (n.lineno, n.col_offset))
    if not calls:
        raise FormatError(f"{where}: a check cell must call expect.close/equal/holds/raises")
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            raise FormatError(f"{where}, line {node.lineno}: use expect.* instead of assert "
                              "(an assert would run inside the student's process)")
    sites, by_call = [], {}
    for i, call in enumerate(calls):
        for inner in ast.walk(call):
            if inner is not call and _is_expect_call(inner):
                raise FormatError(f"{where}, line {inner.lineno}: expect calls cannot be nested")
        site = _site_from_call(call, i, source)
        sites.append(site)
        by_call[id(call)] = site
    variants = {side: _variant(source, calls, sites, side) for side in ("student", "reference")}
    for side, code in variants.items():
        try:
            ast.parse(code)
        except SyntaxError as exc:  # pragma: no cover - a bug in the rewriting
            raise FormatError(f"{where}: could not build the {side} variant: {exc}") from exc
    return CheckPlan(sites=sites, student_code=variants["student"], reference_code=variants["reference"])
