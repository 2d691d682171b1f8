"""The scikit-learn estimators and R's calls: parameters, validation, delegation."""

from .linear import MixedLMRegressor
from .r_api import lmer

__all__ = ["MixedLMRegressor", "lmer"]
