"""F-tests of each fixed-effect term of one model: lmerTest's ``anova(fit, type = ...)``.

Each term's hypothesis is a contrast matrix built from ``XᵀX`` and the term
structure, as lmerTest builds it, then tested by :func:`~._contest.contest`:

- type I (sequential): the rows of each term in the transposed unit lower factor of
  Doolittle's decomposition of ``XᵀX`` (the term adjusted for the terms before it);
- type II: a term contained in no other term (lmerTest's containment: its variables
  a strict subset of the other's, with the same numeric variables) is tested
  marginally (its own coefficients); a contained term is adjusted for every term but
  those containing it (Doolittle's factor of ``XᵀX`` with the term and its
  containers last);
- type III: with R's treatment contrasts and no term contained in another, the
  marginal test of each term's coefficients (what lmerTest's construction reduces to
  there). Terms contained in others (factor-by-factor interactions, a numeric main
  effect beside its interaction with a factor) need the full-dummy design lmerTest
  builds from the data; they are refused with a clear error.

``XᵀX`` is the stored cross-product (with prior weights, ``XᵀWX``: lmerTest uses
the unweighted ``XᵀX`` there; the two agree without weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._names import INTERCEPT
from ._contest import contest
from ._satterthwaite import _result_of

__all__ = ["FixedTerm", "anova", "fixed_terms", "term_contrasts"]

# lmerTest's doolittle(): pivots and entries below this (absolute) are set to 0.
_DOOLITTLE_EPS = 1e-6
# lmerTest drops contrast rows whose absolute sum is below this.
_EMPTY_ROW = 1e-8


@dataclass(frozen=True)
class FixedTerm:
    """One term of the fixed part of a formula.

    Attributes
    ----------
    label : str
        R's label (``"standLRT:schavg"``).
    columns : tuple of int
        Its columns among the fitted fixed effects (aliased columns left out).
    variables : frozenset of str
        Its variables.
    numeric : frozenset of str
        Its numeric variables (R's ``dataClasses`` ``"numeric"``).
    """

    label: str
    columns: tuple
    variables: frozenset
    numeric: frozenset

    def contained_in(self, other: FixedTerm) -> bool:
        """lmerTest's containment: a strict subset of the other's variables with the
        same numeric variables."""
        return self.variables < other.variables and self.numeric == other.numeric


def fixed_terms(model) -> tuple:
    """The fixed-effect terms of a fitted estimator and the columns of each.

    Parameters
    ----------
    model : MixedLMRegressor
        A fitted estimator (its ``design_`` holds the term structure).

    Returns
    -------
    tuple of FixedTerm
        In the formula's order (R's: by degree); the intercept is not a term.
    """
    names = list(model.fixed_effects_.index)
    position = {name: j for j, name in enumerate(names)}
    terms_ = getattr(model.design_, "terms_", None)
    if terms_ is None:  # columns of X: each its own numeric term
        return tuple(
            FixedTerm(name, (position[name],), frozenset([name]), frozenset([name]))
            for name in names
            if name != INTERCEPT
        )
    spec, matrix = terms_.parsed.fixed_terms, terms_.fixed_spec
    numeric_keys = {k for k, c in matrix.codings.items() if c.numeric and c.suffixes is None}
    columns_of = {}
    for name, column in zip(matrix.names, matrix.columns):
        if column and name in position:
            columns_of.setdefault(frozenset(key for key, _ in column), []).append(position[name])
    out = []
    for term in spec.terms:
        variables = frozenset(term)
        out.append(
            FixedTerm(
                spec.label(term),
                tuple(columns_of.get(variables, ())),
                variables,
                frozenset(variables & numeric_keys),
            )
        )
    return tuple(out)


def _doolittle_rows(XtX):
    """``t(doolittle(XtX)$L)``: lmerTest's Doolittle decomposition, thresholds included."""
    n = XtX.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            U[i, j] = XtX[i, j] - L[i, :i] @ U[:i, j]
        for j in range(i + 1, n):
            value = XtX[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < _DOOLITTLE_EPS else value / U[i, i]
    L[np.abs(L) < _DOOLITTLE_EPS] = 0.0
    return L.T


def term_contrasts(model, type="III") -> dict:
    """lmerTest's hypothesis matrix of each term for an anova of the given type.

    Parameters
    ----------
    model : MixedLMRegressor
        A fitted estimator.
    type : {"I", "II", "III"}, default="III"

    Returns
    -------
    dict of str to ndarray of shape (r, p)

    Raises
    ------
    NotImplementedError
        Type III with a term contained in another (see the module's notes).
    """
    result = _result_of(model)
    p = result.fixed_effects.size
    terms = fixed_terms(model)
    XtX = result.fit.criterion.cp.XYtXY[:p, :p]
    if p <= 1 or len(terms) <= 1:
        type = "I"
    identity = np.eye(p)
    containers = {t.label: [o for o in terms if t.contained_in(o)] for t in terms}
    if type == "I":
        rows = _doolittle_rows(XtX)
        return {t.label: rows[list(t.columns)] for t in terms}
    if type == "II":
        out = {}
        for t in terms:
            if not containers[t.label]:
                out[t.label] = identity[list(t.columns)]
                continue
            last = list(t.columns) + [j for o in containers[t.label] for j in o.columns]
            order = [j for j in range(p) if j not in last] + last
            rows = _doolittle_rows(XtX[np.ix_(order, order)])
            own = [k for k, j in enumerate(order) if j in t.columns]
            L = np.zeros((len(own), p))
            L[:, order] = rows[own]
            out[t.label] = L
        return out
    if type == "III":
        contained = [t.label for t in terms if containers[t.label]]
        if contained:
            raise NotImplementedError(
                "Type III tests of terms contained in other terms "
                f"({', '.join(contained)}) are not available; use type='II' or 'I', or "
                "contest() with your own contrasts."
            )
        out = {}
        for t in terms:
            L = identity[list(t.columns)]
            out[t.label] = L[np.abs(L).sum(axis=1) > _EMPTY_ROW]
        return out
    raise ValueError(f"type must be 'I', 'II' or 'III'; got {type!r}.")


def anova(model, type="III", ddf="Satterthwaite") -> pd.DataFrame:
    """F-tests of each fixed-effect term: lmerTest's ``anova()`` of one model.

    Parameters
    ----------
    model : MixedLMRegressor
        A fitted linear mixed model (REML for ``ddf="Kenward-Roger"``).
    type : {"I", "II", "III"}, default="III"
        Sequential (I), adjusted for every term not containing it (II), or marginal
        (III) hypotheses (see the module's notes for their construction).
    ddf : {"Satterthwaite", "Kenward-Roger"}, default="Satterthwaite"

    Returns
    -------
    pandas.DataFrame
        One row per term: ``Sum Sq``, ``Mean Sq``, ``NumDF``, ``DenDF``, ``F value``,
        ``Pr(>F)``; ``attrs["heading"]`` holds lmerTest's heading.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_exam
    >>> from sklmixed.inference import anova
    >>> fit = lmer("normexam ~ standLRT * schavg + (1 + standLRT | school)",
    ...            load_exam().frame)
    >>> list(anova(fit).index)
    ['standLRT', 'schavg', 'standLRT:schavg']
    """
    type = {"1": "I", "2": "II", "3": "III"}.get(str(type), str(type))
    contrasts = term_contrasts(model, type)
    rows = [contest(model, L, ddf=ddf, joint=True) for L in contrasts.values()]
    columns = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    table = (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    )
    table.index = pd.Index(list(contrasts), dtype=object)
    method = "Satterthwaite's" if ddf == "Satterthwaite" else "Kenward-Roger's"
    table.attrs["heading"] = f"Type {type} Analysis of Variance Table with {method} method"
    return table
