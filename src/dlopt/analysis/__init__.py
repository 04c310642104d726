"""Analysis: finite differences (gradients, Hessians, Hessian-vector products), critical points,
spectra and rates of linear iterations, information-theoretic quantities.

- :mod:`dlopt.analysis.calculus` -- finite differences, Taylor models, critical points;
- :mod:`dlopt.analysis.quadratic_analysis` -- spectra and rates of GD, heavy ball and Nesterov on
  quadratics;
- :mod:`dlopt.analysis.information` -- entropy, cross-entropy, KL divergence.
"""

from __future__ import annotations

from dlopt.analysis import calculus, information, quadratic_analysis

__all__ = ["calculus", "information", "quadratic_analysis"]
