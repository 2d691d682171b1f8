"""The model arrays a design hands to the rest of the road.

:class:`ModelArrays` is everything the fit reads from the data: the fixed-effects
matrix, the response, prior weights, an offset, and one :class:`RandomFactor` per
grouping factor. It is the contract between the design step and the sufficient
statistics: a new input format only has to produce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["ModelArrays", "RandomFactor", "RawTerm"]


@dataclass(frozen=True)
class RawTerm:
    """One lme4 random-effects term read from the data, before its levels are encoded.

    What a design's reader (column roles, or the formula's bars) produces; the design
    then encodes the labels and merges the terms of one grouping factor into a
    :class:`RandomFactor`, each term one block of its covariance.

    Attributes
    ----------
    group_name : str
        lme4's name of the grouping factor (``"school"``, ``"cask:batch"``).
    labels : ndarray or pandas.Categorical of shape (n,)
        Group label per row. One grouping variable: its values as they are (numeric
        or object). Several: strings joining the values with ``":"`` in the order
        of ``group_name`` (``"a:A"`` for ``cask:batch``, as lme4 labels levels).
    Z : ndarray of shape (n, q)
        float64 columns of the term.
    column_names : tuple of str
        lme4's names of the columns (``"(Intercept)"``, ``"standLRT"``, ``"sexM"``).
    correlated : bool
        Whether the term came from an ``|`` bar (True) or was split off by ``||``
        (False; a single column, or a factor's dummies, which lme4's
        ``expandDoubleVerts`` keeps together). Either way the term's columns are one
        covariance block.
    """

    group_name: str
    labels: object
    Z: np.ndarray
    column_names: tuple
    correlated: bool = True


@dataclass(frozen=True)
class RandomFactor:
    """The random effects of one grouping factor, evaluated on data.

    One factor may carry several lme4 terms (``(1 | g) + (0 + x | g)``, or the
    terms ``||`` splits off): each is one block of columns with its own covariance,
    and the factor's relative covariance factor is block diagonal.

    Attributes
    ----------
    name : str
        The factor's name as lme4 prints it (``"school"``, ``"cask:batch"``).
    codes : ndarray of shape (n,), dtype intp
        Level of each row as a position in ``levels``; -1 marks a level the fitted
        design has never seen (only at predict time).
    levels : pandas.Index
        The levels, in R's order.
    columns : ndarray of shape (n, q)
        Random-effect model columns (a column of ones for a random intercept).
    column_names : tuple of str
        Their names (``"(Intercept)"``, ``"standLRT"``).
    blocks : tuple of tuple of int
        Correlated blocks of columns: one block holding every column is an
        unstructured covariance, singletons a diagonal one.
    term_positions : tuple of int
        For each block, the position of its lme4 term in the formula's list of
        terms (after ``||`` and ``/`` are expanded): what lme4's order and names of
        the terms are computed from.
    """

    name: str
    codes: np.ndarray
    levels: object
    columns: np.ndarray
    column_names: tuple
    blocks: tuple
    term_positions: tuple = field(default=None)

    def __post_init__(self):
        if self.term_positions is None:
            object.__setattr__(self, "term_positions", tuple(range(len(self.blocks))))

    @property
    def n_levels(self) -> int:
        """Number of levels seen in fit."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random-effect columns."""
        return self.columns.shape[1]


@dataclass(frozen=True)
class ModelArrays:
    """Numeric arrays of a model, as a design produces them.

    Attributes
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix, aliased columns already dropped.
    fixed_names : tuple of str
        Names of its columns.
    factors : tuple of RandomFactor
        One per grouping factor, in the order the design lists them.
    y : ndarray of shape (n,) or None
        The response (None for new data at predict time).
    weights : ndarray of shape (n,) or None
        Prior weights (lme4's ``weights``): row ``i`` has residual variance ``σ²/wᵢ``.
    offset : ndarray of shape (n,) or None
        A known part of the linear predictor (lme4's ``offset``).
    frequency : ndarray of shape (n,) or None
        Frequency weights (scikit-learn's ``sample_weight``): a weight of ``k`` counts
        the row ``k`` times; 0 leaves it out.
    """

    X: np.ndarray
    fixed_names: tuple
    factors: tuple
    y: np.ndarray | None = None
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    frequency: np.ndarray | None = None

    @property
    def n_obs(self) -> int:
        """Number of rows."""
        return self.X.shape[0]

    @property
    def n_counted(self) -> float:
        """Number of observations: rows, or the sum of the frequency weights."""
        return float(self.X.shape[0] if self.frequency is None else self.frequency.sum())

    def replace(self, **changes) -> ModelArrays:
        """A copy with some fields changed."""
        return replace(self, **changes)
