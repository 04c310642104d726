"""dlopt: the optimizer package of *Optimization for Deep Learning*.

Every chapter and exercise of the book imports this package instead of copying code. It is
organised by concept:

- :mod:`dlopt.optim` -- the update rules (each written once, over numpy arrays, torch tensors and
  collections of them), :func:`dlopt.run` (the one loop that applies a rule), schedules, line
  searches, second-order methods (:func:`dlopt.minimize`) and :mod:`dlopt.torch` (drop-in
  ``torch.optim`` classes, imported on first use);
- :mod:`dlopt.problems` -- objectives with value, gradient and Hessian, data sets, small networks;
- :mod:`dlopt.analysis` -- finite differences, critical points, spectra and rates of linear
  iterations, information-theoretic quantities;
- :mod:`dlopt.book` -- figures in one style, explorers (``dlopt.explorers``: kernel-free in the HTML
  book), and the simulators of single chapters
  (stochastic ensembles, adaptive-method experiments, convergence bounds, landscapes,
  generalization, distributed training, applications);
- :mod:`dlopt.grading` -- the autograder;
- :mod:`dlopt.protocols` -- the contracts: ``Rule``, ``Oracle``, ``Objective``, ``Schedule``;
- :mod:`dlopt.checks` -- the book's assertions with stated tolerances (:func:`dlopt.checks.close`).

Each module is also reachable by its short name, as the chapters use it: ``dlopt.rules`` is
:mod:`dlopt.optim.rules`, ``dlopt.functions`` is :mod:`dlopt.problems.functions`,
``dlopt.stochastic`` is :mod:`dlopt.book.stochastic`, and so on (``import dlopt.rules`` works too).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import random
import sys

import numpy as np

from dlopt import analysis, checks, optim, problems, protocols
from dlopt.analysis import calculus, information
from dlopt.book import distributed, experiments, generalization, landscape, stochastic
from dlopt.optim import linesearch, rules, schedules, secondorder
from dlopt.optim.runner import Trajectory, run
from dlopt.optim.secondorder import minimize
from dlopt.problems import data, functions, nn

__version__ = "0.1.0"

__all__ = [
    "Trajectory",
    "analysis",
    "calculus",
    "checks",
    "data",
    "device",
    "distributed",
    "experiments",
    "functions",
    "generalization",
    "information",
    "landscape",
    "linesearch",
    "minimize",
    "nn",
    "optim",
    "problems",
    "protocols",
    "rules",
    "run",
    "schedules",
    "secondorder",
    "seed",
    "stochastic",
]


#: Where each module of the package lives (the package is organised by concept: ``optim``,
#: ``problems``, ``analysis``, ``book``); ``dlopt.<name>`` and ``import dlopt.<name>`` keep working.
_MODULES = {
    "rules": "dlopt.optim.rules", "schedules": "dlopt.optim.schedules",
    "linesearch": "dlopt.optim.linesearch", "secondorder": "dlopt.optim.secondorder",
    "torch": "dlopt.optim.torch", "trajectory": "dlopt.optim.runner",
    "functions": "dlopt.problems.functions", "data": "dlopt.problems.data", "nn": "dlopt.problems.nn",
    "calculus": "dlopt.analysis.calculus", "information": "dlopt.analysis.information",
    "quadratic_analysis": "dlopt.analysis.quadratic_analysis",
    "plots": "dlopt.book.plots", "widgets": "dlopt.book.widgets", "explorers": "dlopt.book.explorers",
    "experiments": "dlopt.book.experiments",
    "stochastic": "dlopt.book.stochastic", "convergence": "dlopt.book.convergence",
    "landscape": "dlopt.book.landscape", "generalization": "dlopt.book.generalization",
    "distributed": "dlopt.book.distributed", "applications": "dlopt.book.applications",
}


def __getattr__(name: str):
    """Import the modules not imported eagerly (``dlopt.torch`` imports torch, ``plots`` and
    ``widgets`` matplotlib) on first use."""
    if name in _MODULES:
        import importlib

        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ModuleAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import dlopt.rules`` (and ``dlopt.torch.lbfgs``, ...) gives the module where it now lives:
    the same module object under both names."""

    @staticmethod
    def _target(name: str) -> str | None:
        head, _, rest = name.partition(".")
        if head != "dlopt":
            return None
        first, _, tail = rest.partition(".")
        if first not in _MODULES:
            return None
        return _MODULES[first] + ("." + tail if tail else "")

    def find_spec(self, name, path=None, target=None):
        new = self._target(name)
        if new is None or new == name:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        import importlib

        module = importlib.import_module(self._target(spec.name))
        spec.loader_state = module.__spec__  # the module keeps its own spec (see exec_module)
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state or module.__spec__


if not any(isinstance(f, _ModuleAlias) for f in sys.meta_path):
    sys.meta_path.insert(0, _ModuleAlias())


def device(verbose: bool = False):
    """Return ``torch.device('cuda')`` when a GPU is available, else ``torch.device('cpu')``.

    Every PyTorch example in the book places its model and data on ``dlopt.device()``, so the
    same cell runs unchanged on a laptop and on a GPU machine.
    """
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if verbose:
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
        print(f"dlopt.device(): {dev} ({name})")
    return dev


def seed(value: int = 0) -> np.random.Generator:
    """Seed Python's, numpy's and torch's global generators.

    Returns a fresh ``numpy.random.Generator`` seeded with ``value`` for code that prefers an
    explicit generator. If torch is not imported yet it is seeded the moment it is (importing
    torch takes seconds, which numpy-only pages and the grader's sandboxes should not pay).
    """
    random.seed(value)
    np.random.seed(value)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(value)
    else:
        _SeedTorchOnImport.install(value)
    return np.random.default_rng(value)


class _SeedTorchOnImport(importlib.abc.MetaPathFinder):
    """Import hook: ``torch.manual_seed(value)`` right after torch is first imported."""

    _pending: "_SeedTorchOnImport | None" = None

    def __init__(self, value: int):
        self.value = value

    @classmethod
    def install(cls, value: int) -> None:
        if cls._pending is not None and cls._pending in sys.meta_path:
            cls._pending.value = value  # the latest seed wins, as with eager seeding
            return
        cls._pending = cls(value)
        sys.meta_path.insert(0, cls._pending)

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)  # let the normal finders locate torch
        type(self)._pending = None
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return spec
        loader, value = spec.loader, self.value
        exec_module = loader.exec_module

        def exec_and_seed(module):
            exec_module(module)
            module.manual_seed(value)

        loader.exec_module = exec_and_seed
        return spec
