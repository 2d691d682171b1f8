"""Levels of grouping factors: R's encoding at fit, the unseen-level policy at predict.

R turns a grouping variable into a factor with ``factor()``: levels sorted, numbers
compared through their printed form (15 significant digits, so ``0.1 + 0.2`` and
``0.3`` are one level), a character vector built from mixed numbers and strings (so
``1`` and ``"1"`` are one level). A pandas Categorical keeps its categories' order,
as an R factor keeps its levels' order. The same rules code new labels at predict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import exceptions

__all__ = ["UNSEEN_LEVEL_POLICIES", "encode_levels", "code_new_labels"]

# What predict does with a level never seen in fit.
UNSEEN_LEVEL_POLICIES = ("population", "warn", "error")


def encode_levels(labels, name):
    """Integer codes and levels of a column of group labels, as R's ``factor()``.

    Parameters
    ----------
    labels : ndarray or pandas.Categorical of shape (n,)
    name : str
        The factor's name, for error messages.

    Returns
    -------
    codes : ndarray of shape (n,), dtype intp
    levels : pandas.Index
    """
    if isinstance(labels, pd.Categorical):
        # A factor's levels keep their order, as in R; unused levels are dropped, as
        # lme4 does. The categorical's own codes say all of it (code -1: missing).
        codes = np.asarray(labels.codes, dtype=np.intp)
        if codes.size and codes.min() < 0:
            raise ValueError(f"Group column {name!r} has missing values (NaN or NA).")
        present = np.zeros(len(labels.categories), dtype=bool)
        present[codes] = True
        levels = labels.categories
        if not present.all():
            lookup = np.cumsum(present) - 1
            codes, levels = lookup[codes], levels[present]
        return codes, _checked_levels(levels, name)
    labels = np.asarray(labels)
    keys = _keys(labels, name)
    if keys.dtype.kind in "iu":
        # Integers over a compact range, the usual group ids: sorted levels from a
        # presence table, without factorize's hashing.
        encoded = _encode_compact_integers(keys)
        if encoded is not None:
            return encoded
    codes, levels = pd.factorize(keys, sort=True)
    if keys is not labels and labels.dtype == object and _by_printed_form(labels):
        # Shown by the first label of each level (1 and "1" are one level, shown as
        # whichever came first), compared by their printed form.
        first = np.empty(len(levels), dtype=np.intp)
        first[codes[::-1]] = np.arange(codes.size)[::-1]
        levels = pd.Index(labels[first], dtype=object)
    return codes.astype(np.intp), _checked_levels(levels, name)


def code_new_labels(labels, levels, name, policy="population"):
    """Codes of new labels against fitted ``levels``: -1 for a level never seen (or a
    missing label, which lme4 also predicts at the population level).

    Parameters
    ----------
    labels : ndarray or pandas.Categorical of shape (n,)
    levels : pandas.Index
        The levels seen in fit.
    name : str
        The factor's name, for messages.
    policy : {"population", "warn", "error"}
        What an unseen level means: the population-level prediction (silently, or
        with a warning), or an error.

    Returns
    -------
    ndarray of shape (n,), dtype intp

    Raises
    ------
    ValueError
        For unseen levels under ``policy="error"``; and when no
        label matches because the labels are of another type than the fitted ones
        (``"1"`` against ``1``).
    """
    if isinstance(labels, pd.Categorical):
        return _code_categorical(labels, levels, name, policy)
    labels = np.asarray(labels)
    missing = pd.isna(labels) if labels.dtype == object or labels.dtype.kind == "f" else None
    if missing is not None and missing.any():
        # A missing label is a group never seen (lme4's allow.new.levels).
        _apply_policy_to_missing(int(missing.sum()), name, policy)
        codes = np.full(labels.size, -1, dtype=np.intp)
        if (~missing).any():
            codes[~missing] = code_new_labels(labels[~missing], levels, name, policy)
        return codes
    printed = levels.dtype == object and _by_printed_form(np.asarray(levels, dtype=object))
    if printed:
        keys = _printed(labels, name)
        codes = pd.Index(_printed(np.asarray(levels, dtype=object), name)).get_indexer(keys)
    else:
        keys = _keys(labels, name)
        codes = levels.get_indexer(pd.Index(keys))
    codes = codes.astype(np.intp)
    unseen = codes < 0
    if not unseen.any():
        return codes
    if not printed and unseen.all() and len(labels) and _kind(levels) != _kind(pd.Index(keys)):
        raise ValueError(
            f"No label of group column {name!r} matches a level seen in fit: the fitted "
            f"levels are {_kind(levels)} ({_show(levels[:3])}), these labels are "
            f"{_kind(pd.Index(keys))} ({_show(pd.unique(keys)[:3])}). Convert them to the "
            "fitted type."
        )
    _apply_policy_to_unseen(pd.unique(labels[unseen]), int(unseen.sum()), name, policy)
    return codes


def _code_categorical(labels, levels, name, policy):
    """``code_new_labels`` of a pandas Categorical: each category used is coded once and
    the rows take their category's code (the same codes, messages and errors as for
    the labels themselves)."""
    row_codes = np.asarray(labels.codes, dtype=np.intp)
    missing = row_codes < 0
    if missing.any():
        _apply_policy_to_missing(int(missing.sum()), name, policy)
    used = np.zeros(len(labels.categories), dtype=bool)
    used[row_codes[~missing]] = True
    of_category = np.full(used.size, -1, dtype=np.intp)
    if used.any():
        categories = np.asarray(labels.categories[used], dtype=object)
        of_category[used] = code_new_labels(categories, levels, name, "population")
    codes = np.where(missing, -1, of_category[np.maximum(row_codes, 0)])
    unseen = (codes < 0) & ~missing
    if unseen.any():
        new = np.asarray(labels.categories, dtype=object)[used & (of_category < 0)]
        _apply_policy_to_unseen(new, int(unseen.sum()), name, policy)
    return codes


def _apply_policy_to_missing(n_missing, name, policy):
    """The unseen-level policy for missing labels (a group never seen, as in lme4)."""
    message = f"Group column {name!r} has {n_missing} missing label(s)"
    if policy == "error":
        raise ValueError(message + "; unseen_levels='error'.")
    if policy == "warn":
        exceptions.warn(message + ": they get the population-level prediction.")


def _apply_policy_to_unseen(new, n_rows, name, policy):
    """The unseen-level policy for the labels ``new`` (distinct) in ``n_rows`` rows."""
    if policy == "population":
        return
    message = (
        f"Group column {name!r} has {len(new)} level(s) not seen in fit ({_show(new[:5])}"
        f"{', ...' if len(new) > 5 else ''}) in {n_rows} row(s)"
    )
    if policy == "error":
        raise ValueError(
            message + "; unseen_levels='error'. Use unseen_levels='population' for the "
            "population-level prediction of new groups."
        )
    exceptions.warn(message + ": they get the population-level prediction (no random effect).")


def _keys(labels, name):
    """Labels in the form R's ``factor()`` compares them.

    Floats through their 15-significant-digit form (as R prints them); an object
    column of mixed types through its printed form (as R's ``c(1, "1")`` is
    character); strings, integers, booleans and dates as they are.
    """
    if labels.dtype.kind == "f":
        if np.isnan(labels).any():
            raise ValueError(f"Group column {name!r} has missing values (NaN or NA).")
        if np.isinf(labels).any():
            raise ValueError(
                f"Group column {name!r} has infinite values, which are not group labels."
            )
        return _round_15(labels)
    if labels.dtype != object:
        return labels
    if pd.isna(labels).any():
        raise ValueError(f"Group column {name!r} has missing values (NaN or NA).")
    kind = pd.api.types.infer_dtype(labels, skipna=False)
    if kind in ("floating", "mixed-integer-float", "decimal"):
        return _keys(labels.astype(float), name)
    if _by_printed_form(labels, kind):
        return _printed(labels, name)
    return labels


def _by_printed_form(labels, kind=None):
    """Whether an object column's labels are compared by their printed form (mixed types)."""
    kind = kind or pd.api.types.infer_dtype(labels, skipna=False)
    return kind not in (
        "string", "integer", "boolean", "empty", "floating", "mixed-integer-float", "decimal",
        "datetime", "datetime64", "date", "timedelta", "timedelta64", "period", "categorical",
    )  # fmt: skip


