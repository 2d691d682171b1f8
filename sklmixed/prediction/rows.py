"""Predictions and their variances on model arrays, with a choice of random effects.

For a row with fixed-effect row ``x`` and, per grouping factor, a level with model
columns ``z``, the prediction with the factors ``S`` is ``f = xᵀβ + Σ_{j∈S} zⱼᵀ bⱼ``.
Its variance, from the joint conditional covariance of the modes and β at θ, is::

    Var(f) = σ² aᵀ C⁻¹ a            a = [(ZΛ) of the fitted levels in S, x]
           + σ² Σ ‖(z / s) T‖²      over the factors in S whose level is unseen

An unseen level's effect has mean 0 and its prior covariance σ² T Tᵀ, independent of
(u, β), so its variance adds. The variance of a new observation adds ``σ² / w`` (``w``
its prior weight) and, for each factor left out of ``S``, that factor's prior variance
(a new observation carries its group's effect whether or not the prediction does).
Levels added after the fit (:mod:`~sklmixed.prediction.new_groups`) bring their own
conditional variance and the dependence of their modes on (u, β).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .joint import JointRows

__all__ = [
    "CodedFactor",
    "coded_factors",
    "known_entries",
    "known_rows",
    "prediction_variance",
    "select_factors",
]


@dataclass(frozen=True)
class CodedFactor:
    """One factor of new data in the criterion's coordinates.

    Attributes
    ----------
    state : FactorState
    codes : ndarray of shape (n,)
        Level codes: ``< n_fit_levels`` a fitted level, beyond it an added level, −1
        a level never seen.
    coef : ndarray of shape (n, q)
        ``(z / scale) T`` per row.
    included : bool
        Whether the prediction includes this factor's random effects.
    """

    state: object
    codes: np.ndarray
    coef: np.ndarray
    included: bool

    @property
    def fitted(self) -> np.ndarray:
        """Rows whose level is a fitted one."""
        return (self.codes >= 0) & (self.codes < self.state.n_fit_levels)

    @property
    def unseen(self) -> np.ndarray:
        return self.codes < 0

    @property
    def added(self) -> np.ndarray:
        return self.codes >= self.state.n_fit_levels


def select_factors(random_effects, names) -> tuple:
    """The grouping factors whose random effects a prediction includes.

    Parameters
    ----------
    random_effects : None, "all", "none" or list of str
        None or ``"all"``: every factor (lme4's ``re.form = NULL``); ``"none"`` or an
        empty list: none (``re.form = NA``); a list: those factors.
    names : sequence of str
        The model's grouping factors.

    Returns
    -------
    tuple of str
    """
    names = list(names)
    if random_effects is None or (isinstance(random_effects, str) and random_effects == "all"):
        return tuple(names)
    if isinstance(random_effects, str):
        if random_effects == "none":
            return ()
        raise ValueError(
            f"random_effects must be 'all', 'none' or a list of grouping factors {names}; "
            f"got {random_effects!r}."
        )
    try:
        chosen = list(random_effects)
    except TypeError:
        raise TypeError(
            f"random_effects must be 'all', 'none' or a list of grouping factors {names}; "
            f"got {random_effects!r}."
        ) from None
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise ValueError(
            f"random_effects: {unknown} are not grouping factors of the model (its factors: "
            f"{names})."
        )
    return tuple(name for name in names if name in chosen)


def coded_factors(state, arrays, include) -> list:
    """The factors of ``arrays`` in block order, as :class:`CodedFactor`."""
    by_name = {f.name: f for f in arrays.factors}
    return [
        CodedFactor(fs, by_name[fs.name].codes, fs.coefficients(by_name[fs.name].columns),
                    fs.name in include)
        for fs in state.factors
    ]  # fmt: skip


def known_rows(coded, x, subset=None) -> JointRows:
    """``a`` of each row (or of the rows ``subset``): its fitted levels of the included
    factors, and ``x``."""
    x_rows, block1, block2, q1 = known_entries(coded, x, subset)
    return JointRows.build(x_rows, block1, block2, q1=q1)


def known_entries(coded, x, subset=None):
    """The entries of :func:`known_rows`: ``(x, block1, block2, q1)``.

    Every row gets one first-block entry (zero coefficients where its level is not a
    fitted one), the form :class:`JointRows` computes without reductions.
    """

    def rows_of(array):
        return array if subset is None else array[subset]

    n = x.shape[0] if subset is None else subset.size
    q1 = coded[0].state.T.shape[0] if coded else 0
    block1 = None
    block2_rows, block2_index, block2_value = [], [], []
    offset = 0
    for k, cf in enumerate(coded):
        q = cf.state.T.shape[0]
        codes, coef = rows_of(cf.codes), rows_of(cf.coef)
        use = rows_of(cf.fitted) & cf.included
        if k == 0:
            levels = np.where(use, codes, 0)
            block1 = (np.arange(n), levels, np.where(use[:, None], coef, 0.0))
        else:
            rows = np.flatnonzero(use)
            block2_rows.append(np.repeat(rows, q))
            block2_index.append((offset + codes[rows, None] * q + np.arange(q)).ravel())
            block2_value.append(coef[rows].ravel())
            offset += cf.state.n_fit_levels * q
    block2 = None
    if block2_rows:
        block2 = tuple(np.concatenate(parts) for parts in (block2_rows, block2_index, block2_value))
    return rows_of(x), block1, block2, q1


def prediction_variance(state, arrays, include, observation=False, weights=None):
    """Variance of each row's prediction (or of a new observation there).

    Parameters
    ----------
    state : PredictionState
    arrays : ModelArrays
        New data, coded by the fitted design.
    include : tuple of str
        The factors whose random effects the prediction includes.
    observation : bool
        The variance of a new observation instead of the mean's.
    weights : ndarray of shape (n,), optional
        Prior weights of the new observations (default 1).

    Returns
    -------
    ndarray of shape (n,)
    """
    x = arrays.X
    coded = coded_factors(state, arrays, include)
    touched = np.zeros(x.shape[0], dtype=bool)  # rows using an added level
    if state.added is not None:
        for cf in coded:
            if cf.included and state.added.has_factor(cf.state.name):
                touched |= cf.added
    if not touched.any():
        relative = state.covariance.quadratic_forms(known_rows(coded, x))
    else:
        relative = np.empty(x.shape[0])
        plain = np.flatnonzero(~touched)
        if plain.size:
            relative[plain] = state.covariance.quadratic_forms(known_rows(coded, x, plain))
        subset = np.flatnonzero(touched)
        relative[subset] = state.added.relative_variance(state, coded, x, subset)
    for cf in coded:
        prior = np.einsum("na,na->n", cf.coef, cf.coef)
        if cf.included:
            relative += np.where(cf.unseen, prior, 0.0)
        elif observation:
            relative += prior
    if observation:
        relative += 1.0 if weights is None else 1.0 / weights
    return state.sigma**2 * relative
