"""From user input (array or DataFrame, column specs, ``groups=``) to model arrays.

:class:`ArrayDesign` is fitted once on the training X, remembers which columns play
which role and the names to report, and rebuilds the same arrays from new X at
predict time. :class:`~sklmixed._formula.FormulaDesign` does the same from an lme4
formula; both produce :class:`ModelArrays`, which is all the estimator fits from.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ArrayDesign",
    "FactorArrays",
    "ModelArrays",
    "as_frame_or_array",
    "is_dataframe",
    "encode_levels",
    "merge_bars",
    "drop_aliased_columns",
]

INTERCEPT = "(Intercept)"
# Largest magnitude of data: squares and their sums over many rows stay finite in float64.
MAX_MAGNITUDE = 1e150


@dataclass(frozen=True)
class FactorArrays:
    """One grouping factor evaluated on data.

    Attributes
    ----------
    name : str
        The factor's name as lme4 prints it (``"school"``, ``"cask:batch"``).
    labels : ndarray of shape (n,)
        Group label of each row.
    columns : ndarray of shape (n, q)
        Random-effect model columns.
    column_names : tuple of str
        Their names (``"(Intercept)"``, ``"standLRT"``).
    blocks : tuple of tuple of int
        Correlated blocks of columns (one block: unstructured; singletons: diagonal).
    """

    name: str
    labels: np.ndarray
    columns: np.ndarray
    column_names: tuple
    blocks: tuple


@dataclass(frozen=True)
class ModelArrays:
    """Numeric arrays of a model: the fixed part and every grouping factor."""

    X: np.ndarray
    fixed_names: tuple
    factors: tuple


def merge_bars(bars) -> tuple:
    """Merge random-effect terms on the same grouping factor into one factor.

    lme4 keeps ``(1 | g) + (0 + x | g)`` as two terms on ``g``; here they become one
    factor whose relative covariance factor is block diagonal, which is the same
    model with one pass over ``g``'s levels instead of two.

    Parameters
    ----------
    bars : sequence of FactorArrays
        One per term, each a single correlated block.

    Returns
    -------
    tuple of FactorArrays
    """
    merged: dict[str, list] = {}
    for bar in bars:
        merged.setdefault(bar.name, []).append(bar)
    factors = []
    for name, group in merged.items():
        blocks, start = [], 0
        for bar in group:
            blocks.extend(tuple(start + i for i in block) for block in bar.blocks)
            start += bar.columns.shape[1]
        # One contiguous bar: its own columns (never written to), which column_stack would
        # copy as they are.
        columns = group[0].columns
        if len(group) > 1 or not (columns.flags.c_contiguous or columns.flags.f_contiguous):
            columns = np.column_stack([bar.columns for bar in group])
        factors.append(
            FactorArrays(
                name=name,
                labels=group[0].labels,
                columns=columns,
                column_names=sum((tuple(bar.column_names) for bar in group), ()),
                blocks=tuple(blocks),
            )
        )
    return tuple(factors)


def encode_levels(labels, name):
    """Integer codes and levels of a column of group labels.

    Levels are sorted as R sorts a factor's levels when it can be, else kept in
    order of appearance (labels of mixed types); a pandas Categorical keeps its
    categories' order, as an R factor keeps its levels' order.
    """
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        # Integers (no missing values, no infinities) over a compact range, the usual
        # group ids: sorted levels from a presence table, twice as fast as factorize.
        encoded = _encode_compact_integers(labels)
        if encoded is not None:
            return encoded
    if isinstance(labels, pd.Categorical):
        # A factor's levels keep their order, as in R; unused levels are dropped, as
        # lme4 does. The categorical's own codes say all of it (code -1: missing).
        codes = np.asarray(labels.codes, dtype=np.intp)
        if codes.size and codes.min() < 0:
            raise ValueError(f"Group column {name!r} has missing values (NaN or NA).")
        present = np.zeros(len(labels.categories), dtype=bool)
        present[codes] = True
        levels = labels.categories  # an immutable Index, shared as it is
        if not present.all():
            lookup = np.cumsum(present) - 1
            codes, levels = lookup[codes], levels[present]
        return codes, _checked_levels(levels, name)
    if pd.isna(labels).any():
        raise ValueError(f"Group column {name!r} has missing values (NaN or NA).")
    try:
        codes, levels = pd.factorize(labels, sort=True)
    except TypeError:
        try:
            codes, levels = pd.factorize(labels, sort=False)
        except TypeError as exc:  # an unhashable label such as a dict or a list
            raise TypeError(
                f"Group column {name!r} has a label that is neither a string nor a "
                f"number ({exc}): a group label argument must be a string or a number."
            ) from None
    return codes.astype(np.intp), _checked_levels(levels, name)


def _checked_levels(levels, name):
    """The levels as an Index, refused when one is infinite (checked on the levels, not
    the rows: at most a Python loop over few values)."""
    levels = levels if isinstance(levels, pd.Index) else pd.Index(levels)
    if levels.inferred_type != "string" and _has_infinite(levels):
        raise ValueError(f"Group column {name!r} has infinite values, which are not group labels.")
    return levels


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


def _has_infinite(labels):
    """Whether a column of labels holds a float +/-inf (NaN is caught as missing before)."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        return bool(np.isinf(labels).any())
    if labels.dtype == object:
        return any(isinstance(v, (float, np.floating)) and np.isinf(v) for v in labels)
    return False


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


