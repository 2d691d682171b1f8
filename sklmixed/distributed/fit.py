"""A linear mixed model fitted from a Dask DataFrame: the in-memory road, with the
statistics reduced on the workers.

Passes over the data (each one task per partition, results tree-reduced):

1. only with factor-coded text columns: their distinct values (:mod:`.agree`);
2. the moments: group labels, ``XᵀX``, ``Xᵀy``, the columns' sums of squares;
3. the sufficient statistics under the agreed plan;
4. the scaled residuals' quantiles for the summary, exact, in two passes that move
   bin counts and then a few bins' values (:mod:`.quantiles`).

Everything between 3 and 4 (the criterion, the optimizer, the solution) runs on the
client from the reduced statistics, exactly as for an in-memory fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .._core import Criterion, fit_lmm
from ..design.arrays import ModelArrays
from ..design.base import _by_factor, _factor
from ..design.checks import (
    check_level_counts,
    check_residual_variation,
    check_response_varies,
    check_rows_for_fixed_effects,
    drop_aliased_columns,
)
from ..result import build_result
from ..stats.plan import ReductionPlan, block_order, exact_fit_rule, scales_from_sums
from ._dask import compute, require_dask
from .agree import (
    RESPONSE,
    Moments,
    agreed_levels,
    coded_columns,
    distinct_values,
    merge_distinct,
    partition_moments,
    refuse_learned_transforms,
    rows_of,
    skeleton,
)
from .quantiles import bin_counts, quantiles_from_bins, values_in_bins, wanted_bins
from .reduction import partition_scaled_residuals, partition_stats, per_partition, tree_sum

__all__ = ["fit_linear", "check_dask_input"]

# The dense second block (every factor but the one with most levels) is factored on
# the client: refused when it would take more than this share of the free memory.
_DENSE_SHARE = 0.5


def check_dask_input(X, y, groups, sample_weight):
    """Refuse what the distributed fit does not take, saying what to do instead."""
    _, dd = require_dask()
    if not isinstance(X, dd.DataFrame):
        raise TypeError(
            f"A Dask collection given as X must be a dask.dataframe.DataFrame; got "
            f"{type(X).__name__}."
        )
    if groups is not None:
        raise ValueError(
            "groups= is not taken with a Dask DataFrame: keep the group labels in a column "
            "and name it (group=\"g\", or the formula's bars)."
        )
    if sample_weight is not None:
        raise ValueError(
            "sample_weight is not supported with a Dask DataFrame yet: fit the rows in "
            "memory, or use prior weights (a column named by weights=)."
        )
    if y is not None and not isinstance(y, dd.Series):
        raise TypeError(
            "With a Dask DataFrame X, y must be a Dask Series partitioned as X (or None, "
            f"with a formula whose left side names a column); got {type(y).__name__}."
        )


def fit_linear(design, X, y=None, *, method="REML", tol=1e-6, max_iter=100_000,
               check_convergence=True, verbose=0, callback=None, check_arrays=None):  # fmt: skip
    """Fit a linear mixed model from a Dask DataFrame.

    Parameters
    ----------
    design : Design
        An unfitted design (column roles or a formula); fitted here.
    X : dask.dataframe.DataFrame
    y : dask.dataframe.Series, optional
        The response, partitioned as X; None reads it from X (a formula's left side).
    method : {"REML", "ML"}
    tol, max_iter, check_convergence
        As for :class:`~sklmixed.MixedLMRegressor`.
    verbose : int, default=0
        Show Dask's progress for each pass (and a heading on stderr).
    callback : callable, optional
        Called as ``callback(n_evals, value)`` after each evaluation of the criterion.
    check_arrays : callable, optional
        Called with the model arrays' structure (no rows) before the statistics are
        reduced (the estimator's refusal of a model without grouping factors).

    Returns
    -------
    MixedLMResult
        Without fitted values or residuals (``fitted`` and ``residuals`` are None; the
        model's ``predict`` gives them lazily); the summary's residual quantiles are in
        ``residual_quantiles``.
    """
    check_dask_input(X, y, None, None)
    ddf, y_column = (X, None) if y is None else (_with_response(X, y), RESPONSE)
    features = ddf._meta if y_column is None else ddf._meta.drop(columns=[y_column])
    dtypes = features.dtypes
    _refuse_unknown_categories(dtypes)
    # Step 1: the design's encodings, fitted on a skeleton of the data.
    head, _, _ = rows_of(_head(ddf), design, y_column)
    columns = coded_columns(design, dtypes)
    distinct = {}
    if columns:
        parts = per_partition(ddf[columns], distinct_values, columns)
        distinct = compute(_merged(parts), verbose=verbose, label="categories")[0]
    frame = skeleton(head, distinct)
    _, names, terms = design._read(frame, None, fitting=True)
    refuse_learned_transforms(design, dtypes)
    # Step 2: the moments.
    moments = compute(
        tree_sum(per_partition(ddf, partition_moments, design, y_column)),
        verbose=verbose,
        label="levels and moments",
    )[0]
    arrays = _agree(design, moments, names, terms)
    if check_arrays is not None:
        check_arrays(arrays)
    layout = _plan(arrays, moments, design)
    _check_second_block(arrays, layout)
    # Step 3: the statistics, then θ on the client.
    stats = compute(
        tree_sum(per_partition(ddf, partition_stats, design, y_column, layout)),
        verbose=verbose,
        label="sufficient statistics",
    )[0]
    rms = float(np.sqrt(stats.resid_sumsq / stats.n_obs))
    stats = replace(stats, plan=replace(layout, exact_fit=exact_fit_rule(rms, moments.y_max_abs)))
    check_residual_variation(stats, arrays.fixed_names)
    fit = fit_lmm(
        Criterion(stats, reml=method == "REML"),
        tol=tol,
        max_evals=max_iter,
        check_convergence=check_convergence,
        callback=callback,
    )
    result = build_result(fit, arrays, design, method, fitted=None)
    # Step 4: the summary's scaled residuals.
    modes = [None] * len(arrays.factors)
    for b, i in enumerate(layout.order):
        modes[i] = fit.solution.modes[b]
    quantiles = _residual_quantiles(
        ddf, design, y_column, fit.solution.beta, modes, result.sigma, verbose
    )
    return replace(result, residual_quantiles=quantiles)


def _with_response(X, y):
    """X with the response as one more column, refused unless partitioned alike."""
    try:
        ddf = X.assign(**{RESPONSE: y})
        ddf.npartitions  # lowers the expression: mismatched partitions fail here
    except (AssertionError, ValueError, NotImplementedError) as error:
        raise ValueError(
            f"y ({y.npartitions} partitions) is not partitioned as X ({X.npartitions}): "
            "Dask cannot put them side by side. Keep the response in X and use a formula "
            "whose left side names it (formula=\"y ~ ...\", fit(X) with y=None)."
        ) from error
    return ddf


def _refuse_unknown_categories(dtypes):
    """Categorical columns must carry their categories: each partition codes by them."""
    unknown = [
        c for c, dtype in dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype) and "__UNKNOWN_CATEGORIES__" in dtype.categories
    ]  # fmt: skip
    if unknown:
        raise ValueError(
            f"The categorical column(s) {unknown} of the Dask DataFrame have unknown "
            "categories, so partitions would code them differently: make them known first "
            f"(ddf = ddf.categorize(columns={unknown}))."
        )


def _head(ddf, rows=64):
    """The first rows of the first partition holding any (only they travel)."""
    dask, _ = require_dask()
    take = dask.delayed(_first_rows, pure=True)
    for part in ddf.to_delayed():
        head = dask.compute(take(part, rows))[0]
        if head.shape[0]:
            return head
    raise ValueError("The Dask DataFrame has no rows.")


def _first_rows(part, rows):
    return part.head(rows)


def _merged(parts):
    dask, _ = require_dask()
    merge = dask.delayed(_merge_all, pure=True)
    return merge(*parts)


def _merge_all(*parts):
    out = parts[0]
    for part in parts[1:]:
        out = merge_distinct(out, part)
    return out


def _agree(design, moments: Moments, names, terms) -> ModelArrays:
    """Fit the design's remaining state from the moments (levels, aliased columns) and
    return the structure of the model arrays (factors without rows)."""
    if moments.n == 0:
        raise ValueError("No rows are left to fit once rows missing a value are omitted.")
    design.na_dropped_ = pd.Index(moments.dropped)
    XtX = moments.XtX
    # Aliasing from the Gram matrix: Gram-Schmidt sees X only through inner products,
    # so any square root of XᵀX gives the same decisions (up to the rounding of XᵀX).
    values, vectors = np.linalg.eigh(XtX) if XtX.size else (np.zeros(0), np.zeros((0, 0)))
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    keep = drop_aliased_columns(root, names, gram=XtX)
    design.fixed_columns_ = keep
    design.fixed_names_ = tuple(names[i] for i in keep)
    kept = set(keep.tolist())
    design.dropped_fixed_ = tuple(name for i, name in enumerate(names) if i not in kept)
    check_rows_for_fixed_effects(moments.n, len(keep))
    check_response_varies(np.array([moments.y_min, moments.y_max]))
    factors = []
    for name, group in _by_factor(terms).items():
        levels = agreed_levels(moments.labels[name], name)
        q = sum(t.Z.shape[1] for _, t in group)
        empty = [(p, t.__class__(t.group_name, t.labels[:0], np.zeros((0, t.Z.shape[1])),
                                 t.column_names, t.correlated)) for p, t in group]  # fmt: skip
        factor = _factor(name, np.zeros(0, dtype=np.intp), levels, empty)
        assert factor.columns.shape[1] == q
        check_level_counts(name, len(levels), moments.n, max(map(len, factor.blocks)))
        factors.append(factor)
    design.levels_ = {f.name: f.levels for f in factors}
    return ModelArrays(
        X=np.zeros((0, len(keep))),
        fixed_names=design.fixed_names_,
        factors=tuple(factors),
        weights=None if design.weights is None else np.zeros(0),
    )


def _plan(arrays, moments, design) -> ReductionPlan:
    """The plan of the in-memory reduction, from the moments."""
    order = block_order([f.n_levels for f in arrays.factors])
    scales = tuple(
        scales_from_sums(moments.sumsq[arrays.factors[i].name], moments.n) for i in order
    )
    keep = design.fixed_columns_
    XtX, Xty = moments.XtX[np.ix_(keep, keep)], moments.Xty[keep]
    # The least-squares offset from the normal equations (the in-memory fit refines it
    # once more from the rows; any offset is valid: it only shifts β).
    offset = np.linalg.lstsq(XtX, Xty, rcond=None)[0] if keep.size else np.zeros(0)
    return ReductionPlan(order, scales, offset)


def _check_second_block(arrays, layout):
    """Refuse crossed factors whose dense second block would not fit in this process."""
    if len(layout.order) < 2:
        return
    width = sum(arrays.factors[i].n_levels * arrays.factors[i].q for i in layout.order[1:])
    needed = 8.0 * width * width
    available = _available_memory()
    if needed > _DENSE_SHARE * available:
        raise MemoryError(
            f"The crossed factors "
            f"{[arrays.factors[i].name for i in layout.order[1:]]} have {width} random "
            f"effects besides those of {arrays.factors[layout.order[0]].name!r}: their dense "
            f"block ({needed / 2**30:.1f} GiB) is factored on the client, which has "
            f"{available / 2**30:.1f} GiB free. The distributed fit takes one grouping "
            "factor of any size, and further factors whose block fits in the client's memory."
        )


def _available_memory():
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        import os

        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _residual_quantiles(ddf, design, y_column, beta, modes, sigma, verbose):
    """Min, quartiles and max of the scaled residuals, exactly (:mod:`.quantiles`: two
    passes that move bin counts, then the values of a few bins)."""
    if not np.isfinite(sigma) or sigma <= 0:
        return np.full(5, np.nan)
    probs = [0.0, 0.25, 0.5, 0.75, 1.0]
    args = (design, y_column, beta, modes, sigma)
    counts = compute(
        tree_sum(per_partition(ddf, _residual_counts, *args)),
        verbose=verbose, label="residual quantiles (counts)",
    )[0]  # fmt: skip
    bins = wanted_bins(counts, probs)
    values = compute(
        per_partition(ddf, _residual_values, *args, bins),
        verbose=verbose, label="residual quantiles (values)",
    )[0]  # fmt: skip
    return quantiles_from_bins(counts, bins, np.concatenate(values), probs)


def _residual_counts(part, design, y_column, beta, modes, sigma):
    return bin_counts(partition_scaled_residuals(part, design, y_column, beta, modes, sigma))


def _residual_values(part, design, y_column, beta, modes, sigma, bins):
    scaled = partition_scaled_residuals(part, design, y_column, beta, modes, sigma)
    return values_in_bins(scaled, bins)
