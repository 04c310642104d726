"""dlopt: the optimizer package of *Optimization for Deep Learning*.

Every chapter and exercise of the book imports this package instead of copying code:

- :mod:`dlopt.functions` -- test objectives with value, gradient and Hessian;
- :mod:`dlopt.rules` -- each update rule written once, over numpy arrays and torch tensors;
- :mod:`dlopt.trajectory` -- iterate a rule on an objective and record the path;
- :mod:`dlopt.linesearch` -- exact (quadratic), backtracking Armijo and strong Wolfe line searches;
- :mod:`dlopt.data` -- synthetic data sets (nothing is downloaded);
- :mod:`dlopt.plots` -- the book's figures in one style;
- :mod:`dlopt.calculus` -- finite-difference derivatives, Taylor models, critical points;
- :mod:`dlopt.information` -- entropy, cross-entropy, KL divergence, softmax;
- :mod:`dlopt.nn` -- activations, losses and a multilayer perceptron with hand-written backprop;
- :mod:`dlopt.landscape` -- loss-landscape tools: symmetric minima, critical points, sharpness;
- :mod:`dlopt.schedules` -- learning-rate schedules ``lr(k)`` (step, cosine, warm-up, ...), also as
  ``torch.optim`` schedulers;
- :mod:`dlopt.secondorder` -- Newton, Levenberg-Marquardt, BFGS, L-BFGS, Newton-CG, Hessian
  approximations, and :func:`dlopt.minimize` (scipy's interface);
- :mod:`dlopt.stochastic` -- ensembles of noisy runs, SGD noise floors, Langevin escape times,
  Polyak--Ruppert averaging;
- :mod:`dlopt.experiments` -- replay a rule on a gradient sequence, many seeded runs at once
  (``run_batch``), confidence intervals, a small CNN and its training loop (adaptive methods);
- :mod:`dlopt.convergence` -- the worst-case quadratic, accelerated gradient for convex problems,
  and the convergence-rate bounds of the convergence-theory chapter;
- :mod:`dlopt.generalization` -- implicit regularization, deep linear networks, rank floors,
  SGD stability on neighbouring data sets, random features and minimum-norm fits;
- :mod:`dlopt.distributed` -- data-parallel, asynchronous, local and compressed SGD (numpy
  simulators) and real runs on ``torch.distributed`` (gloo on the loopback interface);
- :mod:`dlopt.applications` -- compression (pruning, low rank), Pareto fronts, Lennard-Jones
  clusters, replicator dynamics and Gaussian smoothing for the connections chapter;
- :mod:`dlopt.checks` -- assertions with stated tolerances (:func:`dlopt.checks.close`);
- :mod:`dlopt.torch` -- drop-in ``torch.optim`` classes built on the rules (imported lazily).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import random
import sys

import numpy as np

from . import data, functions, linesearch, rules
from . import calculus, checks, information
from . import landscape, nn
from . import schedules, secondorder
from . import stochastic
from . import experiments
from . import distributed
from . import generalization
from .secondorder import minimize
from .trajectory import Trajectory, run

__version__ = "0.1.0"

__all__ = [
    "Trajectory",
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
    "rules",
    "run",
    "schedules",
    "secondorder",
    "seed",
    "stochastic",
]


def __getattr__(name: str):
    """Import :mod:`dlopt.torch` on first use, so that ``import dlopt`` does not import torch."""
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
