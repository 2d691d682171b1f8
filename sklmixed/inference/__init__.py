"""Inference for fitted linear mixed models, as R users know it.

Denominator degrees of freedom for t- and F-tests of the fixed effects:
Satterthwaite's (lmerTest) and Kenward–Roger's (pbkrtest), computed from the stored
cross-products with exact derivatives and without any ``n × n`` matrix; tests of
contrasts (lmerTest's ``contest``) and of each term (its ``anova`` of one model). See
``docs/inference.md``.
"""

from ._anova import anova, fixed_terms, term_contrasts
from ._contest import contest
from ._kenward_roger import KenwardRogerParts, kenward_roger, kenward_roger_parts
from ._satterthwaite import SatterthwaiteParts, satterthwaite, satterthwaite_parts

__all__ = [
    "KenwardRogerParts",
    "SatterthwaiteParts",
    "anova",
    "contest",
    "fixed_terms",
    "kenward_roger",
    "kenward_roger_parts",
    "satterthwaite",
    "satterthwaite_parts",
    "term_contrasts",
]
