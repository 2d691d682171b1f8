"""What every design does once its raw columns are read: the steps shared by the
column-role and the formula designs.

A concrete design reads raw arrays (:meth:`Design._read`): the full fixed-effects
matrix with its names, and one :class:`~sklmixed.design.arrays.RawTerm` per lme4 term. This base then encodes
group levels (R's rules), merges the terms of one grouping factor, drops aliased
fixed-effect columns and runs every data check, at fit; at predict it rebuilds the
same arrays and codes new labels against the fitted levels under the unseen-level
policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._names import r_name
from .arrays import ModelArrays, RandomFactor, RawTerm
from .frames import prior_weight_column
from .checks import (
    check_level_counts,
    check_response,
    check_response_varies,
    check_rows_for_fixed_effects,
    check_frequency_weights,
    check_offset,
    check_weights,
    drop_aliased_columns,
    warn_collinear_random_columns,
)
from .levels import code_new_labels, encode_levels
from .response import read_response
from .missing import dropped_labels, missing_rows, take_rows

__all__ = ["Design"]


class Design:
    """Base of the designs: fitted once on training data, reused on new data.

    Subclasses implement :meth:`_read` (and :meth:`_response`, :meth:`_offset` where
    the data hold them) and :meth:`formula_text`.

    Attributes
    ----------
    fixed_names_ : tuple of str
        Names of the kept fixed-effect columns (after :meth:`fit_transform`).
    dropped_fixed_ : tuple of str
        Fixed-effect columns dropped as linear combinations of earlier ones.
    levels_ : dict of str to pandas.Index
        Levels of each grouping factor, in R's order.
    unseen_levels : {"population", "warn", "error"}
        What :meth:`transform` does with a level never seen in fit.
    na_action : {"raise", "omit"}
        What :meth:`fit_transform` does with rows missing a variable the model uses.
    na_dropped_ : pandas.Index
        Labels (a DataFrame's index) or positions of the rows left out for missing
        values (R's ``na.action`` of the model frame); empty when none were.
    """

    unseen_levels = "population"
    weights = None  # the column of X holding lme4's prior weights, if any
    offset = None  # a column of X holding a known part of the linear predictor, if any
    na_action = "raise"
    # None: a Gaussian response. "binomial" or "poisson": a GLMM's response, read by
    # design/response.py (levels, proportions, cbind, counts); its GLMMResponse is
    # kept as ``response_``.
    response_family = None

    # -- to implement -----------------------------------------------------------------
    def _read(self, X, groups, fitting):
        """``(X_full, fixed_names, [RawTerm])`` of the data."""
        raise NotImplementedError

    def _response(self, X):
        """The response held by the data, or None."""
        return None

    def _offset(self, X):
        """A known part of the linear predictor held by the data, or None."""
        return None

    def formula_text(self, response="y"):
        """The model as an lme4 formula."""
        raise NotImplementedError

    def _used_columns(self, X, groups):
        """The values of every variable the model reads from ``X`` and ``groups``
        (what ``na_action="omit"`` looks at; the response too when the data hold it)."""
        raise NotImplementedError

    # -- the shared steps --------------------------------------------------------------
    def fit_transform(self, X, y=None, groups=None, sample_weight=None) -> ModelArrays:
        """Learn the design on training data and return its checked model arrays.

        Parameters
        ----------
        X : DataFrame or ndarray
        y : array-like of shape (n,), optional
            The response; None reads it from the data (a formula's left side).
        groups : array-like, optional
            Group labels outside X.
        sample_weight : array-like of shape (n,), optional
            Frequency weights (scikit-learn's meaning: a weight of k counts the row
            k times). lme4's prior weights are a column of X, named by ``weights``.

        Returns
        -------
        ModelArrays
        """
        X, y, groups, sample_weight = self._omit_missing(X, y, groups, sample_weight)
        X_full, names, terms = self._read(X, groups, fitting=True)
        n = X_full.shape[0]
        if y is None:
            y = self._response(X)
            if y is None:
                raise ValueError(
                    "This model requires y to be passed, but the target y is None: pass "
                    "the response as y, or use a formula whose left side names a column of X."
                )
        frequency = check_frequency_weights(sample_weight, n)
        weights = None if self.weights is None else check_weights(
            prior_weight_column(X, self.weights), n, f"weights (column {self.weights!r})"
        )
        if self.response_family is None:
            y = check_response(y, n)
        else:
            self.response_ = read_response(
                self.response_family, y, n, self._response_name(), weights
            )
            y, weights = self.response_.y, self.response_.weights
        # Aliasing among the rows that count (a frequency weight of 0 leaves a row out).
        keep = drop_aliased_columns(X_full if frequency is None else X_full[frequency > 0], names)
        self.fixed_columns_ = keep
        self.fixed_names_ = tuple(names[i] for i in keep)
        kept = set(keep.tolist())
        self.dropped_fixed_ = tuple(name for i, name in enumerate(names) if i not in kept)
        counted = n if frequency is None else float(frequency.sum())
        if self.response_family is None:
            check_rows_for_fixed_effects(counted, len(keep))
            check_response_varies(y if frequency is None else y[frequency > 0])
        factors = []
        for name, group in _by_factor(terms).items():
            codes, levels = encode_levels(group[0][1].labels, name)
            factor = _factor(name, codes, levels, group)
            present = len(levels) if frequency is None else np.unique(codes[frequency > 0]).size
            # A GLMM has no residual variance to confuse with a level's: lme4's glmer
            # takes one level per observation (an observation-level random effect).
            check_level_counts(
                name, present, counted, max(map(len, factor.blocks)),
                per_observation_ok=self.response_family is not None,
            )  # fmt: skip
            warn_collinear_random_columns(factor)
            factors.append(factor)
        self.levels_ = {f.name: f.levels for f in factors}
        return ModelArrays(
            X=_select_columns(X_full, keep),
            fixed_names=self.fixed_names_,
            factors=tuple(factors),
            y=y,
            weights=weights,
            offset=self._total_offset(X),
            frequency=frequency,
        )

    def _response_name(self):
        """The response's name in messages."""
        return "y"

    def _total_offset(self, X):
        """The data's offset (a formula's ``offset()`` terms) plus the ``offset`` column."""
        offset = self._offset(X)
        if self.offset is None:
            return offset
        column = check_offset(
            prior_weight_column(X, self.offset, "offset"), X.shape[0], self.offset
        )
        return column if offset is None else offset + column

    def _omit_missing(self, X, y, groups, sample_weight):
        """R's ``na.omit`` over the variables the model uses, when asked; else as given."""
        self.na_dropped_ = pd.Index([], dtype=np.int64)
        if self.na_action != "omit":
            return X, y, groups, sample_weight
        n = X.shape[0]
        dropped = missing_rows([*self._used_columns(X, groups), y], n)
        if not dropped.any():
            return X, y, groups, sample_weight
        if dropped.all():
            raise ValueError(
                f"Every one of the {n} rows misses a value of a variable the model uses: "
                "nothing is left to fit once they are omitted."
            )
        self.na_dropped_ = dropped_labels(X, dropped)
        keep = ~dropped
        return tuple(take_rows(v, keep) for v in (X, y, groups, sample_weight))

    def group_labels(self, X, groups=None) -> dict:
        """Each grouping factor's labels in new data, as read (before any coding).

        Returns
        -------
        dict of str to ndarray or pandas.Categorical
        """
        _, _, terms = self._read(X, groups, fitting=False)
        return {name: group[0][1].labels for name, group in _by_factor(terms).items()}

    def transform(self, X, groups=None) -> ModelArrays:
        """The model arrays of new data, coded as in fit (response not read).

        Levels never seen in fit get code -1, with :attr:`unseen_levels` deciding
        whether that is silent, warned about or an error.
        """
        X_full, _, terms = self._read(X, groups, fitting=False)
        factors = []
        for name, group in _by_factor(terms).items():
            levels = self.levels_[name]
            codes = code_new_labels(group[0][1].labels, levels, name, self.unseen_levels)
            factors.append(_factor(name, codes, levels, group))
        return ModelArrays(
            X=_select_columns(X_full, self.fixed_columns_),
            fixed_names=self.fixed_names_,
            factors=tuple(factors),
            offset=self._total_offset(X),
        )


def _by_factor(terms):
    """``{factor name: [(position, RawTerm)]}`` in order of first appearance."""
    grouped: dict = {}
    for position, term in enumerate(terms):
        grouped.setdefault(term.group_name, []).append((position, term))
    return grouped


def _factor(name, codes, levels, group) -> RandomFactor:
    """One factor from its terms: their columns side by side, one block per term."""
    blocks, start = [], 0
    for _, term in group:
        q = term.Z.shape[1]
        blocks.append(tuple(range(start, start + q)))
        start += q
    columns = group[0][1].Z
    if len(group) > 1 or not (columns.flags.c_contiguous or columns.flags.f_contiguous):
        columns = np.column_stack([term.Z for _, term in group])
    return RandomFactor(
        name=name,
        codes=codes,
        levels=levels,
        columns=columns,
        column_names=sum((tuple(term.column_names) for _, term in group), ()),
        blocks=tuple(blocks),
        term_positions=tuple(position for position, _ in group),
    )


def _select_columns(X, keep):
    """``X[:, keep]``, without a copy when every column is kept (the usual case)."""
    return X if keep.size == X.shape[1] else X[:, keep]


def bar_text(column_names, factor):
    """lme4's text of one term: ``(1 + x | g)``, ``(0 + x | g)``."""
    from .._names import INTERCEPT

    inner = ["1"] if INTERCEPT in column_names else ["0"]
    inner += [r_name(c) for c in column_names if c != INTERCEPT]
    return f"({' + '.join(inner)} | {r_name(factor)})"