def _column_label(X, key):
    return str(key) if isinstance(X, pd.DataFrame) else f"x{key}"


def _label_column(X, key):
    """Group labels of a column: a pandas Categorical stays one (its codes are the levels)."""
    if not isinstance(X, pd.DataFrame):
        return np.asarray(X[:, key])
    column = X[key]  # once: each X[key] builds a Series
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array
    return np.asarray(column.to_numpy())


def _numeric_column(X, key):
    """A float64 column, or an error that names it and says what to do instead."""
    label = _column_label(X, key)
    if isinstance(X, pd.DataFrame):
        column = X[key]  # once: each X[key] builds a Series
        categorical = isinstance(column.dtype, pd.CategoricalDtype)
        values = column.to_numpy()
    else:
        categorical, values = False, X[:, key]
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
            raise ValueError(f"Column {label!r} has missing values (NaN or NA).")
        try:
            values = series.astype(float).to_numpy()
        except (TypeError, ValueError):
            raise ValueError(
                f"Column {label!r} is not numeric. Encode it first (e.g. "
                "sklearn.preprocessing.OneHotEncoder in a ColumnTransformer) or use the "
                "formula interface, which codes categorical variables."
            ) from None
    elif values.dtype.kind not in "biuf":  # text, complex, datetime, timedelta
        raise ValueError(
            f"Column {label!r} is not numeric. Encode it first (e.g. "
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


def _resolve(X, key, argument):
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


def _unique(keys, argument):
    """``keys`` unchanged, or an error naming the column listed twice."""
    seen = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{argument}: column {key!r} is listed more than once.")
        seen.add(key)
    return keys


class ArrayDesign:
    """Column roles for the array/DataFrame interface, fitted on training data.

    Parameters
    ----------
    group, random_effects, fixed_effects, random_intercept, fit_intercept, covariance
        As for :class:`~sklmixed.MixedLMRegressor`.
    """

    def __init__(
        self, *, group, random_effects, fixed_effects, random_intercept, fit_intercept, covariance
    ):
        self.group = group
        self.random_effects = random_effects
        self.fixed_effects = fixed_effects
        self.random_intercept = random_intercept
        self.fit_intercept = fit_intercept
        self.covariance = covariance

    def fit(self, X, groups=None):
        """Resolve column roles on the training X and ``groups``; returns self."""
        group_keys = (
            []
            if self.group is None
            else (list(self.group) if isinstance(self.group, (list, tuple)) else [self.group])
        )
        if group_keys and groups is not None:
            raise ValueError(
                "Group labels were given twice: as the `group` column(s) of X and as "
                "`groups=`. Use one of them."
            )
        self.group_keys_ = _unique([_resolve(X, key, "group") for key in group_keys], "group")
        if groups is not None:
            self.factor_names_ = _groups_names(groups)
        else:
            self.factor_names_ = [
                _column_label(X, key) if isinstance(X, pd.DataFrame) else f"x{key}"
                for key in self.group_keys_
            ]
        n_cols = X.shape[1]
        all_keys = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(n_cols))
        if self.fixed_effects is None:
            self.fixed_keys_ = [k for k in all_keys if k not in self.group_keys_]
        else:
            self.fixed_keys_ = _unique(
                [_resolve(X, key, "fixed_effects") for key in self.fixed_effects], "fixed_effects"
            )
            clash = [k for k in self.fixed_keys_ if k in self.group_keys_]
            if clash:
                raise ValueError(f"fixed_effects: {clash} are group columns.")
        self.fixed_names_ = ((INTERCEPT,) if self.fit_intercept else ()) + tuple(
            _column_label(X, k) for k in self.fixed_keys_
        )
        self.random_keys_ = self._random_keys(X)
        for name, keys in zip(self.factor_names_, self.random_keys_):
            if not keys and not self.random_intercept:
                raise ValueError(
                    f"Grouping factor {name!r} has no random effects: random_intercept=False "
                    "and no random_effects columns for it."
                )
        return self

    def _random_keys(self, X):
        spec = self.random_effects
        if spec is None:
            return [[] for _ in self.factor_names_]
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in self.factor_names_ and k not in self.group_keys_]
            if unknown:
                raise ValueError(
                    f"random_effects: {unknown} are not grouping factors (factors: {self.factor_names_})."
                )
            per_factor = []
            for name, key in zip(self.factor_names_, self.group_keys_ or self.factor_names_):
                cols = spec.get(name, spec.get(key, []))
                keys = _unique([_resolve(X, c, "random_effects") for c in cols], "random_effects")
                if any(k in self.group_keys_ for k in keys):
                    raise ValueError(f"random_effects: {cols} for {name!r} include a group column.")
                per_factor.append(keys)
            return per_factor
        keys = _unique([_resolve(X, c, "random_effects") for c in spec], "random_effects")
        clash = [k for k in keys if k in self.group_keys_]
        if clash:
            raise ValueError(f"random_effects: {clash} are group columns.")
        return [keys for _ in self.factor_names_]

    def fit_transform(self, X, groups=None) -> ModelArrays:
        """:meth:`fit`, then :meth:`transform` of the same data."""
        return self.fit(X, groups).transform(X, groups)

    def transform(self, X, groups=None) -> ModelArrays:
        """Model arrays of X (and ``groups``), with the column roles learned in :meth:`fit`."""
        n = X.shape[0]
        # A column both fixed and random (the usual random slope) is read and checked once;
        # both uses copy it.
        numeric = {}

        def column(key):
            if key not in numeric:
                numeric[key] = _numeric_column(X, key)
            return numeric[key]

        # Filled column by column in Fortran order: one pass, no list of temporaries.
        X_fixed = np.empty((n, len(self.fixed_names_)), order="F")
        if self.fit_intercept:
            X_fixed[:, 0] = 1.0
        for j, key in enumerate(self.fixed_keys_, start=int(self.fit_intercept)):
            X_fixed[:, j] = column(key)
        labels = self._labels(X, groups, n)
        factors = []
        for name, lab, keys in zip(self.factor_names_, labels, self.random_keys_):
            cols = ([np.ones(n)] if self.random_intercept else []) + [column(k) for k in keys]
            names = ((INTERCEPT,) if self.random_intercept else ()) + tuple(
                _column_label(X, k) for k in keys
            )
            q = len(cols)
            blocks = (
                (tuple(range(q)),)
                if self.covariance == "unstructured"
                else tuple((i,) for i in range(q))
            )
            factors.append(FactorArrays(name, lab, np.column_stack(cols), names, blocks))
        return ModelArrays(X_fixed, self.fixed_names_, tuple(factors))

    def _labels(self, X, groups, n):
        if self.group_keys_:
            if groups is not None:
                raise ValueError(
                    "Group labels were given twice: as a `group` column of X and as `groups=`."
                )
            return [_label_column(X, k) for k in self.group_keys_]
        if groups is None:
            if self.factor_names_:
                raise ValueError(
                    "This model was fitted with groups=...; pass the group labels to "
                    "predict/score as groups= too."
                )
            return []
        columns = _groups_columns(groups)
        if len(columns) != len(self.factor_names_):
            raise ValueError(
                f"groups has {len(columns)} column(s); the model was fitted with "
                f"{len(self.factor_names_)} grouping factor(s)."
            )
        for col in columns:
            if col.shape[0] != n:
                raise ValueError(f"groups has {col.shape[0]} rows but X has {n}.")
        return columns


