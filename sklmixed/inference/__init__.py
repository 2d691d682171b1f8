"""Inference for fitted linear mixed models, as R users know it.

Denominator degrees of freedom for t- and F-tests of the fixed effects: Satterthwaite's
(lmerTest) and Kenward–Roger's (pbkrtest), computed from the stored cross-products with
exact derivatives and without any ``n × n`` matrix; tests of contrasts (lmerTest's
``contest``) and of each term. Intervals (lme4's ``confint``: profile, Wald, parametric
bootstrap) and likelihood-ratio tests between fits. :func:`anova` dispatches as R's:
one fit gives its F-tests per term, several their likelihood-ratio tests. See
``docs/inference.md`` and ``docs/inference_intervals.md``.
"""

from ._anova import fixed_terms, term_contrasts
from ._contest import contest
from ._kenward_roger import KenwardRogerParts, kenward_roger, kenward_roger_parts
from ._satterthwaite import SatterthwaiteParts, satterthwaite, satterthwaite_parts
from .bootstrap import BootstrapResult, bootstrap
from .compare import AnovaTable, NotNestedError, RefitWarning, anova, compare_models
from .intervals import confint
from .profiling import Profile, profile, zeta_at
from .wald import wald_intervals

__all__ = [
    "AnovaTable",
    "BootstrapResult",
    "KenwardRogerParts",
    "NotNestedError",
    "Profile",
    "RefitWarning",
    "SatterthwaiteParts",
    "anova",
    "bootstrap",
    "compare_models",
    "confint",
    "contest",
    "fixed_terms",
    "kenward_roger",
    "kenward_roger_parts",
    "profile",
    "satterthwaite",
    "satterthwaite_parts",
    "term_contrasts",
    "wald_intervals",
    "zeta_at",
]
