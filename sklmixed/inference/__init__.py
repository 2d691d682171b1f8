"""Inference from a fitted model: intervals, the parametric bootstrap, model comparison
(and, from the ``infer-df`` work, Satterthwaite and Kenward-Roger tests)."""

from .compare import AnovaTable, NotNestedError, RefitWarning, anova
from .profiling import Profile, profile, zeta_at
from .bootstrap import BootstrapResult, bootstrap
from .wald import wald_intervals

__all__ = [
    "AnovaTable",
    "BootstrapResult",
    "NotNestedError",
    "Profile",
    "RefitWarning",
    "anova",
    "bootstrap",
    "profile",
    "wald_intervals",
    "zeta_at",
]
