"""The scikit-learn estimators and R's calls: parameters, validation, delegation."""

from .linear import MixedLMRegressor
from .r_api import glmer, lmer
from .scoring import grouped_scorer

__all__ = ["MixedLMRegressor", "lmer", "glmer", "grouped_scorer"]
