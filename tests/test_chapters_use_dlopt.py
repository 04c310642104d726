"""Chapters call dlopt; they never re-implement an update rule, line search or objective, and they
do not write the optimization loop themselves.

Two guards on the code cells of every page:

- no function or class that dlopt provides is defined again (by name);
- no update step is written in a loop (AST): ``x -= ...``, ``x = x - ...``, ``x += lr * ...``,
  ``.sub_``/``.add_`` on tensors, or a call of a dlopt rule inside ``for``/``while`` -- the loop
  belongs to :func:`dlopt.run` (or ``dlopt.torch``). A cell that must show the loop (a contrast the
  text names) is listed in ``ALLOWED`` with the reason.

The same AST check runs over the package (outside ``dlopt.torch`` and the grader): the book's
simulators run their rules through :func:`dlopt.run`; ``PACKAGE_ALLOWED`` names the loops that are
something else (distributed workers, linear solvers, ``minimize``'s own iterations).
"""

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
           "widgets", "explorers", "data", "distributed", "generalization", "convergence", "applications")


def provided_names() -> set[str]:
    """Lower-cased names of every public function and class dlopt provides to the chapters."""
    names = set()
    for module_name in GUARDED:
        module = importlib.import_module(f"dlopt.{module_name}")
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)):
                if getattr(obj, "__module__", "") == module.__name__:  # defined there, not imported
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


# ------------------------------------------------------------------------------------------------
# update steps written in a loop

STEP_SIZES = {"lr", "eta", "alpha", "gamma", "step_size", "learning_rate"}
RULES = set(importlib.import_module("dlopt.rules").__all__) | {"accelerated_gradient"}

#: (page, a piece of the offending line) -> why the loop stays on the page: only contrasts that the
#: page's text names (every other loop goes through dlopt.run, dlopt.torch or an analysis helper).
ALLOWED = {
    ("adaptive/digits.md", "x_keras -= lr"):
        "contrast: the text compares Keras's epsilon convention with torch's, step by step",
    ("gradient-descent/gradient-flow.md", "v -= (f.value(np.array([u, v])) - c)"):
        "contrast: Newton's method on the equation f(u, v) = c, the implicit function the appendix "
        "constructs, not a step on an objective (the text says why the loop is written out)",
}


def _has(node, kind) -> bool:
    return any(isinstance(n, kind) for n in ast.walk(node))


def _has_product(node) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)) for n in ast.walk(node))


