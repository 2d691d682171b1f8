"""Inference for fitted linear mixed models, as R users know it.

Denominator degrees of freedom for t- and F-tests of the fixed effects:
Satterthwaite's (lmerTest) and Kenward–Roger's (pbkrtest), computed from the stored
cross-products with exact derivatives (see ``docs/inference.md``).
"""

from .satterthwaite import satterthwaite, satterthwaite_df, satterthwaite_parts

__all__ = ["satterthwaite", "satterthwaite_df", "satterthwaite_parts"]
