"""Chapters call dlopt; they never re-implement an update rule, line search or objective, and they
do not write the optimization loop themselves.

Two guards on the code cells of every page:

- no function or class that dlopt provides is defined again (by name);
- no update step is written in a loop (AST): ``x -= ...``, ``x = x - ...``, ``x += lr * ...``,
  ``.sub_``/``.add_`` on tensors, or a call of a dlopt rule inside ``for``/``while`` -- the loop
  belongs to :func:`dlopt.run` (or ``dlopt.torch``). A cell that must show the loop (a contrast the
  text names) is listed in ``ALLOWED`` with the reason.
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

#: (page, a piece of the offending line) -> why the loop stays on the page. "pending" entries are
#: loops still to be moved into dlopt.run; the others are contrasts the page's text names.
ALLOWED = {
    ("adaptive/digits.md", "x_keras -= lr"):
        "contrast: the text compares Keras's epsilon convention with torch's, step by step",
    ("adaptive/digits.md", "rules.adam(x, g, state"):
        "contrast: the same comparison, the rule's side (epsilon changes with t)",
    ("convergence/acceleration.md", "cv.accelerated_gradient("):
        "pending: records x_k and t_k of the two-sequence form (the theorem's quantities)",
    ("generalization/implicit-regularization.md", "rules.adagrad(W, grad(W, k)"):
        "pending: reads AdaGrad's accumulator half-way through a 3000-step run",
    ("gradient-descent/gradient-flow.md", "v -= (f.value(np.array([u, v])) - c)"):
        "contrast: Newton's method on the equation f(u, v) = c, the implicit function the appendix "
        "constructs, not a step on an objective",
    ("gradient-descent/gradient-flow.md", "x_star = x_star - np.linalg.solve"):
        "pending: Newton polish of a minimizer (calculus.newton_critical_points)",
    ("second-order/hessian-approximations.md", "w = w + regularized_newton_step"):
        "pending: sub-sampled Newton with a fresh sample per step",
    ("sgd/warmup-line-search.md", "rules.gd(w, g, state, lr=step)"):
        "pending: SGD with a step chosen by a line search on each mini-batch",
    ("training/generalization.md", "theta_star = theta_star - np.linalg.lstsq"):
        "pending: Newton polish of a minimizer (calculus.newton_critical_points)",
    ("training/losses-activations.md", "rules.gd(theta, g if c is None"):
        "pending: records loss and gradient norm from one backward pass per step",
    ("training/nonconvexity.md", "theta = theta - np.linalg.lstsq"):
        "pending: Newton polish of a minimizer (calculus.newton_critical_points)",
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
        assert reason.split(":")[0] in ("contrast", "pending"), reason
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
