"""R's calls translated one-to-one: ``lmer(formula, data, REML, weights, na_action)``."""

from __future__ import annotations

import numpy as np

from .linear import MixedLMRegressor

__all__ = ["lmer"]


def lmer(formula, data, REML=True, weights=None, na_action="omit", **params):  # noqa: N803
    """Fit a linear mixed model as R's ``lme4::lmer(formula, data, REML, weights)``.

    Parameters
    ----------
    formula : str
        An lme4 formula with its left side, e.g. ``"normexam ~ 1 + (1 | school)"``.
    data : DataFrame
        Holds the response and every variable the formula names. A Dask DataFrame
        is fitted partition by partition on its workers (``docs/distributed.md``).
    REML : bool, default=True
        REML (True) or maximum likelihood (False).
    weights : str or array-like, default=None
        Prior weights: the name of a numeric column of ``data``, or an array (lme4's
        ``weights``).
    na_action : {"omit", "fail"}, default="omit"
        R's ``na.action``: leave out the rows missing a value of a variable the model
        uses (the formula's variables, the response, the weights), as R's default
        ``na.omit``, or refuse them (``na.fail``). The rows left out are the fit's
        ``na_dropped_`` and their number is printed in the summary.
    **params
        Other :class:`MixedLMRegressor` parameters (``tol``, ``max_iter``,
        ``unseen_levels``, ``verbose``).

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
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"lmer needs a formula with a response, 'y ~ ...'; got {formula!r}.")
    if not isinstance(REML, bool) and type(REML).__name__ != "bool_":
        raise TypeError(
            f"REML must be True or False; got {REML!r} ({type(REML).__name__}). "
            "A string such as 'FALSE' is not a logical here."
        )
    data, weights = with_column(data, weights, "weights")
    model = MixedLMRegressor(
        formula=formula,
        method="REML" if REML else "ML",
        weights=weights,
        na_action=r_na_action(na_action),
        **params,
    )
    return model.fit(data)


def r_na_action(na_action):
    """The estimator's ``na_action`` for R's name of it (``"omit"`` or ``"fail"``)."""
    actions = {"omit": "omit", "fail": "raise"}
    if na_action not in actions:
        raise ValueError(
            f"na_action must be 'omit' (R's na.omit, the default) or 'fail' (na.fail); got "
            f"{na_action!r}."
        )
    return actions[na_action]


def with_column(data, values, argument):
    """R's convention for ``weights`` and ``offset``: a column name of ``data``, or values
    (then put in a copy of ``data`` under R's own name, ``(weights)``)."""
    if values is None:
        return data, None
    if isinstance(values, str):
        if values not in data.columns:
            raise ValueError(f"{argument}: column {values!r} is not in data.")
        column = data[values]
        if column.dtype.kind not in "biuf":
            raise ValueError(
                f"{argument}: column {values!r} must be numeric; it has dtype {column.dtype}."
            )
        return data, values
    name = f"({argument})"
    values = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if values.ndim != 1 or values.shape[0] != len(data):
        raise ValueError(
            f"{argument} must have one value per row of data ({len(data)}); got shape "
            f"{values.shape}."
        )
    return data.assign(**{name: values}), name
