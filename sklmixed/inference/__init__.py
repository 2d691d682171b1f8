"""Inference from a fitted model: intervals, the parametric bootstrap, model comparison
(and, from the ``infer-df`` work, Satterthwaite and Kenward-Roger tests)."""

# `anova` dispatches: one fit to the F-tests of ._anova (infer-df), several to
# compare_models; keep this import of it over ._anova's when merging.
from .compare import AnovaTable, NotNestedError, RefitWarning, anova, compare_models
from .profiling import Profile, profile, zeta_at
from .bootstrap import BootstrapResult, bootstrap
from .intervals import confint
from .wald import wald_intervals

__all__ = [
    "AnovaTable",
    "BootstrapResult",
    "NotNestedError",
    "Profile",
    "RefitWarning",
    "anova",
    "bootstrap",
    "compare_models",
    "confint",
    "profile",
    "wald_intervals",
    "zeta_at",
]
