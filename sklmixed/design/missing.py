"""Rows with missing values: R's ``na.action``, for the variables a model uses.

lme4 builds its model frame with ``na.omit`` by default: a row missing any variable the
formula (or the weights) uses is dropped, and the fit says how many. Only those
variables count: a missing value in a column the model does not read drops nothing.
The estimators keep scikit-learn's default and refuse missing values unless asked
(``na_action="omit"``); :func:`sklmixed.lmer` follows R and omits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NA_ACTIONS", "missing_rows", "take_rows", "dropped_labels"]

# What fit does with a row missing a variable the model uses.
NA_ACTIONS = ("raise", "omit")


def missing_rows(columns, n):
    """Boolean mask of the rows where any of ``columns`` is missing (NaN, None, NA, NaT).

    Parameters
    ----------
    columns : iterable of array-like of shape (n,)
    n : int
        Number of rows.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    mask = np.zeros(n, dtype=bool)
    for values in columns:
        if values is None:
            continue
        values = values.to_numpy() if hasattr(values, "to_numpy") else values
        values = np.asarray(values) if not isinstance(values, pd.Categorical) else values
        if isinstance(values, np.ndarray) and values.dtype.kind in "biu":
            continue  # integers and booleans cannot be missing
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            missing = np.isnan(values)
        else:
            missing = np.asarray(pd.isna(values), dtype=bool)
        mask |= missing.reshape(n, -1).any(axis=1) if missing.ndim > 1 else missing
    return mask


def take_rows(values, keep):
    """The rows ``keep`` (a boolean mask) of a DataFrame, Series, array or None (a new object)."""
    if values is None:
        return None
    if isinstance(values, (pd.DataFrame, pd.Series)):
        return values.iloc[keep]
    if hasattr(values, "filter") and hasattr(values, "columns"):  # a polars DataFrame
        return values.filter(keep)
    if hasattr(values, "filter") and hasattr(values, "to_numpy"):  # a polars Series
        return values.filter(keep)
    return np.asarray(values)[keep]


def dropped_labels(X, dropped):
    """What R's ``na.action`` records: the row labels (a DataFrame's index) or positions."""
    positions = np.flatnonzero(dropped)
    if isinstance(X, pd.DataFrame):
        return X.index[positions]
    return pd.Index(positions)
