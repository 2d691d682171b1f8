"""Test helpers: model arrays and their statistics from raw codes and columns, reduced
without scaling or offset, so cross-products can be compared with dense products."""

import numpy as np
import pandas as pd

from sklmixed._core import Criterion
from sklmixed._core.terms import TermLayout
from sklmixed.design import ModelArrays, RandomFactor
from sklmixed.stats import ReductionPlan, partial_stats


def factor(codes, columns, n_levels, blocks, name="g"):
    """A RandomFactor from level codes and columns."""
    return RandomFactor(
        name=name,
        codes=np.asarray(codes, dtype=np.intp),
        levels=pd.RangeIndex(n_levels),
        columns=np.asarray(columns, dtype=float),
        column_names=tuple(f"z{j}" for j in range(np.shape(columns)[1])),
        blocks=tuple(blocks),
    )


def layout(f):
    """The TermLayout of a factor."""
    return TermLayout(f.n_levels, f.q, f.blocks)


def raw_stats(X, y, factors, sqrt_weights=None):
    """Statistics of ``[Z X y]`` as given: factors in the given order (most levels
    first), unit column scales, no least-squares offset."""
    arrays = ModelArrays(X=X, fixed_names=tuple(f"x{j}" for j in range(X.shape[1])),
                         factors=tuple(factors), y=y)
    plan = ReductionPlan(
        order=tuple(range(len(factors))),
        scales=tuple(np.ones(f.q) for f in factors),
        offset=np.zeros(X.shape[1]),
    )
    weights = None if sqrt_weights is None else sqrt_weights**2
    return partial_stats(arrays, plan, y, weights)


def raw_criterion(X, y, factors, sqrt_weights=None, reml=True):
    """The Criterion of :func:`raw_stats`."""
    return Criterion(raw_stats(X, y, factors, sqrt_weights), reml)


def blocked(criterion, theta, reml=None):
    """The criterion at θ through the blocked factor (never the Schur-complement map)."""
    try:
        return criterion.from_factor(criterion.factor(np.asarray(theta, float)), reml=reml)
    except np.linalg.LinAlgError:
        return np.inf
