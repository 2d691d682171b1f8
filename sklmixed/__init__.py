"""sklmixed: mixed-effects models (lme4's ``lmer``) as scikit-learn estimators."""

from . import datasets
from .estimators import MixedLMRegressor, grouped_scorer, lmer
from .exceptions import SingularFitWarning
from .inference import anova

__all__ = ["MixedLMRegressor", "lmer", "anova", "datasets", "SingularFitWarning", "grouped_scorer"]
__version__ = "0.1.0"
