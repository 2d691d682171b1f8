"""Reading user data: DataFrames (pandas, polars, ...) and arrays, column by column."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .checks import numeric_values

__all__ = [
    "is_dataframe",
    "as_frame_or_array",
    "column_label",
    "label_column",
    "numeric_column",
    "prior_weight_column",
    "resolve_column",
    "unique_keys",
    "groups_columns",
    "groups_names",
]


def is_dataframe(X):
    """Whether ``X`` is a pandas, polars or other DataFrame (columns with names)."""
    return isinstance(X, pd.DataFrame) or (
        hasattr(X, "columns") and hasattr(X, "to_numpy") and not isinstance(X, np.ndarray)
    )


def as_frame_or_array(X, name="X"):
    """A pandas DataFrame or a 2-D ndarray view of ``X`` (polars and other frames converted)."""
    if isinstance(X, pd.DataFrame):
        return X
    if is_dataframe(X):
        # polars and other DataFrame libraries, without requiring pyarrow.
        return pd.DataFrame({col: np.asarray(X[col].to_numpy()) for col in X.columns})
    if isinstance(X, pd.Series):
        raise ValueError(
            f"{name} must be 2-D (a DataFrame or an array of shape (n, k)); got a Series."
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got an array of shape {arr.shape}. "
            "Reshape a single feature with X.reshape(-1, 1)."
        )
    return arr


def column_label(X, key):
    """The name a column is reported by: its name, or ``x<position>`` for arrays."""
    return str(key) if isinstance(X, pd.DataFrame) else f"x{key}"


def label_column(X, key):
    """Group labels of a column: a pandas Categorical stays one (its codes are the levels)."""
    if not isinstance(X, pd.DataFrame):
        return np.asarray(X[:, key])
    column = X[key]  # once: each X[key] builds a Series
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array
    return np.asarray(column.to_numpy())


def numeric_column(X, key):
    """A float64 column of X, or an error that names it and says what to do instead."""
    label = column_label(X, key)
    if isinstance(X, pd.DataFrame):
        column = X[key]
        return numeric_values(
            column.to_numpy(), label, isinstance(column.dtype, pd.CategoricalDtype)
        )
    return numeric_values(X[:, key], label)


def prior_weight_column(X, key, argument="weights"):
    """The values of the prior-weight (or offset) column ``key`` of X (checked by the caller)."""
    key = resolve_column(X, key, argument)
    return X[key].to_numpy() if isinstance(X, pd.DataFrame) else X[:, key]


def resolve_column(X, key, argument):
    """Check that ``key`` names a column of X and return the key to index X with."""
    if isinstance(X, pd.DataFrame):
        if key not in X.columns:
            raise ValueError(
                f"{argument}: column {key!r} is not in X (columns: {list(X.columns)})."
            )
        return key
    if not isinstance(key, numbers.Integral) or isinstance(key, bool):
        raise ValueError(
            f"{argument}: X is an array, so columns are given by integer position; got {key!r}."
        )
    if not -X.shape[1] <= key < X.shape[1]:
        raise ValueError(
            f"{argument}: column position {key} is out of range for X with n_features={X.shape[1]}."
        )
    return int(key) % X.shape[1]


def unique_keys(keys, argument):
    """``keys`` unchanged, or an error naming the column listed twice."""
    seen = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{argument}: column {key!r} is listed more than once.")
        seen.add(key)
    return keys


def groups_columns(groups):
    """The columns of a ``groups=`` argument (1-D, 2-D, Series or DataFrame)."""
    if isinstance(groups, pd.DataFrame):
        return [label_column(groups, c) for c in groups.columns]
    if isinstance(groups, pd.Series):
        if isinstance(groups.dtype, pd.CategoricalDtype):
            return [groups.array]
        return [groups.to_numpy()]
    if hasattr(groups, "columns") and hasattr(groups, "to_numpy"):
        return [np.asarray(groups[c].to_numpy()) for c in groups.columns]
    arr = np.asarray(groups)
    if arr.ndim == 1:
        return [arr]
    if arr.ndim == 2:
        return [arr[:, j] for j in range(arr.shape[1])]
    raise ValueError(f"groups must be 1-D or 2-D; got shape {arr.shape}.")


def groups_names(groups):
    """Factor names of a ``groups=`` argument: its column or Series names, else ``group``."""
    if isinstance(groups, pd.DataFrame) or (
        hasattr(groups, "columns") and not isinstance(groups, np.ndarray)
    ):
        return [str(c) for c in groups.columns]
    name = getattr(groups, "name", None)  # a pandas or polars Series (polars' default: "")
    if not isinstance(groups, np.ndarray) and name is not None and name != "":
        return [str(name)]
    arr = np.asarray(groups)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return [f"group{j}" for j in range(arr.shape[1])]
    return ["group"]
