"""Likelihood-ratio tests between fits, as lme4's ``anova(m0, m1, ...)``.

lme4 refits every REML fit by maximum likelihood (``refit = TRUE``): REML criteria of
models with different fixed effects are likelihoods of different data (the residuals
of different fixed-effect spaces) and cannot be compared. Here the refit reads the
fit's stored statistics (no pass over the rows). The models are sorted by their
number of parameters and each is tested against the one before it:
``χ² = 2 (logLik₁ − logLik₀)`` on the difference in parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from .. import exceptions
from ..report.rformat import format_real, r_round
from .profiling import ml_refit

__all__ = ["AnovaTable", "NotNestedError", "RefitWarning", "anova", "compare_models"]

_COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
_REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"


class RefitWarning(UserWarning):
    """REML fits were refitted by maximum likelihood for the comparison (lme4's
    message "refitting model(s) with ML (instead of REML)")."""


class NotNestedError(ValueError):
    """The models compared are not nested, so a likelihood-ratio test means nothing."""


@dataclass(frozen=True)
class AnovaTable:
    """lme4's ``anova`` of several fits: prints like R; the table is a DataFrame.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, sorted by ``npar``, with lme4's columns ``npar``, ``AIC``,
        ``BIC``, ``logLik``, ``deviance``, ``Chisq``, ``Df``, ``Pr(>Chisq)``.
    formulas : dict of str to str
        Each model's formula, by name.
    refitted : tuple of str
        The models refitted by ML (empty when none was).
    data_name : str or None
        Printed as the ``Data:`` line.
    """

    table: pd.DataFrame
    formulas: dict
    refitted: tuple
    data_name: str | None = None

    @property
    def message(self) -> str | None:
        """lme4's message when REML fits were refitted by ML."""
        return _REFIT_MESSAGE if self.refitted else None

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (a copy)."""
        return self.table.copy()

    def lines(self) -> list:
        """The lines R prints."""
        out = [] if self.data_name is None else [f"Data: {self.data_name}"]
        out.append("Models:")
        out += [f"{name}: {formula}" for name, formula in self.formulas.items()]
        t = self.table
        pvalues = t["Pr(>Chisq)"].to_numpy(dtype=float)
        cols = [
            _integers(t["npar"]),
            *(format_real(_zapsmall(t[c], 5), 5) for c in ("AIC", "BIC", "logLik", "deviance")),
            _blank_na(t["Chisq"].to_numpy(dtype=float), lambda v: format_real(np.round(v, 4), 5)),
            _integers(t["Df"]),
            _blank_na(pvalues, _format_pvalues),
        ]
        has_stars = np.isfinite(pvalues).any()
        if has_stars:
            stars = [_stars(p) for p in pvalues]
            width = max(len(s) for s in stars)
            cols.append([s.ljust(width) for s in stars])
        names = list(t.index)
        labels = [*_COLUMNS, ""] if has_stars else list(_COLUMNS)
        widths = [max(len(label), *(len(v) for v in col)) for label, col in zip(labels, cols)]
        rw = max(len(n) for n in names)
        out.append(" " * rw + "".join(" " + label.rjust(w) for label, w in zip(labels, widths)))
        for i, name in enumerate(names):
            cells = "".join(" " + col[i].rjust(w) for col, w in zip(cols, widths))
            out.append(name.ljust(rw) + cells)
        if has_stars:
            out += ["---", "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table._repr_html_()


def _zapsmall(values, digits):
    """``zapsmall`` as this project's R (4.1-4.3) defines it, which ``print.anova``
    applies before formatting: rounded to ``digits − log10(max |x|)`` places, that
    number itself rounded (R's ``round`` takes the nearest whole number of places);
    ``report.rformat.zapsmall`` is R 4.4's, with the logarithm rounded up."""
    x = np.asarray(values, dtype=float)
    mx = np.max(np.abs(x[np.isfinite(x)]), initial=0.0)
    places = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return r_round(x, int(math.floor(places + 0.5)))


def _integers(values):
    return ["" if pd.isna(v) else str(int(v)) for v in values]


def _blank_na(values, fmt):
    """Formatted values with NA printed as nothing (``print.anova``'s ``na.print``)."""
    ok = np.isfinite(values)
    strings = iter(fmt(values[ok]) if ok.any() else [])
    return [next(strings).strip() if good else "" for good in ok]


def _format_pvalues(values):
    """R's ``format.pval(p, digits = 4)``: below machine epsilon ``< 2.2e-16``."""
    eps = np.finfo(float).eps
    small = values < eps
    out = [""] * len(values)
    rest = format_real(values[~small], digits=4) if (~small).any() else []
    it = iter(rest)
    for i, s in enumerate(small):
        out[i] = "< 2.2e-16" if s else next(it).strip()
    return out


def _stars(p):
    if not math.isfinite(p):
        return ""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return mark
    return " "


def _result_of(model, position):
    result = getattr(model, "result_", model)
    if not all(hasattr(result, a) for a in ("log_likelihood", "df", "formula", "terms")):
        raise TypeError(
            f"anova: model {position} is a {type(model).__name__}, not a fitted "
            "MixedLMRegressor or glmer fit (or its result_)."
        )
    return result


def _family(result):
    """A linear model's family is Gaussian; a GLMM's its own (lme4 refuses to compare
    log-likelihoods of different families)."""
    return getattr(result, "family", "gaussian"), getattr(result, "link", "identity")


def _log_likelihood(result):
    """lme4's ``logLik``: for a GLMM by quadrature, lme4's own value."""
    return getattr(result, "lme4_log_likelihood", result.log_likelihood)


def anova(*models, **kwargs):
    """R's ``anova``: of one fit, its F-tests per term (lmerTest's table); of several,
    likelihood-ratio tests between them (lme4's, :func:`compare_models`).

    Parameters
    ----------
    *models : fitted MixedLMRegressor or MixedLMResult
    **kwargs
        Passed on: ``type`` and ``ddf`` for one fit; ``names``, ``refit`` and
        ``data_name`` for several.

    Returns
    -------
    pandas.DataFrame or AnovaTable
    """
    if len(models) == 1:
        from . import _anova  # the F-tests of one fit (lmerTest's anova)

        return _anova.anova(models[0], **kwargs)
    return compare_models(*models, **kwargs)


def compare_models(*models, names=None, refit=True, data_name=None) -> AnovaTable:
    """Compare nested fits by likelihood-ratio tests (lme4's ``anova(m0, m1, ...)``).

    Parameters
    ----------
    *models : fitted MixedLMRegressor or MixedLMResult
        Two or more fits of the same data.
    names : sequence of str, optional
        Row names; lme4's generic ``MODEL1``, ``MODEL2``, ... by default.
    refit : bool, default=True
        Refit REML fits by maximum likelihood (lme4's default) and say so. With
        ``refit=False`` REML criteria are compared, which is allowed only between
        models with the same fixed effects.
    data_name : str, optional
        Printed as lme4's ``Data:`` line.

    Returns
    -------
    AnovaTable

    Raises
    ------
    ValueError
        Fewer than two models, models fitted to different data (another number of
        observations or another response), or REML fits with different fixed effects
        compared without a refit.
    NotNestedError
        Two models with the same number of parameters and different structures.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.inference import anova
    >>> from sklmixed.datasets import load_sleepstudy
    >>> sleep = load_sleepstudy().frame
    >>> m0 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    >>> m1 = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    >>> table = compare_models(m0, m1, names=["m0", "m1"])
    >>> float(round(table.table.loc["m1", "Chisq"], 3))
    42.139
    """
    if len(models) < 2:
        raise ValueError("compare_models needs at least two fitted models to compare.")
    results = [_result_of(m, i + 1) for i, m in enumerate(models)]
    names = [f"MODEL{i + 1}" for i in range(len(results))] if names is None else list(names)
    if len(names) != len(results) or len(set(names)) != len(names):
        raise ValueError(f"names: {len(results)} distinct names are needed; got {names!r}.")
    _check_same_data(results, names)
    families = {_family(r) for r in results}
    if len(families) > 1:
        raise ValueError(
            "anova: the models have different families or links ("
            + ", ".join(f"{n}: {'/'.join(_family(r))}" for n, r in zip(names, results))
            + "); their likelihoods are not comparable."
        )
    reml = [getattr(r, "method", None) == "REML" for r in results]
    refitted = ()
    if refit:
        refitted = tuple(n for n, is_reml in zip(names, reml) if is_reml)
        if refitted:
            exceptions.warn(_REFIT_MESSAGE, RefitWarning)
        deviances = [
            ml_refit(r).deviance if is_reml else -2.0 * _log_likelihood(r)
            for r, is_reml in zip(results, reml)
        ]
    else:
        if any(reml) and not all(reml):
            exceptions.warn("some models fit with REML = TRUE, some not", UserWarning)
        fixed = {tuple(r.fixed_effects.index) for r in results}
        if any(reml) and len(fixed) > 1:
            raise ValueError(
                "refit=False compares REML criteria, which are likelihoods of different "
                "data when the fixed effects differ (here: "
                + " vs ".join(f"{n}: {list(r.fixed_effects.index)}" for n, r in zip(names, results))
                + "). Use refit=True (lme4's default) to compare the ML fits."
            )
        deviances = [-2.0 * _log_likelihood(r) for r in results]
    npar = [int(r.df) for r in results]
    order = sorted(range(len(results)), key=lambda i: npar[i])  # stable, as R's order()
    _check_nested([results[i] for i in order], [names[i] for i in order], [npar[i] for i in order])
    n_obs = results[0].n_obs
    rows = []
    for k, i in enumerate(order):
        dev, p = deviances[i], npar[i]
        row = [p, dev + 2 * p, dev + math.log(n_obs) * p, -dev / 2, dev, np.nan, np.nan, np.nan]
        if k > 0:
            prev = order[k - 1]
            stat = max(0.0, deviances[prev] - dev)
            df = p - npar[prev]
            row[5:] = [stat, df, chi2.sf(stat, df) if df != 0 else np.nan]
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([names[i] for i in order]), columns=_COLUMNS)
    table["npar"] = table["npar"].astype(int)
    table["Df"] = table["Df"].astype("Int64")
    return AnovaTable(
        table=table,
        formulas={names[i]: results[i].formula for i in order},
        refitted=refitted,
        data_name=data_name,
    )


