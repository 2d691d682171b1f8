"""Plots of fitted mixed models: caterpillar, shrinkage, residuals, QQ, profiles
(matplotlib optional).

The functions live in :mod:`sklmixed.report.plotting`, beside the other ways a fit
is shown; this module is their public name. matplotlib is imported only when a plot
is drawn (``pip install "sklmixed[plot]"``).
"""

from .report.plotting import caterpillar, profile_zeta, qq_modes, residuals_vs_fitted, shrinkage

__all__ = ["caterpillar", "shrinkage", "residuals_vs_fitted", "qq_modes", "profile_zeta"]
