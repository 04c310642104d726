"""Problems: every objective (value, gradient, Hessian; vectorised over stacks of points), the
synthetic data sets and scikit-learn's bundled digits, small networks with hand-written backprop.

- :mod:`dlopt.problems.functions` -- test objectives;
- :mod:`dlopt.problems.data` -- data sets (nothing is downloaded);
- :mod:`dlopt.problems.nn` -- activations, losses and a multilayer perceptron.
"""

from __future__ import annotations

from dlopt.problems import data, functions, nn

__all__ = ["data", "functions", "nn"]
