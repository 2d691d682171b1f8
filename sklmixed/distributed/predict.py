"""Predictions for a Dask DataFrame: a lazy Dask Series, one task per partition."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd

from ._dask import require_dask

__all__ = ["predict_series"]


def predict_series(model, X, groups=None, random_effects=None, return_std=False):
    """``model.predict`` of each partition of ``X``, lazily.

    Parameters
    ----------
    model : fitted estimator
        Sent to the workers once (a shared task), not once per partition.
    X : dask.dataframe.DataFrame
    groups : None
        Group labels must be columns of X.
    random_effects, return_std
        As for the model's ``predict``.

    Returns
    -------
    dask.dataframe.Series
        Partitioned and indexed as X; with ``return_std``, also the standard errors.
    """
    dask, dd = require_dask()
    if not isinstance(X, dd.DataFrame):
        raise TypeError(f"X must be a dask.dataframe.DataFrame; got {type(X).__name__}.")
    if groups is not None:
        raise ValueError(
            "groups= is not taken with a Dask DataFrame: keep the group labels in a column."
        )
    shared = dask.delayed(model if return_std else _slim(model), pure=True)
    if not return_std:
        return X.map_partitions(
            _predict_partition, shared, random_effects, meta=pd.Series(dtype=float, name="prediction")
        )
    both = X.map_partitions(
        _predict_partition_std, shared, random_effects,
        meta=pd.DataFrame({"prediction": pd.Series(dtype=float), "std": pd.Series(dtype=float)}),
    )  # fmt: skip
    return both["prediction"], both["std"]


def _slim(model):
    """The model without what only standard errors read (the fitted criterion and its
    statistics): what a mean prediction needs, to send to the workers."""
    slim = copy.copy(model)
    slim.result_ = replace(model.result_, fit=None, training_factors=())
    return slim


def _predict_partition(part, model, random_effects):
    if part.shape[0] == 0:
        return pd.Series(np.zeros(0), index=part.index, name="prediction")
    mean = model.predict(part, random_effects=random_effects)
    return pd.Series(mean, index=part.index, name="prediction")


def _predict_partition_std(part, model, random_effects):
    if part.shape[0] == 0:
        empty = np.zeros(0)
        return pd.DataFrame({"prediction": empty, "std": empty}, index=part.index)
    mean, std = model.predict(part, random_effects=random_effects, return_std=True)
    return pd.DataFrame({"prediction": mean, "std": std}, index=part.index)
