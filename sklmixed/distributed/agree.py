"""What the partitions agree on before any cross-product is formed.

A design fitted in memory learns from every row at once: the levels of each
categorical variable, each grouping factor's levels, which fixed-effect columns are
aliased. Here the rows are spread over partitions, so those are agreed in passes that
move only small summaries:

1. the distinct values of each variable the formula codes as a factor (only when
   there is one): a small *skeleton* frame holding each of them then fits the
   design's encodings exactly as the whole data would;
2. one pass of :class:`Moments`: each grouping factor's distinct labels (R's level
   order is then taken from them, as :func:`~sklmixed.design.levels.encode_levels`
   takes it from all rows), ``XᵀX`` and ``Xᵀy`` (the aliased columns and the
   least-squares offset of the :class:`~sklmixed.stats.ReductionPlan`) and the
   random-effect columns' sums of squares (its column scales).

Transforms that learn from the values of every row (``scale``, ``center``, ``poly``,
``factor`` of a numeric column) cannot be fitted on a skeleton and are refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..design.base import _by_factor
from ..design.checks import check_response
from ..design.formula import FormulaDesign
from ..design.formula.design import _columns_of, _layout
from ..design.formula.tokens import tokenize
from ..design.formula.transforms import Levels
from ..design.levels import encode_levels

__all__ = ["RESPONSE", "Moments", "coded_columns", "distinct_values", "skeleton", "rows_of"]

# The column a separately given response travels in, beside the features.
RESPONSE = "__sklmixed_response__"


def rows_of(part, design, y_column):
    """A partition's features and response, after the design's missing-value rule.

    Returns
    -------
    X : pandas.DataFrame
    y : ndarray of shape (n,) or None
        None when the design reads the response from X (a formula's left side).
    dropped : pandas.Index
        Labels of the rows left out for missing values (``na_action="omit"``).
    """
    y = None
    X = part
    if y_column is not None:
        y, X = part[y_column].to_numpy(dtype=float, na_value=np.nan), part.drop(columns=[y_column])
    X, y, _, _ = design._omit_missing(X, y, None, None)
    return X, y, design.na_dropped_


def response_of(design, X, y):
    """The checked response of a partition's rows (from X when the formula names it)."""
    if y is None:
        y = design._response(X)
        if y is None:
            raise ValueError(
                "This model requires y to be passed, but the target y is None: pass the "
                "response as a Dask Series, or use a formula whose left side names a column."
            )
    return check_response(y, X.shape[0])


# -- step 1: the categorical variables -----------------------------------------------


def coded_columns(design, dtypes) -> list:
    """Non-numeric columns the formula codes as factors (fixed part, bars' left sides,
    offsets): their distinct values must all reach the design's fit."""
    if not isinstance(design, FormulaDesign):
        return []  # column roles: features are numeric, groups are agreed in step 2
    layout = _layout(design.formula)
    used = dict.fromkeys(layout.fixed_columns + layout.offset_columns)
    for bar in layout.parsed.bars:
        used.update(dict.fromkeys(_columns_of(bar.terms)))
    return [c for c in used if c in dtypes.index and dtypes[c].kind not in "iufc"]


def distinct_values(part, columns) -> dict:
    """Distinct values of each column of a partition, in order of appearance."""
    return {c: pd.unique(np.asarray(part[c].dropna(), dtype=object)) for c in columns}


def merge_distinct(first: dict, second: dict) -> dict:
    """The distinct values of two sets of rows, in order of appearance."""
    return {c: pd.unique(np.concatenate([first[c], second[c]])) for c in first}


def skeleton(head, distinct: dict) -> pd.DataFrame:
    """A small frame holding the rows of ``head`` and every distinct value of the
    columns of ``distinct`` (dtypes as in ``head``), to fit the design's encodings on."""
    if head.shape[0] == 0:
        raise ValueError("The first partition of the Dask DataFrame has no rows.")
    n = max([head.shape[0], *(len(v) for v in distinct.values())])
    frame = head.iloc[np.resize(np.arange(head.shape[0]), n)].reset_index(drop=True)
    for column, values in distinct.items():
        dtype = head[column].dtype
        cycled = np.resize(values, n)
        if isinstance(dtype, pd.CategoricalDtype):
            frame[column] = pd.Categorical(cycled, dtype=dtype)
        else:
            frame[column] = pd.array(cycled, dtype=dtype) if dtype != object else cycled
    return frame


def refuse_learned_transforms(design, dtypes):
    """Refuse formula transforms whose fit reads every row's value (not a skeleton's)."""
    state = getattr(getattr(design, "terms_", None), "_state", None) or {}
    for key, value in state.items():
        names = [t.value for t in tokenize(key) if t.kind == "name" and t.value in dtypes.index]
        if isinstance(value, Levels) and not any(dtypes[c].kind in "iufc" for c in names):
            continue  # factor() of text columns: their distinct values were all agreed
        if value is None:
            continue  # poly(raw = TRUE): nothing learned
        raise ValueError(
            f"{key!r} learns from the values of every row (R's scale, center, poly, or the "
            "levels of a numeric column), which a fit on Dask partitions does not agree on. "
            "Compute the transformed column in the Dask DataFrame first (for factor(), "
            "convert the column with .astype('category') and .cat.as_known()), or fit "
            "in memory."
        )


# -- step 2: the moments -------------------------------------------------------------


@dataclass
class Moments:
    """Sums over rows that fix the reduction plan; additive over partitions (``a + b``).

    Attributes
    ----------
    n : int
        Rows.
    XtX, Xty : ndarray
        Cross-products of every fixed-effect column (before aliased ones are dropped)
        with each other and with ``y`` less its offset.
    y_min, y_max : float
        Range of the response (a constant one is refused).
    y_max_abs : float
        ``max |y|`` of the response less its offset (the exact-fit rule's scale).
    labels : dict of str to ndarray or pandas.Categorical
        Each grouping factor's distinct labels, in order of appearance.
    sumsq : dict of str to ndarray
        Each factor's random-effect columns' sums of squares.
    dropped : ndarray
        Labels of the rows left out for missing values.
    """

    n: int
    XtX: np.ndarray
    Xty: np.ndarray
    y_min: float
    y_max: float
    y_max_abs: float
    labels: dict = field(default_factory=dict)
    sumsq: dict = field(default_factory=dict)
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __add__(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        return Moments(
            n=self.n + other.n,
            XtX=self.XtX + other.XtX,
            Xty=self.Xty + other.Xty,
            y_min=min(self.y_min, other.y_min),
            y_max=max(self.y_max, other.y_max),
            y_max_abs=max(self.y_max_abs, other.y_max_abs),
            labels={k: _union(v, other.labels[k]) for k, v in self.labels.items()},
            sumsq={k: v + other.sumsq[k] for k, v in self.sumsq.items()},
            dropped=np.concatenate([self.dropped, other.dropped]),
        )


def partition_moments(part, design, y_column) -> Moments:
    """The :class:`Moments` of one partition (run on a worker)."""
    X, y, dropped = rows_of(part, design, y_column)
    dropped = np.asarray(dropped, dtype=object)
    if X.shape[0] == 0:
        return Moments(0, np.zeros((0, 0)), np.zeros(0), np.inf, -np.inf, 0.0, dropped=dropped)
    X_full, _, terms = design._read(X, None, fitting=False)
    y = response_of(design, X, y)
    offset = design._offset(X)
    target = y if offset is None else y - offset
    labels, sumsq = {}, {}
    for name, group in _by_factor(terms).items():
        labels[name] = _distinct_labels(group[0][1].labels)
        sumsq[name] = np.concatenate([np.einsum("ij,ij->j", t.Z, t.Z) for _, t in group])
    return Moments(
        n=X.shape[0],
        XtX=X_full.T @ X_full,
        Xty=X_full.T @ target,
        y_min=float(y.min()),
        y_max=float(y.max()),
        y_max_abs=float(np.abs(target).max()),
        labels=labels,
        sumsq=sumsq,
        dropped=dropped,
    )


def agreed_levels(labels, name) -> pd.Index:
    """R's levels of a grouping factor from its distinct labels (those of every row)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        return encode_levels(labels, name)[1]


def _distinct_labels(labels):
    if isinstance(labels, pd.Categorical):
        return labels.unique()
    return pd.unique(np.asarray(labels))


def _union(first, second):
    """Distinct labels of two partitions, in order of appearance."""
    if isinstance(first, pd.Categorical):
        values = np.concatenate([np.asarray(first, dtype=object), np.asarray(second, dtype=object)])
        return pd.Categorical(values, dtype=first.dtype).unique()
    return pd.unique(np.concatenate([first, second]))
