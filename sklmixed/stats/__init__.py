"""Sufficient statistics: the reduction of ``[Z X y]`` to its cross-products.

The data enter a linear mixed model only through the cross-products of the random-effect
columns ``Z``, the fixed-effect columns ``X`` and the response ``y``. This step computes
them once, in chunks of rows, as a :class:`SufficientStats`: additive, so that chunks,
files or the partitions of a distributed data frame are reduced where they live and
merged with ``+``. :meth:`SufficientStats.finalize` then arranges them in the blocks
the criterion factors (:class:`CrossProducts`). From here on nothing sees a row.

:func:`plan` fixes what every partition must agree on before it is reduced: the order
of the grouping factors (the one with most levels first, whose block stays block
diagonal), the scale of each random-effect column (its root mean square, so that θ is
optimized on unit-scale columns) and a least-squares fit of ``y`` on ``X`` that is
removed first (so that ``yᵀy`` cannot swamp the residual sum of squares).
"""

from .crossproducts import CrossProducts, SufficientStats, partial_stats, reduce
from .plan import ReductionPlan, plan, rounding_noise

__all__ = [
    "CrossProducts",
    "ReductionPlan",
    "SufficientStats",
    "partial_stats",
    "plan",
    "reduce",
    "rounding_noise",
]
