"""The scikit-learn estimators and R's calls: parameters, validation, delegation."""

from .glm import MixedLogisticRegression, MixedPoissonRegressor
from .linear import MixedLMRegressor
from .r_api import glmer, lmer
from .scoring import grouped_scorer

__all__ = [
    "MixedLMRegressor",
    "MixedLogisticRegression",
    "MixedPoissonRegressor",
    "lmer",
    "glmer",
    "grouped_scorer",
]