def _groups_columns(groups):
    if isinstance(groups, pd.DataFrame):
        return [groups[c].to_numpy() for c in groups.columns]
    if isinstance(groups, pd.Series):
        return [groups.to_numpy()]
    if hasattr(groups, "columns") and hasattr(groups, "to_numpy"):
        return [np.asarray(groups[c].to_numpy()) for c in groups.columns]
    arr = np.asarray(groups)
    if arr.ndim == 1:
        return [arr]
    if arr.ndim == 2:
        return [arr[:, j] for j in range(arr.shape[1])]
    raise ValueError(f"groups must be 1-D or 2-D; got shape {arr.shape}.")


def _groups_names(groups):
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
    # every column keeps far more than `tol` of its norm.
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
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column(s): {dropped} (each is a linear combination of the columns before it).",
            UserWarning,
            stacklevel=3,
        )
    return np.asarray(keep, dtype=np.intp)


def warn_collinear_random_columns(factor: FactorArrays):
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
    if collinear:
        warnings.warn(
            f"random-effect columns {collinear} of grouping factor {factor.name!r} are linear "
            "combinations of the columns before them: their variances and correlations are "
            "not identifiable (the likelihood only sees the covariance of independent "
            "combinations). Drop them from random_effects.",
            UserWarning,
            stacklevel=3,
        )