def _check_same_data(results, names):
    """Refuse fits of different data: another number of rows, or another response."""
    n = [r.n_obs for r in results]
    if len(set(n)) > 1:
        raise ValueError(
            "anova: the models were not all fitted to the same data: numbers of observations "
            + ", ".join(f"{name}: {k}" for name, k in zip(names, n))
            + " (missing values dropped in one model and not another?)."
        )
    y0 = _response(results[0])
    scale = float(np.abs(y0).max()) if y0.size else 0.0
    for name, r in zip(names[1:], results[1:]):
        y = _response(r)
        if y.shape != y0.shape:
            raise ValueError(f"anova: {names[0]} and {name} were fitted to different responses.")
        # y rebuilt from fitted values and residuals: equal to rounding, relative to y.
        if np.abs(y - y0).max() > 1e-8 * max(scale, 1e-300):
            raise ValueError(
                f"anova: {names[0]} and {name} were fitted to different responses; "
                "models compared by a likelihood-ratio test must share their data."
            )


def _response(result):
    """The response a model was fitted to (a GLMM keeps it; a linear model's is its
    fitted values plus residuals)."""
    y = getattr(result, "y", None)
    return np.asarray(result.fitted + result.residuals if y is None else y, dtype=float)


def _check_nested(results, names, npar):
    """Same number of parameters and another structure: not nested, no test."""
    for k in range(1, len(results)):
        a, b = results[k - 1], results[k]
        if npar[k] == npar[k - 1] and a.formula != b.formula:
            raise NotNestedError(
                f"anova: {names[k - 1]} ({a.formula}) and {names[k]} ({b.formula}) have the "
                f"same number of parameters ({npar[k]}) and different structures, so neither "
                "is nested in the other and a likelihood-ratio test does not apply; compare "
                "their AIC and BIC instead."
            )
        small, large = set(a.fixed_effects.index), set(b.fixed_effects.index)
        factors_a = {t.factor for t in a.terms}
        factors_b = {t.factor for t in b.terms}
        if not small <= large or not factors_a <= factors_b:
            exceptions.warn(
                f"anova: {names[k - 1]} does not look nested in {names[k]} (fixed effects "
                f"{sorted(small - large) or 'shared'}, grouping factors "
                f"{sorted(factors_a - factors_b) or 'shared'} are not in the larger model); "
                "the chi-squared test assumes the smaller model is a special case of the larger.",
                UserWarning,
            )
