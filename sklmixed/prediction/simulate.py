"""Responses drawn from a fitted model, as lme4's ``simulate``.

A draw is ``η* = Xβ̂ + Z b*`` (plus any offset) with, per level, new random effects
``b* ~ N(0, σ̂² Λ Λᵀ)`` (lme4's ``use.u = FALSE``) or the fitted modes held
(``use.u = TRUE``; a level without a mode, never seen, still gets a new draw), then a
response from the family given ``η*``: for the LMM ``y* = η* + ε``,
``ε ~ N(0, σ̂² / w)``. A GLMM plugs in its own draw of the response given the linear
predictor (:func:`gaussian_response` is the LMM's).
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_linear_predictor", "gaussian_response"]


def draw_linear_predictor(state, eta_population, factors, n_draws, rng, use_fitted_effects,
                          unseen_groups=None):  # fmt: skip
    """Draws of the linear predictor with new (or fitted) random effects.

    Parameters
    ----------
    state : PredictionState
    eta_population : ndarray of shape (n,)
        ``Xβ`` (+ offset) of the rows.
    factors : sequence of RandomFactor
        The rows' grouping factors (codes −1: a level never seen).
    n_draws : int
    rng : numpy.random.RandomState
    use_fitted_effects : bool
        Hold the modes of levels that have one instead of drawing new effects.
    unseen_groups : dict of str to ndarray, optional
        Per factor, a group number for each row of code −1, in row order (rows of one
        unseen label share a draw; −1, a missing label, is a group of its own);
        default each such row its own group.

    Returns
    -------
    ndarray of shape (n, n_draws)
    """
    eta = np.repeat(np.asarray(eta_population, dtype=float)[:, None], n_draws, axis=1)
    for factor in factors:
        fs = state.factor(factor.name)
        coef = fs.coefficients(factor.columns)  # (z / scale) T: draws are σ coef u
        codes = factor.codes
        unseen = codes < 0
        groups = codes.copy()
        if unseen.any():
            extra = None if unseen_groups is None else unseen_groups.get(factor.name)
            if extra is None:
                extra = np.arange(int(unseen.sum()))
            else:  # a missing label (−1) is a group of its own
                extra = np.asarray(extra).copy()
                alone = extra < 0
                extra[alone] = extra.max(initial=-1) + 1 + np.arange(int(alone.sum()))
            groups[unseen] = fs.modes.shape[0] + extra
        if use_fitted_effects:
            held = ~unseen
            eta[held] += np.einsum("nq,nq->n", factor.columns[held], fs.modes[codes[held]])[:, None]
            drawn = unseen
        else:
            drawn = np.ones(codes.size, dtype=bool)
        rows = np.flatnonzero(drawn)
        if rows.size == 0:
            continue
        labels, group = np.unique(groups[rows], return_inverse=True)
        u = rng.standard_normal((labels.size, coef.shape[1], n_draws))
        eta[rows] += state.sigma * np.einsum("nq,nqd->nd", coef[rows], u[group])
    return eta


def gaussian_response(eta, sigma, rng, weights=None):
    """``y* = η* + ε``, ``ε ~ N(0, σ² / w)``: the LMM's response given its predictor.

    Parameters
    ----------
    eta : ndarray of shape (n, n_draws)
    sigma : float
    rng : numpy.random.RandomState
    weights : ndarray of shape (n,), optional
        Prior weights (default 1).

    Returns
    -------
    ndarray of shape (n, n_draws)
    """
    scale = sigma if weights is None else sigma / np.sqrt(weights)[:, None]
    return eta + scale * rng.standard_normal(eta.shape)
