"""R's ``model.matrix`` for our terms: coding, column names, values.

A numeric variable gives its column(s); a factor (text, logical, Categorical,
``factor()``) gives treatment contrasts (levels but the first) or indicators (every
level), by R's rule: a factor in a term is coded by contrasts when the term without
it is marginal to a term before it (the empty term counts, so main effects get
contrasts), else by indicators; without an intercept the first factor of the first
term that has one gets indicators. Columns of an interaction vary their first
variable fastest, and names join the variables' names with ``:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import product

import numpy as np
import pandas as pd

from ..._names import INTERCEPT
from ..checks import MAX_MAGNITUDE
from .columns import MixedColumn
from .transforms import FactorValue, Levels, MatrixValue, learn_levels

__all__ = ["INTERCEPT", "Coding", "MatrixSpec", "check_matrix", "fit_matrix"]



@dataclass(frozen=True)
class Coding:
    """How one variable becomes model columns, learned at fit.

    Attributes
    ----------
    numeric : bool
        A numeric variable (one column, or ``suffixes`` for several); else a factor.
    suffixes : tuple of str or None
        Column-name suffixes of a several-column numeric variable (``poly``).
    levels : Levels or None
        A factor's levels.
    """

    numeric: bool
    suffixes: tuple | None = None
    levels: Levels | None = None


@dataclass(frozen=True)
class MatrixSpec:
    """A fitted model matrix: the codings and, per column, what it multiplies.

    Attributes
    ----------
    codings : dict
        Variable key -> :class:`Coding`.
    columns : tuple
        Per column, ``((key, index), ...)``: the index-th column of a numeric
        variable or the indicator of level ``index`` of a factor; ``()`` is the
        intercept.
    names : tuple of str
        R's column names.
    text : str
        The formula side, for messages.
    """

    codings: dict
    columns: tuple
    names: tuple
    text: str

    def matrix(self, values, n):
        """The model matrix of new data.

        Parameters
        ----------
        values : dict
            Variable key -> evaluated value.
        n : int
            Rows.

        Returns
        -------
        ndarray of shape (n, len(names))

        Raises
        ------
        ValueError
            For a variable of another type than at fit, an unseen level, or a column
            with non-finite or overflowing values.
        """
        prepared = {key: self._prepare(key, values[key], n) for key in self.codings}
        return _materialize(self.columns, prepared, self._factors, n, self.names, self.text)

    @cached_property
    def _factors(self):
        return frozenset(k for k, c in self.codings.items() if not c.numeric)

    def _prepare(self, key, value, n):
        coding = self.codings[key]
        if coding.numeric:
            return _numeric_data(key, value, n, self.text, coding)
        if isinstance(value, MixedColumn):
            raise value.error()
        if (
            isinstance(value, np.ndarray)
            and value.dtype.kind == "b"
            and coding.levels.values == (False, True)
        ):
            return value.astype(np.intp)  # a logical: its codes are its values
        return coding.levels.codes(value, key)


def _numeric_data(key, value, n, text, coding=None):
    if isinstance(value, MatrixValue):
        if coding is not None and coding.suffixes != value.suffixes:
            raise ValueError(f"Variable {key!r} of {text!r} changed its number of columns.")
        return value.values
    if isinstance(value, MixedColumn):
        raise value.error()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise ValueError(
            f"Variable {key!r} of {text!r} was numeric in the training data but here it is "
            f"{getattr(value, 'dtype', type(value).__name__)}."
        )
    if value.ndim != 1 or value.shape[0] != n:
        raise ValueError(f"Variable {key!r} of {text!r} does not have one value per row.")
    return value


def _coding_at_fit(key, value, n, text):
    """The :class:`Coding` of a variable from its training values, and its data."""
    if isinstance(value, MatrixValue):
        return Coding(True, suffixes=value.suffixes), value.values
    if isinstance(value, MixedColumn):
        raise value.error()
    if not isinstance(value, (np.ndarray, pd.Categorical, FactorValue)):
        raise ValueError(f"{key!r} in {text!r} is a constant, not a variable.")
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return Coding(True), _numeric_data(key, value, n, text)
    levels, codes = learn_levels(value)
    return Coding(False, levels=levels), codes


def _contrast_coded(term, position, earlier):
    """R's rule: the factor at ``position`` of ``term`` gets contrasts iff the term
    without it is empty or contained in an earlier term."""
    rest = frozenset(term[:position] + term[position + 1 :])
    return not rest or any(rest <= other for other in earlier)


def fit_matrix(spec, values, n, text):
    """The :class:`MatrixSpec` of a :class:`~.terms.TermSpec` on training data, and
    its matrix.

    Parameters
    ----------
    spec : TermSpec
    values : dict
        Variable key -> evaluated training value.
    n : int
        Rows.
    text : str
        The formula side, for messages.

    Returns
    -------
    MatrixSpec, ndarray of shape (n, p)
    """
    used = list(dict.fromkeys(k for term in spec.terms for k in term))
    codings, prepared = {}, {}
    for key in used:
        codings[key], prepared[key] = _coding_at_fit(key, values[key], n, text)
    columns, names = _columns(spec.intercept, spec.terms, tuple(codings.items()), text)
    matrix_spec = MatrixSpec(codings, columns, names, text)
    factors = {k for k, c in codings.items() if not c.numeric}
    matrix = _materialize(columns, prepared, factors, n, names, text)
    return matrix_spec, matrix


@lru_cache(maxsize=256)
def _columns(intercept, terms, codings, text):
    """What each column multiplies, and its name: from the terms and codings alone, so
    refitting the same formula on data of the same kinds reuses them (cached)."""
    codings = dict(codings)
    is_factor = {k: not c.numeric for k, c in codings.items()}
    # Indicators for the first factor of the first term with one, without an intercept.
    first_factor = None
    if not intercept:
        first_factor = next(
            ((i, j) for i, t in enumerate(terms) for j, k in enumerate(t) if is_factor[k]),
            None,
        )
    columns, names = [], []
    if intercept:
        columns.append(())
        names.append(INTERCEPT)
    sets = [frozenset(t) for t in terms]
    for i, term in enumerate(terms):
        choices = []  # per variable: [(index, name piece), ...]
        for j, key in enumerate(term):
            coding = codings[key]
            if coding.numeric:
                suffixes = coding.suffixes or ("",)
                choices.append([(k, key + s) for k, s in enumerate(suffixes)])
                continue
            labels = coding.levels.labels
            contrasts = (i, j) != first_factor and _contrast_coded(term, j, sets[:i])
            if contrasts and len(labels) < 2:
                raise ValueError(
                    f"Variable {key!r} of {text!r} has a single level ({labels[0]!r}) in the "
                    "training data: contrasts can be applied only to factors with 2 or more "
                    "levels."
                )
            start = 1 if contrasts else 0
            choices.append([(k, key + labels[k]) for k in range(start, len(labels))])
        # R varies the first variable fastest: iterate the product over reversed choices.
        for combo in product(*reversed(choices)):
            combo = combo[::-1]
            columns.append(tuple((key, c[0]) for key, c in zip(term, combo)))
            names.append(":".join(c[1] for c in combo))
    return tuple(columns), tuple(names)


def _materialize(columns, prepared, factors, n, names, text):
    out = np.empty((n, len(columns)), order="F")  # columns written and checked whole
    # No np.errstate here (a measurable share of a small matrix): inf * 0 in a product
    # warns as numpy does, then check_matrix names the column.
    _fill(out, columns, prepared, factors)
    check_matrix(out, names, text)
    return out


def _fill(out, columns, prepared, factors):
    for j, parts in enumerate(columns):
        if not parts:
            out[:, j] = 1.0
            continue
        for m, (key, index) in enumerate(parts):
            data = prepared[key]
            if key in factors:
                piece = data == index
            elif data.ndim == 2:
                piece = data[:, index]
            else:
                piece = data
            if m == 0:
                out[:, j] = piece
            else:
                out[:, j] *= piece


def check_matrix(matrix, names, text):
    """Refuse a model matrix with a non-finite or overflowing value.

    Parameters
    ----------
    matrix : ndarray of shape (n, p)
    names : sequence of str
        Column names, for the message.
    text : str
        The formula side, for the message.

    Raises
    ------
    ValueError
        Naming the first column with NaN, an infinity or a value beyond 1e150.
    """
    if not matrix.size:
        return
    # Extremes of the whole matrix without an |matrix| copy; NaN propagates through both
    # (and fails the comparison). Only a failing matrix is searched for the column.
    if (
        -np.minimum.reduce(matrix, axis=None) <= MAX_MAGNITUDE
        and np.maximum.reduce(matrix, axis=None) <= MAX_MAGNITUDE
    ):
        return
    top = np.maximum(-matrix.min(axis=0), matrix.max(axis=0))
    bad = np.flatnonzero(~(top <= MAX_MAGNITUDE))
    if bad.size:
        j = int(bad[0])
        found = (
            f"values up to {top[j]:.3g}, beyond {MAX_MAGNITUDE:.0e} (their squares overflow "
            "float64)"
            if np.isfinite(top[j])
            else "NaN or infinite values"
        )
        raise ValueError(
            f"Column {names[j]!r} of {text!r} has {found}: check or rescale the variables "
            "it is computed from."
        )
