"""Chapters call dlopt; they never re-implement an update rule, line search or objective."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "chapters").rglob("*.md"))
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


# every module whose functions a page might be tempted to re-implement (torch and grading excluded:
# pages use torch.optim-style classes by import, and the grader is not chapter material)
GUARDED = ("rules", "linesearch", "functions", "schedules", "secondorder", "trajectory", "calculus",
           "information", "nn", "landscape", "stochastic", "experiments", "quadratic_analysis",
           "widgets", "data", "distributed", "generalization", "convergence", "applications")


def provided_names() -> set[str]:
    """Lower-cased names of every public function and class dlopt provides to the chapters."""
    names = set()
    for module_name in GUARDED:
        module = importlib.import_module(f"dlopt.{module_name}")
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)):
                if getattr(obj, "__module__", "").startswith("dlopt"):
                    names.add(name.lower())
    return names


def code_cells(page: Path) -> list[str]:
    return [m.group(1) for m in CELL.finditer(page.read_text())]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_does_not_redefine_dlopt(page):
    provided = provided_names()
    for cell in code_cells(page):
        lines = [ln for ln in cell.splitlines() if not ln.lstrip().startswith(("%", "!", ":"))]
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.name.lower() not in provided, (
                    f"{page.name} defines {node.name}, which dlopt already provides: import it"
                )


def test_guard_knows_the_core():
    assert {"gd", "backtracking", "quadratic", "rosenbrock", "run"} <= provided_names()
