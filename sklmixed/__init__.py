"""sklmixed: mixed-effects models (lme4's ``lmer`` and ``glmer``) as scikit-learn estimators."""

from . import datasets
from .estimators import (
    MixedLMRegressor,
    MixedLogisticRegression,
    MixedPoissonRegressor,
    glmer,
    grouped_scorer,
    lmer,
)
from .exceptions import SingularFitWarning
from .inference import anova

__all__ = [
    "MixedLMRegressor",
    "MixedLogisticRegression",
    "MixedPoissonRegressor",
    "lmer",
    "glmer",
    "anova",
    "datasets",
    "SingularFitWarning",
    "grouped_scorer",
]
__version__ = "0.1.0"
