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
- type III: lmerTest's construction for R's treatment contrasts. Each term's
  full-dummy columns (every level of each factor, R's ``~ 0 + term``) are written in
  the model's columns, ``rdX = X G``: with an intercept and contrast-coded factors
  the indicator of a reference level is ``1 − Σ`` the others, so ``G`` follows from
  the term structure alone, with no pass over the data. Then, from the terms of
  highest degree down, each term's columns of ``Gᵀ`` are replaced by their residuals
  on the columns of the terms containing it, and the rows of the model's own columns
  are the hypothesis. Without containment this is the marginal test of each term's
  coefficients. Designs where ``rdX`` is not in the span of ``X`` (aliased columns
  dropped, no intercept with containment, several-column numeric variables) are
  refused with a clear error.

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
        if not any(containers.values()):
            L_all = identity  # what lmerTest's construction reduces to
        else:
            L_all = _type3_contrasts(model, terms, containers, p)
        out = {}
        for t in terms:
            L = L_all[list(t.columns)]
            out[t.label] = L[np.abs(L).sum(axis=1) > _EMPTY_ROW]
        return out
    raise ValueError(f"type must be 'I', 'II' or 'III'; got {type!r}.")


def _type3_contrasts(model, terms, containers, p):
    """lmerTest's ``extract_contrasts_type3`` with treatment contrasts, from the term
    structure: rows are the hypotheses of the model's columns (see the module notes)."""
    terms_ = getattr(model.design_, "terms_", None)
    refuse = NotImplementedError(
        "Type III tests of terms contained in other terms need lmerTest's full-dummy "
        "design in the span of the model's columns, which this model does not have "
        "(aliased columns, no intercept, or several-column variables); use type='II' "
        "or 'I', or contest() with your own contrasts."
    )
    names = list(model.fixed_effects_.index)
    if terms_ is None or INTERCEPT not in names:
        raise refuse
    matrix = terms_.fixed_spec
    if model.result_.dropped_fixed or any(c.suffixes for c in matrix.codings.values()):
        raise refuse
    position = {name: j for j, name in enumerate(names)}
    monomial_column = {}
    for name, column in zip(matrix.names, matrix.columns):
        monomial_column[frozenset(column)] = position[name]
        if any(not matrix.codings[key].numeric and level == 0 for key, level in column):
            raise refuse  # a factor with all its indicators: no reference level
    # Rows of G: the intercept, then each term's full-dummy columns; each row holds
    # the coefficients of that column on X. own[j]: the row of X's column j.
    rows, own = [np.eye(p)[position[INTERCEPT]]], {position[INTERCEPT]: 0}
    for t in terms:
        keys = [k for k in matrix.codings if k in t.variables]
        choices = [
            [(k, 0)] if matrix.codings[k].numeric
            else [(k, level) for level in range(len(matrix.codings[k].levels.labels))]
            for k in keys
        ]
        for combo in _product(choices):
            row = np.zeros(p)
            for monomial, coef in _expand(combo, matrix.codings):
                if monomial not in monomial_column:
                    raise refuse
                row[monomial_column[monomial]] += coef
            if all(matrix.codings[k].numeric or level > 0 for k, level in combo):
                own[monomial_column[frozenset(combo)]] = len(rows)
            rows.append(row)
    L = np.array(rows)  # (full-dummy columns, X columns): lmerTest's t(ginv(X) rdX)
    for t in sorted(terms, key=lambda t: -len(t.variables)):  # highest degree first
        if not containers[t.label] or not t.columns:
            continue
        x = L[:, [j for o in containers[t.label] for j in o.columns]]
        y = L[:, list(t.columns)]
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        L[:, list(t.columns)] = _zapsmall(resid, 7)
    return L[[own[j] for j in range(p)]].T


def _product(choices):
    out = [()]
    for options in choices:
        out = [combo + (option,) for combo in out for option in options]
    return out


def _expand(combo, codings):
    """A product of variables (numerics, level indicators) as monomials of the model's
    columns: a reference level's indicator is 1 − Σ the other levels' indicators."""
    terms = [(frozenset(), 1.0)]
    for key, level in combo:
        coding = codings[key]
        if coding.numeric or level > 0:
            factor = [((key, level), 1.0)]
        else:
            n_levels = len(coding.levels.labels)
            factor = [(None, 1.0)] + [((key, other), -1.0) for other in range(1, n_levels)]
        terms = [
            (monomial | ({item} if item is not None else set()), coef * c)
            for monomial, coef in terms
            for item, c in factor
        ]
    summed = {}
    for monomial, coef in terms:
        summed[monomial] = summed.get(monomial, 0.0) + coef
    return [(m, c) for m, c in summed.items() if c != 0.0]


def _zapsmall(x, digits):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    mx = float(np.abs(x).max()) if x.size else 0.0
    if mx == 0.0:
        return x
    return np.round(x, int(np.floor(max(0.0, digits - np.log10(mx)) + 0.5)))


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
