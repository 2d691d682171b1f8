"""Predictions from a fitted model: means, standard errors, intervals, new groups, draws.

- :mod:`.linear`: the linear predictor ``Xβ + Σ Z b`` with a choice of random effects.
- :mod:`.joint`: ``aᵀ C⁻¹ a`` from the blocked factor (the joint conditional
  covariance of the spherical modes and β at θ), batched over rows and levels.
- :mod:`.state`: what prediction reads of a fit (:class:`PredictionState`).
- :mod:`.rows`: the variance of each row's prediction or of a new observation, for
  fitted, added and unseen levels.
- :mod:`.new_groups`: levels never seen in fit conditioned on their own rows at the
  fitted θ, β, σ.
- :mod:`.simulate`: draws of responses from the fitted model (lme4's ``simulate``).
- :mod:`.intervals`: Gaussian intervals; a link's response scale (the GLMMs' hook).

The estimators' ``predict``, ``predict_interval``, ``add_groups`` and ``simulate``
(:class:`~sklmixed.estimators._prediction.PredictionMixin`) are thin layers on these.
"""

from .intervals import normal_interval, response_interval
from .joint import JointCovariance, JointRows
from .linear import linear_predictor, padded_modes, prediction_mean
from .new_groups import AddedGroups, condition_new_levels
from .rows import prediction_variance, select_factors
from .simulate import draw_linear_predictor, gaussian_response
from .state import FactorState, PredictionState, prediction_state

__all__ = [
    "AddedGroups",
    "FactorState",
    "JointCovariance",
    "JointRows",
    "PredictionState",
    "condition_new_levels",
    "draw_linear_predictor",
    "gaussian_response",
    "linear_predictor",
    "normal_interval",
    "padded_modes",
    "prediction_mean",
    "prediction_state",
    "prediction_variance",
    "response_interval",
    "select_factors",
]
