"""Per-partition work on the workers, and the tree reduction of its additive results."""

from __future__ import annotations

import functools
import operator

import numpy as np

from ..design.checks import check_weights
from ..design.frames import prior_weight_column
from ..prediction import linear_predictor
from ..stats import partial_stats
from ._dask import require_dask
from .agree import response_of, rows_of

__all__ = ["tree_sum", "per_partition", "partition_stats", "partition_scaled_residuals"]

# Partial results summed per task of the tree: few enough that one task's inputs stay
# small, enough that the tree is shallow (50 partitions: two levels).
SPLIT_EVERY = 8


def per_partition(ddf, function, *args):
    """``function(partition, *args)`` as one delayed task per partition of ``ddf``
    (``args`` sent once, as delayed objects, rather than embedded in every task)."""
    dask, _ = require_dask()
    shared = [dask.delayed(a, pure=True) for a in args]
    task = dask.delayed(function, pure=True)
    return [task(part, *shared) for part in ddf.to_delayed()]


def tree_sum(items, split_every=SPLIT_EVERY):
    """The sum of delayed additive objects, ``split_every`` at a time per task (a tree:
    no task holds more than a few partial results)."""
    dask, _ = require_dask()
    add = dask.delayed(_sum, pure=True)
    items = list(items)
    while len(items) > 1:
        items = [add(*items[i : i + split_every]) for i in range(0, len(items), split_every)]
    return items[0]


def _sum(*items):
    return functools.reduce(operator.add, items)


def _arrays_of(part, design, y_column):
    """A partition's model arrays coded with the agreed levels, response included."""
    X, y, _ = rows_of(part, design, y_column)
    if X.shape[0] == 0:
        return None
    arrays = design.transform(X)
    y = response_of(design, X, y)
    weights = None
    if design.weights is not None:
        weights = check_weights(
            prior_weight_column(X, design.weights), X.shape[0], f"weights (column {design.weights!r})"
        )
    return arrays.replace(y=y, weights=weights)


def partition_stats(part, design, y_column, layout):
    """:func:`~sklmixed.stats.partial_stats` of one partition under the agreed plan
    (run on a worker); None for a partition left without rows."""
    arrays = _arrays_of(part, design, y_column)
    if arrays is None:
        return _Nothing()
    y = arrays.y if arrays.offset is None else arrays.y - arrays.offset
    resid = y - arrays.X @ layout.offset if arrays.X.shape[1] else y
    return partial_stats(arrays, layout, resid, arrays.weights, None)


def partition_scaled_residuals(part, design, y_column, beta, modes, sigma):
    """Residuals times the square root of the prior weights, over σ, of one partition
    (what lme4's summary shows)."""
    arrays = _arrays_of(part, design, y_column)
    if arrays is None:
        return np.zeros(0)
    fitted = linear_predictor(arrays.X, beta, arrays.factors, modes, arrays.offset)
    resid = arrays.y - fitted
    if arrays.weights is not None:
        resid = resid * np.sqrt(arrays.weights)
    return resid / sigma


class _Nothing:
    """The statistics of no rows: the identity of ``+``."""

    def __add__(self, other):
        return other

    def __radd__(self, other):
        return other
