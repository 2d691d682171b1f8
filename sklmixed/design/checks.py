"""Every check of the data, in one place.

Each check raises a ``ValueError`` (or warns) with a message that names the column or
argument and says what to do, before any numerical work: a traceback from deep inside
numpy, or a silently wrong fit, is never the answer to bad input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, column_or_1d

from .. import exceptions

__all__ = [
    "MAX_MAGNITUDE",
    "as_float_array",
    "check_weights",
    "check_frequency_weights",
    "check_offset",
    "check_response",
    "check_response_varies",
    "check_exposure",
    "check_rows_for_fixed_effects",
    "check_level_counts",
    "check_residual_variation",
    "numeric_values",
    "drop_aliased_columns",
    "warn_collinear_random_columns",
]

# Largest magnitude of data: squares and their sums over many rows stay finite in float64.
MAX_MAGNITUDE = 1e150


def as_float_array(values, name):
    """``values`` as a float ndarray; pandas NA becomes NaN (refused by the caller, by name)."""
    values = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if values.dtype.kind == "O":
        values = np.where(pd.isna(values), np.nan, values)
    try:
        if values.dtype.kind not in "biufO":
            raise TypeError
        return values.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric; got values of dtype {values.dtype}.") from None


def check_weights(weights, n, name="weights"):
    """Prior weights as a float array of shape ``(n,)``, finite and positive, or None."""
    if weights is None:
        return None
    if isinstance(weights, str):
        raise ValueError(
            f"{name} must be numbers, one per row; got the string {weights!r} (to use a "
            "column of the data as weights, pass the column itself)."
        )
    w = as_float_array(weights, name)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got {w.shape}.")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(
            f"{name} must be finite and strictly positive: prior weights give row i "
            "the residual variance sigma^2/w_i, undefined for a zero weight (to leave "
            "rows out, give them a sample_weight of 0)."
        )
    return w


def check_offset(offset, n, name="offset"):
    """An offset as a finite float array of shape ``(n,)``."""
    o = as_float_array(offset, f"offset (column {name!r})")
    if o.ndim != 1 or o.shape[0] != n:
        raise ValueError(f"offset (column {name!r}) must have shape ({n},); got {o.shape}.")
    if not np.isfinite(o).all():
        bad = np.flatnonzero(~np.isfinite(o))
        raise ValueError(
            f"offset (column {name!r}) has {bad.size} NaN or infinite value(s), first at row "
            f"{int(bad[0])} (log(0) of a zero exposure?)."
        )
    return o


def check_frequency_weights(weights, n, name="sample_weight"):
    """Frequency weights (scikit-learn's ``sample_weight``) as a float array, or None.

    Finite and non-negative, not all zero; a weight of 0 leaves its row out.
    """
    if weights is None:
        return None
    w = as_float_array(weights, name)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(
            f"{name} must be finite and non-negative: a weight of k counts its row k times."
        )
    if not (w > 0).any():
        raise ValueError(
            f"{name}: sample weights must contain at least one non-zero number (every "
            "weight is zero, so there is nothing to fit)."
        )
    return w


def check_response(y, n, name="y"):
    """The response as a finite float array of shape ``(n,)``."""
    y = as_float_array(y, name)
    if not (y.ndim == 1 and y.size and np.isfinite(y).all()):
        # Only a y that fails these checks needs scikit-learn's, for their messages.
        y = column_or_1d(
            check_array(y, ensure_2d=False, dtype=np.float64, input_name=name), warn=True
        )
    if y.shape[0] != n:
        raise ValueError(f"X has {n} rows but {name} has {y.shape[0]}.")
    top = float(np.abs(y).max())
    if top > MAX_MAGNITUDE:
        raise ValueError(
            f"{name} has values up to {top:.3g}, beyond {MAX_MAGNITUDE:.0e}: their squares "
            f"overflow float64. Rescale {name}."
        )
    return y


def check_exposure(values, name):
    """``log(values)``: an exposure column, finite and strictly positive."""
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(
            f"exposure (column {name!r}) must be finite and strictly positive: the model "
            "takes log(exposure) as its offset."
        )
    return np.log(values)


def check_response_varies(y, name="y"):
    """Refuse a constant response: there is no variation to model."""
    if y.max() == y.min():
        raise ValueError(
            f"{name} is constant (every value is {y[0]:g}): there is no variation to model."
        )


def check_rows_for_fixed_effects(n, p):
    """Refuse fewer rows than needed to estimate a residual variance."""
    if n <= p:
        raise ValueError(
            f"Found n_samples={n} for {p} fixed effect(s): estimating the residual "
            "variance needs more observations than fixed effects."
        )


def check_level_counts(name, n_levels, n_obs, block_size=1, per_observation_ok=False):
    """lme4's three refusals: a variance needs at least two levels and some replication
    (``per_observation_ok``: a GLMM's, which lme4's glmer lets have a level per row)."""
    if n_levels < 2:
        raise ValueError(
            f"Grouping factor {name!r} has {n_levels} level; a random effect needs at least 2."
        )
    if per_observation_ok:
        return
    if n_levels >= n_obs:
        raise ValueError(
            f"Grouping factor {name!r} has as many levels ({n_levels}) as observations "
            f"({n_obs}): its variance cannot be told apart from the residual variance."
        )
    if n_levels * block_size >= n_obs:
        raise ValueError(
            f"Grouping factor {name!r} has {n_levels} levels x {block_size} correlated random "
            f"effects = {n_levels * block_size}, not fewer than the {n_obs} observations: the "
            "random-effects parameters and the residual variance are unidentifiable (lme4 "
            "refuses this too)."
        )


def check_residual_variation(stats, names):
    """Refuse a y the fixed part fits without residual; warn when it fits it exactly.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of the offset residuals (y less its least-squares fit on X).
    names : sequence of str
        Fixed-effect names, for the messages.
    """
    rms = float(np.sqrt(stats.resid_sumsq / stats.n_obs))
    if rms < 1.0 / MAX_MAGNITUDE:
        raise ValueError(
            f"y has no residual variation (root mean square {rms:.3g} after the fixed "
            f"effects {list(names)}): y is constant or an exact linear function of the fixed "
            "effects, or too small to square; the residual variance would be zero and the "
            "likelihood infinite."
        )
    if stats.plan.exact_fit:
        exceptions.warn(
            f"y is an exact linear function of the fixed effects {list(names)} up to rounding "
            f"(residual root mean square {rms:.3g}): sigma_ is about 0 and the "
            "log-likelihood measures rounding errors."
        )


def numeric_values(values, label, categorical=False):
    """A float64 column from its values, or an error that names it and says what to do.

    Parameters
    ----------
    values : ndarray or pandas ExtensionArray
    label : str
        The column's name for messages.
    categorical : bool
        Whether the column is a pandas Categorical (refused: categories are labels).
    """
    if categorical:
        # Categories are labels even when they look like numbers: never a silent trend.
        raise ValueError(
            f"Column {label!r} is categorical, not numeric. Encode it first (e.g. "
            "sklearn.preprocessing.OneHotEncoder in a ColumnTransformer) or use the "
            "formula interface, which codes categorical variables."
        )
    if isinstance(values, pd.api.extensions.ExtensionArray) or values.dtype == object:
        series = pd.Series(values)
        if series.isna().any():
            raise ValueError(
                f"Column {label!r} has {int(series.isna().sum())} missing value(s) (NaN or "
                f"NA), first at row {int(np.flatnonzero(series.isna().to_numpy())[0])}."
            )
        numbers = pd.to_numeric(series, errors="coerce")
        stray = numbers.isna().to_numpy() | series.map(_is_bool).to_numpy(dtype=bool)
        if stray.any():
            rows = np.flatnonzero(stray)
            shown = ", ".join(repr(v) for v in pd.unique(series.to_numpy()[rows])[:5])
            raise ValueError(
                f"Column {label!r} (dtype {values.dtype}) is not numeric: {int(stray.sum())} "
                f"value(s) such as {shown} at row(s) {', '.join(map(str, rows[:5]))}"
                f"{', ...' if rows.size > 5 else ''} are not numbers. Convert them (or drop "
                "those rows); if the column is categorical, encode it (e.g. "
                "sklearn.preprocessing.OneHotEncoder) or use the formula interface."
            )
        values = numbers.to_numpy(dtype=float)
    elif values.dtype.kind not in "biuf":  # text, complex, datetime, timedelta
        raise ValueError(
            f"Column {label!r} (dtype {values.dtype}) is not numeric. Encode it first (e.g. "
            "sklearn.preprocessing.OneHotEncoder) or use the formula interface."
        )
    values = np.asarray(values, dtype=float)
    # One pass for the usual column: NaN propagates through min and max (and fails the
    # comparison); only a failing column gets the two checks that tell which error.
    if values.size and -values.min() <= MAX_MAGNITUDE and values.max() <= MAX_MAGNITUDE:
        return values
    if not np.isfinite(values).all():
        raise ValueError(f"Column {label!r} has NaN or infinite values.")
    top = np.abs(values).max(initial=0.0)
    if top > MAX_MAGNITUDE:
        raise ValueError(
            f"Column {label!r} has values up to {top:.3g}, beyond {MAX_MAGNITUDE:.0e}: their "
            "squares overflow float64. Rescale it (e.g. sklearn.preprocessing.StandardScaler)."
        )
    return values


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def drop_aliased_columns(X, names, tol=1e-7, warn=True, gram=None):
    """Columns of X to keep: each dropped one is a linear combination of earlier ones.

    Mirrors lme4, which keeps a column unless its part orthogonal to the columns
    before it is below ``tol`` times its norm (R's ``qr(X, tol = 1e-7)``), and warns.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    names : sequence of str
        Column names, for the warning.
    tol : float, default=1e-7
    warn : bool, default=True
        Warn when columns are dropped.
    gram : ndarray of shape (p, p), optional
        ``X.T @ X``, when the caller has it.

    Returns
    -------
    keep : ndarray of int
        Positions of the kept columns, in their original order.
    """
    p = X.shape[1]
    if p == 0:
        return np.arange(0)
    if gram is None:
        gram = X.T @ X
    # Screen with the Cholesky factor L of the Gram matrix: L_jj / ||x_j|| is the share
    # of column j orthogonal to the columns before it. Cheap, and decisive whenever
    # every column keeps far more than `tol` of its norm (1e-4 against 1e-7: a margin
    # no rounding of the Gram matrix can cross).
    col_norms = np.sqrt(gram.diagonal())
    if col_norms.min() > 0:
        try:
            if (np.linalg.cholesky(gram).diagonal() / col_norms).min() > 1e-4:
                return np.arange(p)
        except np.linalg.LinAlgError:
            pass
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale = np.where(norms > 0, norms, 1.0)
    # Exact greedy Gram-Schmidt (twice, for orthogonality) in column order.
    basis, keep = [], []
    for j in range(p):
        v = X[:, j] / scale[j]
        for _ in range(2):
            for b in basis:
                v = v - (b @ v) * b
        residual = np.sqrt(v @ v)
        if norms[j] > 0 and residual > tol:
            basis.append(v / residual)
            keep.append(j)
    dropped = [names[j] for j in range(p) if j not in keep]
    if dropped and warn:
        exceptions.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column(s): {dropped} (each is a linear combination of the columns before it)."
        )
    return np.asarray(keep, dtype=np.intp)


def warn_collinear_random_columns(factor):
    """Warn when a factor's random-effect columns are linearly dependent (lme4 is silent).

    ``(x + x2 | g)`` with ``x2 = 2 x`` fits, but only the covariance of the identifiable
    combinations is estimated; the reported covariance of the columns is one of many
    with the same likelihood, which is not what anyone wants to read.
    """
    keep = drop_aliased_columns(factor.columns, factor.column_names, warn=False)
    if keep.size == len(factor.column_names):  # the usual case
        return
    keep = set(keep.tolist())
    collinear = [n for j, n in enumerate(factor.column_names) if j not in keep]
    exceptions.warn(
        f"random-effect columns {collinear} of grouping factor {factor.name!r} are linear "
        "combinations of the columns before them: their variances and correlations are "
        "not identifiable (the likelihood only sees the covariance of independent "
        "combinations). Drop them from random_effects."
    )