def _printed(labels, name):
    """Each label as R's ``as.character`` writes it (unhashable labels refused)."""
    for value in labels:
        _check_hashable(value, name)
    return np.array([_r_string(v) for v in labels], dtype=object)


def _round_15(values):
    """Floats rounded to the 15 significant digits R prints (on the distinct values)."""
    distinct = pd.unique(values)
    rounded = np.array([float(f"{v:.15g}") for v in distinct.tolist()])
    if np.array_equal(rounded, distinct):
        return values
    return rounded[pd.Index(distinct).get_indexer(values)]


def _check_hashable(value, name):
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"Group column {name!r} has a label that is neither a string nor a number "
            f"({type(value).__name__}): a group label argument must be a string or a number."
        ) from None


def _r_string(value):
    """A label as R's ``as.character`` writes it."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.15g}"
    return str(value)


def _kind(index):
    kind = index.inferred_type
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numbers"
    if kind == "string":
        return "strings"
    return kind


def _show(values):
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values)


def _checked_levels(levels, name):
    """The levels as an Index, refused when one is infinite."""
    levels = levels if isinstance(levels, pd.Index) else pd.Index(levels)
    if levels.inferred_type != "string" and _has_infinite(levels):
        raise ValueError(f"Group column {name!r} has infinite values, which are not group labels.")
    return levels


def _has_infinite(levels):
    values = np.asarray(levels)
    if values.dtype.kind == "f":
        return bool(np.isinf(values).any())
    if values.dtype == object:
        return any(isinstance(v, (float, np.floating)) and np.isinf(v) for v in values)
    return False


def _encode_compact_integers(labels):
    """``encode_levels`` of integer labels spanning at most a few times as many values as
    rows (the codes and levels ``pd.factorize(labels, sort=True)`` gives), else None."""
    if not labels.size:
        return None
    lo, hi = int(labels.min()), int(labels.max())
    span = hi - lo + 1
    if span > 4 * labels.size + 1024 or hi > np.iinfo(np.intp).max:
        return None
    offsets = np.subtract(labels, lo, dtype=np.intp, casting="unsafe")
    present = np.zeros(span, dtype=bool)
    present[offsets] = True
    positions = np.flatnonzero(present)
    lookup = np.empty(span, dtype=np.intp)
    lookup[positions] = np.arange(positions.size)
    return lookup[offsets], pd.Index((positions + lo).astype(labels.dtype))
