"""sklmixed: linear mixed-effects models (lme4's ``lmer``) as a scikit-learn estimator."""

from . import datasets
from ._estimator import MixedLMRegressor
from ._lmer import lmer
from .exceptions import SingularFitWarning

__all__ = ["MixedLMRegressor", "lmer", "datasets", "SingularFitWarning"]
__version__ = "0.1.0"
