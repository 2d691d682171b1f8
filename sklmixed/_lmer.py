"""``lmer``: R's call translated one-to-one."""

from __future__ import annotations

from ._estimator import MixedLMRegressor

__all__ = ["lmer"]


def lmer(formula, data, REML=True, weights=None, **params):  # noqa: N803 (R's argument name)
    """Fit a linear mixed model as R's ``lme4::lmer(formula, data, REML, weights)``.

    Parameters
    ----------
    formula : str
        An lme4 formula with its left side, e.g. ``"normexam ~ 1 + (1 | school)"``.
    data : DataFrame
        Holds the response and every variable the formula names.
    REML : bool, default=True
        REML (True) or maximum likelihood (False).
    weights : str or array-like, default=None
        Prior weights: a column of ``data`` or an array (lme4's ``weights``).
    **params
        Other :class:`MixedLMRegressor` parameters (``tol``, ``max_iter``).

    Returns
    -------
    MixedLMRegressor
        The fitted estimator.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam().frame
    >>> fit = lmer("normexam ~ standLRT + (1 | school)", data=exam)
    >>> fit.fixed_effects_.round(4).to_dict()
    {'(Intercept)': 0.0023, 'standLRT': 0.5633}
    """
    if "~" not in formula:
        raise ValueError(f"lmer needs a formula with a response, 'y ~ ...'; got {formula!r}.")
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ValueError(f"weights: column {weights!r} is not in data.")
        weights = data[weights].to_numpy()
    model = MixedLMRegressor(formula=formula, method="REML" if REML else "ML", **params)
    return model.fit(data, None, sample_weight=weights)