def _is_step(node) -> bool:
    """Is ``node`` an update step: ``x -= ...``, ``x = x ± ...``, ``x += lr * ...``, ``.sub_``,
    ``.add_`` or a call of a dlopt rule?"""
    if isinstance(node, ast.AugAssign):
        if isinstance(node.op, ast.Sub):
            return _has_product(node.value) or _has(node.value, ast.Call)
        if isinstance(node.op, ast.Add):
            return _has_product(node.value) and any(
                isinstance(n, ast.Name) and n.id in STEP_SIZES for n in ast.walk(node.value))
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.BinOp):
        value = node.value
        return (isinstance(value.op, (ast.Sub, ast.Add))
                and ast.unparse(value.left) == ast.unparse(node.targets[0])
                and (_has_product(value.right) or _has(value.right, ast.Call)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("sub_", "add_") or node.func.attr in RULES
    return False


def steps_in_loops(source: str) -> list[str]:
    """The update steps written inside ``for``/``while`` loops of ``source`` (one line each)."""
    found = []

    def visit(node, in_loop):
        for child in ast.iter_child_nodes(node):
            loop = in_loop or isinstance(node, (ast.For, ast.While))
            if isinstance(child, (ast.FunctionDef, ast.Lambda)) and not in_loop:
                loop = False  # a function defined outside a loop: its body runs wherever it is called
            if loop and _is_step(child):
                found.append(ast.unparse(child).splitlines()[0])
            visit(child, loop)

    visit(ast.parse(source), False)
    return found


def _cell_source(cell: str) -> str:
    return "\n".join(ln for ln in cell.splitlines() if not ln.lstrip().startswith(("%", "!", ":")))


def loop_steps(page: Path) -> list[str]:
    return [line for cell in code_cells(page) for line in steps_in_loops(_cell_source(cell))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_writes_no_update_loop(page):
    rel = str(page.relative_to(ROOT / "chapters"))
    allowed = [piece for (p, piece) in ALLOWED if p == rel]
    bad = [line for line in loop_steps(page) if not any(piece in line for piece in allowed)]
    assert not bad, (f"{rel} writes update steps in a loop: {bad}; use dlopt.run (hooks, schedules, "
                     "record=) or dlopt.torch, or list the cell in ALLOWED as a contrast the text names")


def test_allow_list_has_no_stale_entries():
    """Every allowed piece still occurs: converting a loop must remove its entry."""
    for (page, piece), reason in ALLOWED.items():
        assert reason.startswith("contrast: "), reason
        assert any(piece in line for line in loop_steps(ROOT / "chapters" / page)), (page, piece)


@pytest.mark.parametrize("source", [
    "for k in range(9):\n    x = x - lr * g(x)",
    "for k in range(9):\n    x -= eta * g",
    "while True:\n    w += alpha * d",
    "for p in ps:\n    p.sub_(p.grad, alpha=0.1)",
    "for k in range(9):\n    rules.adam(x, g(x), state, lr=0.1)",
    "for k in range(9):\n    x = x - np.linalg.solve(H(x), g(x))",
])
def test_guard_sees_update_loops(source):
    assert steps_in_loops(source)


@pytest.mark.parametrize("source", [
    "x = x - lr * g",                                  # one step, no loop
    "for k in range(9):\n    total += w * v",          # an accumulation, not a step
    "traj = dlopt.run(rules.gd, f, x0, 100, lr=0.1)",
    "for lr in lrs:\n    runs.append(dlopt.run(rules.gd, f, x0, 100, lr=lr))",
])
def test_guard_passes_other_code(source):
    assert not steps_in_loops(source)


# ------------------------------------------------------------------------------------------------
# the package itself: the same rule, outside dlopt.torch (its optimizers are the other loop)

#: (module, a piece of the line) -> why the loop is not dlopt.run's
PACKAGE_ALLOWED = {
    ("book/distributed.py", "rules.gd(w, g / world"):
        "a torch.distributed worker: the loop is the communication (all-reduce), the step is the rule",
    ("book/distributed.py", "rules.gd(w, total / workers"):
        "the parameter server: it steps when its workers' gradients arrive (synchronous)",
    ("book/distributed.py", "rules.gd(w, msg[:n]"):
        "the parameter server: it steps when a worker's gradient arrives (asynchronous)",
    ("optim/secondorder.py", "d = d + a * p"): "conjugate gradients: a recurrence of the linear solver",
    ("optim/secondorder.py", "r = r + a * Hp"): "conjugate gradients: a recurrence of the linear solver",
    ("optim/secondorder.py", "x = x + newton_step(g, H)"): "minimize's own iteration (pure Newton)",
    ("optim/secondorder.py", "x = x - o['lr'] * g"): "minimize's own iteration (method='gd', fixed step)",
    ("problems/functions.py", "pts = pts - "): "Newton's method on the equation f = level (level-set points)",
}


def package_loop_steps() -> dict[str, list[str]]:
    steps = {}
    for path in sorted((ROOT / "src" / "dlopt").rglob("*.py")):
        rel = str(path.relative_to(ROOT / "src" / "dlopt"))
        if rel.startswith(("grading/", "optim/torch/")):
            continue
        found = steps_in_loops(path.read_text())
        if found:
            steps[rel] = found
    return steps


def test_package_loops_over_rules_only_in_the_runner():
    """Every simulator of dlopt.book runs its rule through dlopt.run; the loops left are listed."""
    steps = package_loop_steps()
    bad = {rel: [line for line in found if not any(rel == m and piece in line for (m, piece) in PACKAGE_ALLOWED)]
           for rel, found in steps.items()}
    assert not any(bad.values()), f"update steps in loops outside dlopt.run: {bad}"
    for module, piece in PACKAGE_ALLOWED:
        assert any(piece in line for line in steps.get(module, [])), (module, piece)
