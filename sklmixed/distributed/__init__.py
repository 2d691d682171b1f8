"""Fits from a Dask DataFrame: the rows stay on the workers, θ is optimized here.

A linear mixed model sees its data only through additive cross-products
(:class:`~sklmixed.stats.SufficientStats`), so a partitioned data set is reduced where
it lives and only the statistics travel. The distributed road is the in-memory one
with three agreements before the reduction (see ``docs/distributed.md``):

1. :mod:`.agree`: the design's level encodings — the categories of every categorical
   variable the formula codes, then each grouping factor's levels in R's order — and
   the moments the :class:`~sklmixed.stats.ReductionPlan` needs (the least-squares
   offset from ``XᵀX`` and ``Xᵀy``, the random-effect columns' scales);
2. :mod:`.reduction`: :func:`~sklmixed.stats.partial_stats` of each partition on the
   workers under that one plan, tree-reduced with ``+``;
3. :mod:`.fit`: the same :class:`~sklmixed._core.Criterion` and
   :func:`~sklmixed._core.fit_lmm` on the client, and the same
   :class:`~sklmixed.result.MixedLMResult`.

Dask is an optional dependency (``pip install sklmixed[dask]``): nothing here imports
it until a Dask collection is given.
"""

from __future__ import annotations

__all__ = ["is_dask_collection", "fit_linear", "predict_series"]


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a Dask collection (without importing Dask)."""
    return hasattr(type(obj), "__dask_graph__")


def fit_linear(*args, **kwargs):
    """See :func:`sklmixed.distributed.fit.fit_linear`."""
    from .fit import fit_linear as fit

    return fit(*args, **kwargs)


def predict_series(*args, **kwargs):
    """See :func:`sklmixed.distributed.predict.predict_series`."""
    from .predict import predict_series as predict

    return predict(*args, **kwargs)
