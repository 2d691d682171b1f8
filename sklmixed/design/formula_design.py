"""The formula design: an lme4 formula read on a DataFrame, as a :class:`Design`."""

from __future__ import annotations

import pandas as pd

from .._formula import FormulaDesign as FormulaEngine
from .base import Design, RawTerm

__all__ = ["FormulaDesign"]


class FormulaDesign(Design):
    """An lme4 formula fitted on training data (categorical levels, transforms).

    Parameters
    ----------
    formula : str
        An lme4 formula such as ``"normexam ~ standLRT + (1 + standLRT | school)"``.
    weights : str, default=None
        The column of the data holding lme4's prior weights.
    unseen_levels : {"population", "warn", "error"}, default="population"
        What :meth:`transform` does with group levels never seen in fit.
    na_action : {"raise", "omit"}, default="raise"
        Whether rows missing a value of a variable the formula (or the weights) uses
        are refused or left out, as R's ``na.fail`` and ``na.omit``.
    """

    def __init__(self, formula, weights=None, unseen_levels="population", na_action="raise"):
        self.formula = formula
        self.weights = weights
        self.unseen_levels = unseen_levels
        self.na_action = na_action

    @property
    def response(self):
        """The response variable named on the left side, or None."""
        return FormulaEngine(self.formula).response

    def _used_columns(self, X, groups):
        engine = FormulaEngine(self.formula)
        names = list(engine.variables) + [engine.response, self.weights]
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
            self.engine_ = FormulaEngine(self.formula)
            X_full, bars = self.engine_.fit_transform(X)
        else:
            X_full = self.engine_.fixed_matrix(X)
            bars = self.engine_.random_terms(X)
        terms = []
        for bar in bars:
            if bar.correlated:
                terms.append(RawTerm(bar.group_name, bar.labels, bar.Z, tuple(bar.column_names)))
            else:  # a one-column bar that || split off
                terms.extend(
                    RawTerm(bar.group_name, bar.labels, bar.Z[:, j : j + 1], (name,))
                    for j, name in enumerate(bar.column_names)
                )
        return X_full, tuple(self.engine_.fixed_names), terms

    def _response(self, X):
        if self.engine_.response is None:
            return None
        return self.engine_.response_vector(X)

    def formula_text(self, response=None):
        """The formula as given."""
        return self.formula
