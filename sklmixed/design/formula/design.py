"""A formula fitted on training data: model matrices for the same and for new data.

:class:`FormulaTerms` reads the columns a formula names, evaluates its
expressions (:mod:`.expressions`), codes them as R's ``model.matrix`` does
(:mod:`.model_matrix`), and keeps everything learned on the training data (factor
levels, ``scale``/``center``/``poly`` state) to rebuild the same columns from new
data. It is a plain picklable object: no function or code object is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..arrays import RawTerm
from ..base import Design
from ..response import raw_formula_response
from .columns import (
    MixedColumn,
    check_frame,
    check_present,
    checked_column,
    group_labels,
    group_values,
    missing_mask,
    read_variable,
)
from .deparse import deparse
from .expressions import Evaluator, names_in
from .model_matrix import check_matrix, fit_matrix
from .parse import parse_formula, warn_dropped_response
from .syntax import Name
from .tokens import tokenize

__all__ = ["FormulaDesign", "FormulaTerms"]


def _columns_of(spec):
    used = dict.fromkeys(k for term in spec.terms for k in term)
    names = {}  # an ordered set: a long formula stays linear
    for key in used:
        names.update(dict.fromkeys(names_in(spec.node(key))))
    return tuple(names)


class _Layout(NamedTuple):
    """What a formula's text alone determines (cached: shared, never modified)."""

    parsed: object
    fixed_columns: tuple
    lhs_specs: dict  # lhs text -> TermSpec
    bar_columns: tuple  # per bar: lhs columns, then group columns
    offset_columns: tuple
    response_columns: tuple
    variables: tuple


@lru_cache(maxsize=256)
def _layout(formula):
    parsed = parse_formula(formula)
    fixed_columns = _columns_of(parsed.fixed_terms)
    lhs_specs, bar_columns = {}, []
    for bar in parsed.bars:
        lhs_specs.setdefault(bar.lhs, bar.terms)
        lhs = _columns_of(bar.terms)
        bar_columns.append(lhs + tuple(g for g in bar.group if g not in lhs))
    offset_columns = []
    for node in parsed.offsets:
        offset_columns.extend(n for n in names_in(node) if n not in offset_columns)
    response = () if parsed.response_node is None else tuple(names_in(parsed.response_node))
    # In order of first appearance in the text (nesting lists groups inner first).
    first = {}
    for tok in tokenize(formula):
        if tok.kind == "name":
            first.setdefault(tok.value, tok.start)
    variables = list(dict.fromkeys(fixed_columns + sum(bar_columns, ()) + tuple(offset_columns)))
    variables.sort(key=lambda v: first.get(v, len(formula)))
    return _Layout(
        parsed,
        fixed_columns,
        lhs_specs,
        tuple(bar_columns),
        tuple(offset_columns),
        response,
        tuple(variables),
    )


class _Pass:
    """One pass over a data frame: each column read and each expression evaluated once."""

    def __init__(self, data, state, fitting):
        columns = {}

        def column(name):
            # A closure, not a bound method: no reference cycle for the collector.
            if name not in columns:
                columns[name] = read_variable(data, name)
            return columns[name]

        self.column = column
        self.values = {}
        self.evaluate = Evaluator(column, state, fitting)

    def variables(self, spec):
        """Variable key -> value, for the variables in ``spec``'s terms."""
        out = {}
        for term in spec.terms:
            for key in term:
                if key not in self.values:
                    node = spec.node(key)
                    # A plain column (the usual variable) needs no evaluator.
                    value = self.column(node.name) if type(node) is Name else self.evaluate(node)
                    self.values[key] = value
                out[key] = self.values[key]
        return out


