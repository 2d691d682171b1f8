"""Intervals from a mean and a variance, and the response scale of a link.

The LMM's intervals are Gaussian: ``mean ± z σ_f`` with ``z`` the normal quantile, at
the fitted θ and σ (their own uncertainty is not propagated). A GLMM's interval is
formed on the link scale, where the linear predictor is approximately Gaussian, and
mapped through the inverse link (monotone, so the endpoints map to the endpoints):
:func:`response_interval` is the hook a GLMM estimator's ``predict_interval`` calls
with its standard errors of the linear predictor.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["normal_interval", "response_interval"]


def normal_interval(mean, variance, level):
    """``mean ± z sqrt(variance)``, ``z`` the ``(1 + level) / 2`` normal quantile.

    Returns
    -------
    ndarray of shape (n, 2)
        Lower and upper bounds.
    """
    half = norm.ppf(0.5 + level / 2.0) * np.sqrt(variance)
    return np.column_stack([mean - half, mean + half])


def response_interval(eta, se, level, inverse_link):
    """An interval on the link scale mapped to the response scale.

    Parameters
    ----------
    eta, se : ndarray of shape (n,)
        Linear predictor and its standard error.
    level : float
    inverse_link : callable
        Monotone map from the link scale to the response (the logistic function,
        ``exp``).

    Returns
    -------
    ndarray of shape (n, 2)
    """
    bounds = inverse_link(normal_interval(eta, np.square(se), level))
    return np.sort(bounds, axis=1)  # a decreasing inverse link swaps the ends
