"""A binary classifier's labels as R's binomial response: failure first, then success."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

__all__ = ["encode_binary_labels"]


def encode_binary_labels(y):
    """``classes_`` and the 0/1 response of two labels.

    R codes a binomial factor response as "first level = failure": a pandas
    Categorical keeps its categories' order (those present in ``y``), any other
    labels are sorted (``0 < 1``, ``False < True``, ``"N" < "Y"``).

    Parameters
    ----------
    y : array-like of shape (n,)
        Two distinct labels; missing labels (None, NaN, NA) become NaN codes, which the
        design refuses or leaves out by its ``na_action``.

    Returns
    -------
    classes : ndarray of shape (2,)
    codes : ndarray of shape (n,), float
        1.0 where ``y == classes[1]``, 0.0 where ``y == classes[0]``, NaN where missing.
    """
    if y is None:
        raise ValueError("This classifier requires y to be passed, but the target y is None.")
    series = y if isinstance(y, pd.Series) else None
    if series is None and isinstance(y, pd.Categorical):
        series = pd.Series(y)
    if series is None:
        values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        if values.ndim == 2 and values.shape[1] == 1:
            values = column_or_1d(values, warn=True)  # scikit-learn's DataConversionWarning
        if values.ndim != 1:
            raise ValueError(f"y must be one column of labels; got shape {values.shape}.")
        series = pd.Series(values)
    missing = series.isna().to_numpy()
    present = series[~missing]
    if isinstance(series.dtype, pd.CategoricalDtype):
        seen = set(present.unique())
        classes = np.asarray([c for c in series.cat.categories if c in seen], dtype=object)
        if classes.size and all(isinstance(c, (int, np.integer)) for c in classes):
            classes = classes.astype(np.int64)
    else:
        labels = present.to_numpy()
        if labels.dtype.kind == "f" and labels.size and np.isinf(labels).any():
            raise ValueError("y has infinite values; a classifier's labels must be finite.")
        kind = type_of_target(labels) if labels.size else "unknown"
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type: y is {kind!r}; a binary classifier needs two distinct "
                "labels (numbers, booleans or strings). For proportions of successes use "
                "sklmixed.glmer with weights (the number of trials)."
            )
        classes = unique_labels(labels)
    if classes.size != 2:
        shown = ", ".join(repr(c.item() if isinstance(c, np.generic) else c) for c in classes[:5])
        raise ValueError(
            f"Only binary classification is supported: y has {classes.size} class(es) "
            f"({shown}); MixedLogisticRegression needs exactly two."
        )
    codes = np.where(missing, np.nan, (series.to_numpy(dtype=object) == classes[1]).astype(float))
    return classes, codes
