"""Tests of contrasts ``Lβ = rhs``: lmerTest's ``contest`` (t for one row, F for several).

For several rows lmerTest rotates the contrasts to the eigenvectors of ``L Vβ Lᵀ``:
the rotated contrasts are uncorrelated, each has Satterthwaite's df ``νₘ``, and the
F statistic's denominator df match the mean of the sum of their squared t statistics,
``2E/(E − q)`` with ``E = Σ νₘ/(νₘ − 2)`` (2 when some ``νₘ ≤ 2``). Kenward–Roger's F
is pbkrtest's ``KRmodcomp``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _stats

from ._kenward_roger import kenward_roger, kenward_roger_f, kenward_roger_parts
from ._satterthwaite import (
    _check_contrasts,
    _result_of,
    quadratic_forms,
    satterthwaite_parts,
    t_table,
)

__all__ = ["contest", "f_table"]

_DDF = ("Satterthwaite", "Kenward-Roger")
# lmerTest's rank tolerance on the eigenvalues of L Vβ Lᵀ, relative to the largest.
_RANK_EPS = float(np.sqrt(np.finfo(float).eps))
# Rotated contrasts whose df differ by less than this share one df (their mean).
_SAME_DF = 1e-8


def contest(model_or_result, L, rhs=0.0, ddf="Satterthwaite", joint=True) -> pd.DataFrame:
    """Test contrasts of the fixed effects, as lmerTest's ``contest``.

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A fitted linear mixed model (REML for ``ddf="Kenward-Roger"``).
    L : array-like of shape (r, p) or (p,)
        Contrasts, one per row, columns in the order of ``fixed_effects_``.
    rhs : float or array-like of shape (r,), default=0
        The hypothesized values of ``Lβ``.
    ddf : {"Satterthwaite", "Kenward-Roger"}, default="Satterthwaite"
        Denominator degrees of freedom.
    joint : bool, default=True
        One F-test of all rows (lmerTest's ``contestMD``); False: a t-test of each
        row (``contest1D``).

    Returns
    -------
    pandas.DataFrame
        ``joint=True``: one row, columns ``Sum Sq``, ``Mean Sq``, ``NumDF``,
        ``DenDF``, ``F value``, ``Pr(>F)``. ``joint=False``: one row per contrast,
        columns ``Estimate``, ``Std. Error``, ``df``, ``t value``, ``Pr(>|t|)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_exam
    >>> from sklmixed.inference import contest
    >>> fit = lmer("normexam ~ standLRT + schavg + (1 + standLRT | school)",
    ...            load_exam().frame)
    >>> table = contest(fit, np.eye(3)[1:])  # standLRT = schavg = 0
    >>> list(table.columns)
    ['Sum Sq', 'Mean Sq', 'NumDF', 'DenDF', 'F value', 'Pr(>F)']
    """
    if ddf not in _DDF:
        raise ValueError(f"ddf must be one of {list(_DDF)}; got {ddf!r}.")
    result = _result_of(model_or_result)
    beta = result.fixed_effects.to_numpy()
    L = _check_contrasts(L, beta.size)
    rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],)).copy()
    if not joint:
        if ddf == "Kenward-Roger":
            table = kenward_roger(result, L)
        else:
            parts = satterthwaite_parts(result)
            variance = quadratic_forms(L, parts.vcov_beta)
            table = t_table(L @ beta, variance, parts.df(L))
        se = table["Std. Error"].to_numpy()
        t = (table["Estimate"].to_numpy() - rhs) / se
        table["t value"] = t
        table["Pr(>|t|)"] = 2.0 * _stats.t.sf(np.abs(t), table["df"].to_numpy())
        return table
    sigma = float(result.sigma)
    if L.shape[0] == 0:  # nothing to test (a term whose columns are all aliased)
        return f_table(np.nan, np.nan, np.nan, sigma)
    if ddf == "Kenward-Roger":
        out = kenward_roger_f(result, L, kenward_roger_parts(result), rhs=rhs)
        return f_table(out["F_unscaled"], out["ndf"], out["ddf"], sigma, out["F_scaling"])
    parts = satterthwaite_parts(result)
    if np.any(rhs != 0):
        beta = beta - np.linalg.pinv(L) @ rhs
    d, P = np.linalg.eigh(L @ parts.vcov_beta @ L.T)
    d, P = d[::-1], P[:, ::-1]  # R's eigen: decreasing
    q = int((d > max(_RANK_EPS * d[0], 0.0)).sum())
    if q == 0:
        return f_table(np.nan, 0, np.nan, sigma)
    PtL = P[:, :q].T @ L
    nu = parts.df(PtL)
    F = float(((PtL @ beta) ** 2 / d[:q]).sum() / q)
    return f_table(F, q, f_ddf(nu), sigma)


def f_ddf(nu) -> float:
    """lmerTest's denominator df of an F statistic from the df of its rotated t's."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < _SAME_DF):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float((nu / (nu - 2)).sum())
    return 2.0 * E / (E - nu.size)


def f_table(F, ndf, ddf, sigma, F_scaling=1.0, index=None) -> pd.DataFrame:
    """lmerTest's F table: sums of squares on σ²'s scale, F (scaled) and its p-value."""
    mean_sq = F * sigma**2
    F = F * F_scaling
    p = float(_stats.f.sf(F, ndf, ddf)) if ndf > 0 else np.nan  # NaN stays NaN
    return pd.DataFrame(
        {
            "Sum Sq": [mean_sq * ndf],
            "Mean Sq": [mean_sq],
            "NumDF": [ndf],
            "DenDF": [ddf],
            "F value": [F],
            "Pr(>F)": [p],
        },
        index=index,
    )
