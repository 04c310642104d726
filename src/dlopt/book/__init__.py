"""The book's demos: figures in one style, explorers, and the simulators of single chapters
(stochastic ensembles, adaptive-method experiments, convergence bounds, landscapes,
generalization, distributed training, applications).

``plots``, ``widgets`` and ``explorers`` import matplotlib; they are imported on first use.
"""

from __future__ import annotations

__all__ = ["applications", "convergence", "distributed", "experiments", "explorers", "generalization",
           "landscape", "plots", "stochastic", "widgets"]
