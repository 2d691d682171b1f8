"""Binomial and Poisson responses, read as lme4's ``glmer`` reads them.

Binomial (R's ``binomial()$initialize``):

- 0/1 numbers, or booleans (False is a failure);
- a two-level factor: the first level is the failure, as in R. A pandas Categorical
  keeps its order of categories; text is sorted, as R's ``factor()`` sorts it (and a
  warning says which level became the failure);
- proportions with the number of trials as ``weights``;
- ``cbind(successes, failures)``: the proportion ``s / (s + f)`` with ``s + f`` trials
  (times any ``weights``).

Poisson: non-negative counts (non-integer counts are fitted with a warning, as lme4
does). Every refusal names the column and says what would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import exceptions

__all__ = [
    "GLMMResponse",
    "raw_formula_response",
    "read_response",
    "separated_columns",
    "warn_degenerate",
]

# Successes and counts within this many machine epsilons of an integer count as one.
_INTEGER_TOL = 1e3 * np.finfo(float).eps


@dataclass(frozen=True)
class GLMMResponse:
    """A GLMM response as the fit reads it.

    Attributes
    ----------
    y : ndarray of shape (n,)
        Proportions of successes (binomial) or counts (Poisson).
    weights : ndarray of shape (n,) or None
        Prior weights: the trials of a binomial proportion (times the user's weights).
    levels : tuple or None
        ``(failure, success)`` labels of a two-level response; None otherwise.
    kind : str
        ``"0/1"``, ``"logical"``, ``"factor"``, ``"proportion"``, ``"cbind"`` or
        ``"counts"``.
    """

    y: np.ndarray
    weights: np.ndarray | None
    levels: tuple | None
    kind: str


def raw_formula_response(terms, data):
    """The left side of a fitted formula as it is: a column (text and Categoricals
    too), or the numbers of an expression (``cbind(...)``: two columns).

    Parameters
    ----------
    terms : FormulaTerms
    data : DataFrame
    """
    from .formula.columns import checked_column
    from .formula.syntax import Name

    node = terms.parsed.response_node
    if isinstance(node, Name) and node.name in data.columns:
        column = checked_column(data, node.name)
        if isinstance(column.dtype, pd.CategoricalDtype):
            return column.array
        return column.to_numpy()
    return terms.response_vector(data)


def read_response(family, values, n, name="y", weights=None) -> GLMMResponse:
    """Read and check a GLMM response.

    Parameters
    ----------
    family : {"binomial", "poisson"}
    values : array-like of shape (n,) or (n, 2), or pandas Categorical
    n : int
        Rows of the data.
    name : str
        The response's name in messages (a column, or the formula's left side).
    weights : ndarray of shape (n,), optional
        Checked prior weights (binomial proportions: the trials).

    Returns
    -------
    GLMMResponse

    Raises
    ------
    ValueError
        For a response the family cannot take, naming it and saying what it can.
    """
    if isinstance(values, pd.Series):
        values = values.array if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()
    if not isinstance(values, pd.Categorical):
        values = np.asarray(values)
    if values.shape[0] != n:
        raise ValueError(f"X has {n} rows but the response {name!r} has {values.shape[0]}.")
    if family == "binomial":
        return _binomial(values, name, weights)
    if family == "poisson":
        return _poisson(values, name, weights)
    raise ValueError(f"No response reader for family {family!r}.")


def _labels(values, name):
    """``(failure, success)`` and the 0/1 codes of a two-level factor or text."""
    if isinstance(values, pd.Categorical):
        present = pd.unique(values.codes)
        levels = [c for i, c in enumerate(values.categories) if i in set(present.tolist())]
        order_note = None
    else:
        series = pd.Series(values, dtype=object)
        if series.isna().any():
            raise ValueError(f"The response {name!r} has missing values.")
        levels = sorted(series.unique().tolist(), key=str)
        order_note = levels
    if len(levels) != 2:
        shown = ", ".join(repr(v) for v in levels[:6])
        raise ValueError(
            f"The binomial response {name!r} is a factor with {len(levels)} level(s) ({shown}); "
            "it needs exactly two (the first is the failure). Recode it to two levels, "
            "or fit a count with family='poisson'."
        )
    if order_note is not None:
        exceptions.warn(
            f"The response {name!r} has the levels {levels[0]!r} and {levels[1]!r}: as R's "
            f"factor(), they are sorted and the first, {levels[0]!r}, is the failure (0). "
            "Pass a pandas Categorical to choose the order."
        )
    y = (np.asarray(pd.Series(values, dtype=object)) == levels[1]).astype(float)
    return tuple(levels), y


def _finite_numbers(values, name):
    """A float view of numeric values, or an error naming the response."""
    if values.dtype.kind not in "biuf":
        raise ValueError(f"The response {name!r} must be numeric; it has dtype {values.dtype}.")
    y = values.astype(float)
    if not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y))
        raise ValueError(
            f"The response {name!r} has {bad.size} NaN or infinite value(s), first at row "
            f"{int(bad[0])}."
        )
    return y


def _non_integer(x):
    return np.abs(x - np.round(x)) > _INTEGER_TOL * np.maximum(1.0, np.abs(x))


def _binomial(values, name, weights):
    if isinstance(values, pd.Categorical) or values.dtype.kind in "OUS":
        levels, y = _labels(values, name)
        return GLMMResponse(y, weights, levels, "factor")
    if values.dtype.kind == "b" and values.ndim == 1:
        return GLMMResponse(values.astype(float), weights, (False, True), "logical")
    y = _finite_numbers(values, name)
    if y.ndim == 2:
        if y.shape[1] != 2:
            raise ValueError(
                f"The binomial response {name!r} has {y.shape[1]} columns; "
                "cbind(successes, failures) has two."
            )
        if (y < 0).any():
            raise ValueError(
                f"The binomial response {name!r}: successes and failures must be "
                f"non-negative; found {int((y < 0).any(axis=1).sum())} row(s) with a negative "
                "count."
            )
        trials = y.sum(axis=1)
        if (trials == 0).any():
            raise ValueError(
                f"The binomial response {name!r} has {int((trials == 0).sum())} row(s) with "
                "no trials (successes + failures = 0): leave them out."
            )
        if _non_integer(y).any():
            exceptions.warn(f"non-integer counts of successes or failures in {name!r}.")
        prior = trials if weights is None else trials * weights
        return GLMMResponse(y[:, 0] / trials, prior, None, "cbind")
    if y.ndim != 1:
        raise ValueError(f"The response {name!r} must be one column; got shape {y.shape}.")
    if (y < 0).any() or (y > 1).any():
        shown = ", ".join(f"{v:g}" for v in pd.unique(y[(y < 0) | (y > 1)])[:5])
        raise ValueError(
            f"The binomial response {name!r} has values outside [0, 1] ({shown}). It must "
            "be 0/1, logical, a two-level factor, a proportion with the trials as weights, "
            "or cbind(successes, failures) in a formula (counts of trials: family='poisson' "
            "for counts without a number of trials)."
        )
    binary = np.isin(y, (0.0, 1.0))
    if weights is None and not binary.all():
        raise ValueError(
            f"The binomial response {name!r} has values strictly between 0 and 1: a "
            "proportion needs the number of trials as weights (weights=...), or write "
            "cbind(successes, failures)."
        )
    if weights is not None and _non_integer(y * weights).any():
        exceptions.warn(f"non-integer #successes in the binomial response {name!r}.")
    kind = "0/1" if binary.all() else "proportion"
    return GLMMResponse(y, weights, (0, 1) if kind == "0/1" else None, kind)


def _poisson(values, name, weights):
    if isinstance(values, pd.Categorical) or values.dtype.kind in "OUS":
        raise ValueError(
            f"The Poisson response {name!r} is categorical or text; it must be counts "
            "(non-negative numbers)."
        )
    y = _finite_numbers(values, name)
    if y.ndim != 1:
        raise ValueError(
            f"The Poisson response {name!r} must be one column of counts; got shape {y.shape}."
        )
    if (y < 0).any():
        bad = np.flatnonzero(y < 0)
        raise ValueError(
            f"The Poisson response {name!r} has {bad.size} negative value(s) (first {y[bad[0]]:g} "
            f"at row {int(bad[0])}); counts are non-negative."
        )
    if _non_integer(y).any():
        exceptions.warn(
            f"The Poisson response {name!r} has non-integer values: fitted as counts, the "
            "log-likelihood uses lgamma(y + 1) (lme4 warns too)."
        )
    return GLMMResponse(y, weights, None, "counts")


# Separation is looked for on at most this many distinct rows of [X, outcome]: a
# linear program over them (factor designs have few). Beyond, the fit says so when
# fitted probabilities are numerically 0 or 1 (R's glm warning).
_MAX_SEPARATION_ROWS = 2_000


def warn_degenerate(arrays, family):
    """Warn about data whose maximum-likelihood fit runs to the edge.

    - A level of a grouping factor whose rows are all failures (all zero counts),
      or all successes: its mode is pulled to the extreme only the penalty stops.
      The fit stays finite; the warning names the factor and levels.
    - Perfect or quasi-complete separation by the fixed effects (binomial): a
      direction of β along which every row's outcome is predicted perfectly, so the
      likelihood rises without bound; the warning names the fixed effects involved,
      and the estimates along it are where the optimizer stopped (huge, with huge
      standard errors).

    Parameters
    ----------
    arrays : ModelArrays
        Checked arrays (``y`` proportions or counts, trials as ``weights``).
    family : {"binomial", "poisson"}
    """
    y = arrays.y
    w = np.ones_like(y) if arrays.weights is None else arrays.weights
    if arrays.frequency is not None:
        w = w * arrays.frequency
    successes, trials = y * w, w
    for factor in arrays.factors:
        m = factor.n_levels
        s = np.bincount(factor.codes, successes, minlength=m)
        t = np.bincount(factor.codes, trials, minlength=m)
        present = t > 0
        kinds = [("only zero counts" if family == "poisson" else "only failures", s <= 0)]
        if family == "binomial":
            kinds.append(("only successes", s >= t))
        for what, mask in kinds:
            mask = mask & present
            if mask.any():
                labels = [str(v) for v in np.asarray(factor.levels)[mask][:5]]
                more = ", ..." if mask.sum() > 5 else ""
                exceptions.warn(
                    f"Grouping factor {factor.name!r}: {int(mask.sum())} of {m} levels have "
                    f"{what} ({', '.join(labels)}{more}); their conditional modes sit at "
                    "the extreme the random-effect variance allows. The fit is finite."
                )
    if family == "binomial":
        columns = separated_columns(arrays.X, y, arrays.fixed_names)
        if columns:
            exceptions.warn(
                f"Perfect or quasi-complete separation: the fixed effects {columns} predict "
                "some outcomes exactly, so their maximum-likelihood estimates are infinite. "
                "The estimates shown are where the optimizer stopped (with huge standard "
                "errors); consider removing or merging the separating variables, or a "
                "penalized (Bayesian) fit."
            )


def separated_columns(X, y, names):
    """The fixed effects of a separating direction of β, or ``[]`` when there is none.

    β separates when ``xᵢβ ≥ 0`` for every row with successes only, ``xᵢβ ≤ 0`` for
    every row with failures only, ``xᵢβ = 0`` for rows with both, and not all ``xᵢβ``
    are 0: a linear program (Albert and Anderson 1984), solved on distinct rows.
    """
    from scipy.optimize import linprog

    p = X.shape[1]
    if p == 0:
        return []
    sign = np.where(y >= 1.0, 1.0, np.where(y <= 0.0, -1.0, 0.0))
    rows = np.unique(np.column_stack([X, sign]), axis=0)
    if rows.shape[0] > _MAX_SEPARATION_ROWS:
        return []
    Xs, s = rows[:, :p], rows[:, p]
    scale = np.maximum(np.abs(Xs).max(axis=0), 1e-300)
    Xs = Xs / scale
    one_sided, both = s != 0, s == 0
    A = -(Xs[one_sided] * s[one_sided, None])  # −sᵢxᵢβ ≤ 0
    res = linprog(
        c=A.sum(axis=0),  # maximize Σ sᵢxᵢβ
        A_ub=A if A.size else None,
        b_ub=np.zeros(A.shape[0]) if A.size else None,
        A_eq=Xs[both] if both.any() else None,
        b_eq=np.zeros(int(both.sum())) if both.any() else None,
        bounds=[(-1.0, 1.0)] * p,
        method="highs",
    )
    # The program's value is 0 without separation; 1e-7 of the rows' scale is far
    # above the solver's rounding and far below any real separating direction.
    if res.status != 0 or -res.fun <= 1e-7 * max(1.0, float(one_sided.sum())):
        return []
    direction = res.x
    return [str(n) for n, b in zip(names, direction) if abs(b) > 1e-6]
