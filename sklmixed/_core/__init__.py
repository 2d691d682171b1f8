"""Numerical core: numpy and scipy only, no pandas, no estimator.

From the sufficient statistics to a fitted model: :class:`Criterion` (the one door to
lme4's criterion of θ, built on the blocked Cholesky factor), :func:`fit_lmm` (the
optimizer's road: start, search, restarts, check, polish) and the records they keep.
"""

from .check import ConvergenceCheck
from .criterion import Criterion
from .fit import LMMFit, fit_lmm
from .optimize import OptimizerRecord
from .solution import Solution
from .terms import TermLayout

__all__ = [
    "ConvergenceCheck",
    "Criterion",
    "LMMFit",
    "OptimizerRecord",
    "Solution",
    "TermLayout",
    "fit_lmm",
]