class FormulaTerms:
    """Fitted encodings of an lme4 formula; fit on training data, transform new data identically.

    Parameters
    ----------
    formula : str
        An lme4 formula (see :func:`~sklmixed.design.formula.parse_formula`).

    Attributes
    ----------
    parsed : ParsedFormula
        The formula split into response, fixed part, bars and offsets.
    response : str or None
        The response (a column name or R's text of an expression), if any.
    variables : list of str
        Every data column the formula uses on its right side (fixed part, bars'
        left sides, grouping factors, offsets), in order of appearance.
    fixed_names : list of str
        lme4's names of the fixed-effects columns (set by :meth:`fit`).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1., 2, 3, 4], "x": [0., 1, 2, 3],
    ...                    "sex": ["F", "M", "M", "F"], "g": [1, 1, 2, 2]})
    >>> design = FormulaTerms("y ~ x * sex + (1 | g)").fit(df)
    >>> design.fixed_names
    ['(Intercept)', 'x', 'sexM', 'x:sexM']
    >>> design.fixed_matrix(df.iloc[:2]).tolist()
    [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, formula: str):
        self.formula = formula
        self._layout = _layout(formula)
        self.parsed = self._layout.parsed
        self.response = self.parsed.response
        self.variables = list(self._layout.variables)
        self._specs = None
        self._state = None

    # -- fit ------------------------------------------------------------------------

    def fit(self, data) -> FormulaTerms:
        """Learn factor levels and stateful transforms on the training data.

        Parameters
        ----------
        data : DataFrame
            Holds every column in :attr:`variables`, without missing values.

        Returns
        -------
        self
        """
        self.fit_transform(data)
        return self

    def fit_transform(self, data):
        """:meth:`fit`, returning the training data's matrices from the same pass.

        Parameters
        ----------
        data : DataFrame
            Holds every column in :attr:`variables`, without missing values.

        Returns
        -------
        fixed : ndarray of shape (n, p)
            As :meth:`fixed_matrix` of ``data``.
        bars : list of RawTerm
            As :meth:`random_terms` of ``data``.
        """
        check_frame(data)
        check_present(data, self.variables, self.formula)
        warn_dropped_response(self.parsed)
        state, n = {}, len(data)
        run = _Pass(data, state, fitting=True)
        specs, matrices = {}, {}
        sides = [("fixed", self.parsed.fixed_terms, self.parsed.fixed)]
        sides += [(lhs, spec, lhs) for lhs, spec in self._layout.lhs_specs.items()]
        for key, spec, text in sides:
            specs[key], matrices[key] = fit_matrix(spec, run.variables(spec), n, text)
        self._specs, self._state = specs, state
        self.fixed_names = list(specs["fixed"].names)
        bars = [
            self._term_data(bar, matrices[bar.lhs], data, fitting=True) for bar in self.parsed.bars
        ]
        return matrices["fixed"], bars

    # -- transform ------------------------------------------------------------------

    def fixed_matrix(self, data) -> np.ndarray:
        """Fixed-effects model matrix of ``data``, columns in :attr:`fixed_names` order.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n, p), float64

        Raises
        ------
        ValueError
            For a missing column, missing values, or a level of a categorical
            variable that was not in the training data.
        """
        self._check_fitted()
        check_frame(data)
        check_present(data, self._layout.fixed_columns, self.formula)
        run = _Pass(data, self._state, fitting=False)
        spec = self.parsed.fixed_terms
        return self._specs["fixed"].matrix(run.variables(spec), len(data))

    def random_terms(self, data) -> list:
        """Every random-effects bar evaluated on ``data``, in :attr:`parsed` order.

        Group labels not seen in training are returned as they are (the estimator
        decides what an unseen group means); unseen levels of a categorical
        variable on a bar's left side are an error, as in :meth:`fixed_matrix`.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        list of RawTerm
        """
        self._check_fitted()
        check_frame(data)
        run = _Pass(data, self._state, fitting=False)
        out = []
        for bar, columns in zip(self.parsed.bars, self._layout.bar_columns):
            check_present(data, columns, self.formula)
            Z = self._specs[bar.lhs].matrix(run.variables(bar.terms), len(data))
            out.append(self._term_data(bar, Z, data, fitting=False))
        return out

    def _term_data(self, bar, Z, data, fitting):
        values = {name: group_values(data, name, fitting) for name in bar.group}
        return RawTerm(
            group_name=bar.group_name,
            labels=group_labels(values, bar.group),
            Z=Z,
            column_names=self._specs[bar.lhs].names,
            correlated=bar.correlated or Z.shape[1] > 1,
        )

    def response_vector(self, data) -> np.ndarray:
        """The response: a column, an expression of columns, or ``cbind``'s two columns.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n,), or (n, k) for ``cbind(...)``, float64
        """
        if self.response is None:
            raise ValueError(f"The formula {self.formula!r} has no response (no 'y ~' left side).")
        check_frame(data)
        check_present(data, self._layout.response_columns, self.formula, "response")
        node = self.parsed.response_node
        run = _Pass(data, {}, fitting=False)
        value = run.evaluate(node)
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim in (1, 2):
            return value.astype(np.float64)
        if isinstance(value, MixedColumn):
            raise value.error()
        if not isinstance(value, (np.ndarray, pd.Categorical)):
            raise ValueError(f"The response {deparse(node)!r} is a constant, not a variable.")
        what = f"column {node.name!r}" if isinstance(node, Name) else repr(deparse(node))
        dtype = checked_column(data, node.name).dtype if isinstance(node, Name) else "text"
        raise ValueError(f"The response {what} is not numeric (dtype {dtype}).")

    def offset_vector(self, data):
        """The sum of the formula's ``offset()`` terms on ``data``, or None without any.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n,) or None
        """
        if not self.parsed.offsets:
            return None
        check_frame(data)
        check_present(data, self._layout.offset_columns, self.formula)
        run = _Pass(data, {}, fitting=False)
        total = np.zeros(len(data))
        for node in self.parsed.offsets:
            total = total + run.evaluate.number(run.evaluate(node), node)
        check_matrix(total[:, None], ["offset"], self.formula)
        return total

    def complete_rows(self, data) -> np.ndarray:
        """Rows with no missing value in any column the formula uses (R's ``na.omit``).

        Every right-side column must be present; the response's columns count when
        present (new data for prediction need not have them).

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n,), bool
        """
        check_frame(data)
        check_present(data, self.variables, self.formula)
        keep = np.ones(len(data), dtype=bool)
        names = self.variables + [c for c in self._layout.response_columns if c in data.columns]
        for name in dict.fromkeys(names):
            column = data[name]
            if column.ndim != 1:
                raise ValueError(f"The data has several columns named {name!r}.")
            keep &= ~missing_mask(column)
        return keep

    def _check_fitted(self):
        if self._specs is None:
            raise RuntimeError("This FormulaTerms is not fitted yet; call fit(data) first.")


class FormulaDesign(Design):
    """An lme4 formula as a :class:`~sklmixed.design.base.Design`: the estimators' door.

    Parameters
    ----------
    formula : str
        An lme4 formula such as ``"normexam ~ standLRT + (1 + standLRT | school)"``.
    weights : str, default=None
        The column of the data holding lme4's prior weights.
    unseen_levels : {"population", "warn", "error"}, default="population"
        What :meth:`transform` does with group levels never seen in fit.
    response_columns : {1, 2}, default=1
        Columns of the response the model takes: 1 (a number per row), or 2 for a
        binomial model's ``cbind(successes, failures)``.
    na_action : {"raise", "omit"}, default="raise"
        Whether rows missing a value of a variable the formula (or the weights) uses
        are refused or left out, as R's ``na.fail`` and ``na.omit``.
    response_family : {None, "binomial", "poisson"}, default=None
        None for a Gaussian response; a GLMM's family reads the response as lme4's
        ``glmer`` does (:mod:`sklmixed.design.response`).
    offset : str, default=None
        A column of the data added to the linear predictor (lme4's ``offset =``),
        besides the formula's ``offset()`` terms.
    """

    def __init__(
        self,
        formula,
        weights=None,
        unseen_levels="population",
        response_columns=1,
        na_action="raise",
        response_family=None,
        offset=None,
    ):
        self.formula = formula
        self.weights = weights
        self.unseen_levels = unseen_levels
        self.response_columns = response_columns
        self.na_action = na_action
        self.response_family = response_family
        self.offset = offset

    @property
    def response(self):
        """The response as written on the left side, or None."""
        return parse_formula(self.formula).response

    @property
    def variables(self):
        """Every data column the formula's right side uses."""
        return FormulaTerms(self.formula).variables

    def _used_columns(self, X, groups):
        terms = FormulaTerms(self.formula)
        names = list(terms.variables) + list(terms._layout.response_columns)
        names += [self.weights, self.offset]
        # A variable absent from X is reported by name when the formula reads X.
        present = [v for v in dict.fromkeys(names) if v is not None and v in X.columns]
        return [X[v] for v in present]

    def _read(self, X, groups, fitting):
        if groups is not None:
            raise ValueError(
                "formula is set, so groups= must be None: name the groups in the formula."
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "formula is set, so X must be a DataFrame holding the formula's variables."
            )
        if fitting:
            self.terms_ = FormulaTerms(self.formula)
            X_full, bars = self.terms_.fit_transform(X)
        else:
            X_full, bars = self.terms_.fixed_matrix(X), self.terms_.random_terms(X)
        return X_full, tuple(self.terms_.fixed_names), bars

    def _response_name(self):
        return self.terms_.response or "y"

    def _response(self, X):
        if self.terms_.response is None:
            return None
        if self.response_family is not None:
            # A GLMM's response may be text, a Categorical or cbind(s, f).
            return raw_formula_response(self.terms_, X)
        y = self.terms_.response_vector(X)
        width = 1 if y.ndim == 1 else y.shape[1]
        if width != self.response_columns:
            what = "a binomial (successes, failures) response" if width == 2 else (
                f"a response of {width} columns"
            )
            raise ValueError(
                f"The response {self.terms_.response!r} of {self.formula!r} is {what}; this "
                + ("model needs one numeric column (a linear mixed model; glmer takes "
                   "cbind(successes, failures))." if self.response_columns == 1
                   else "model needs cbind(successes, failures) or one column.")
            )
        return y

    def _offset(self, X):
        return self.terms_.offset_vector(X)

    def formula_text(self, response=None):
        """The formula as given."""
        return self.formula