def _factor_from_bar(bar) -> FactorArrays:
    """A formula bar as a one-block factor (``||`` bars arrive already split)."""
    q = bar.Z.shape[1]
    blocks = (tuple(range(q)),) if bar.correlated else tuple((i,) for i in range(q))
    return FactorArrays(bar.group_name, bar.labels, bar.Z, tuple(bar.column_names), blocks)


class FormulaArrays:
    """Model arrays from an lme4 formula: a thin layer over ``FormulaDesign``.

    Parameters
    ----------
    formula : str
        The lme4 formula.
    """

    def __init__(self, formula):
        self.formula = formula

    def fit(self, data):
        """Learn the formula's encodings (categorical levels, transforms) on ``data``."""
        self.fit_transform(data)
        return self

    def fit_transform(self, data, groups=None) -> ModelArrays:
        """:meth:`fit` and :meth:`transform` of the training data in one pass."""
        from ._formula import FormulaDesign

        self.formula_design_ = FormulaDesign(self.formula)
        self.response = self.formula_design_.response
        X, bars = self.formula_design_.fit_transform(data)
        return self._arrays(X, bars)

    def _arrays(self, X, bars) -> ModelArrays:
        factors = merge_bars([_factor_from_bar(bar) for bar in bars])
        return ModelArrays(X, tuple(self.formula_design_.fixed_names), factors)

    def response_vector(self, data):
        """The response column named by the formula's left side."""
        return self.formula_design_.response_vector(data)

    def transform(self, data, groups=None) -> ModelArrays:
        """Model arrays of ``data`` with the encodings learned in :meth:`fit`."""
        design = self.formula_design_
        return self._arrays(design.fixed_matrix(data), design.random_terms(data))
