"""Satterthwaite's denominator df, as lmerTest computes them, with exact derivatives.

lmerTest takes the variance parameters ``φ = (θ, σ)`` (lme4's θ and units), the
covariance of the fixed effects ``Vβ(φ) = σ² (XᵀṼ⁻¹X)⁻¹`` and the deviance ``d(φ)``
(−2 log-likelihood, REML or ML as fitted, β profiled). The asymptotic covariance of
φ̂ is ``A = 2 H⁻¹`` with ``H`` the Hessian of ``d`` at the fit, and for a contrast
``l`` the df are ::

    ν = 2 (lᵀVβl)² / (gᵀ A g),    gᵢ = lᵀ (∂Vβ/∂φᵢ) l.

lmerTest differentiates ``d`` and ``Vβ`` numerically (Richardson extrapolation).
Here both are exact: with ``V = σ²(ZΛΛᵀZᵀ + W⁻¹)`` linear in the entries of
``ΛΛᵀ`` and ``P`` the REML projection, ::

    ∂²d/∂φᵢ∂φⱼ = tr(P Vᵢⱼ) − tr(P Vᵢ P Vⱼ) + 2 yᵀP Vᵢ P Vⱼ P y − yᵀP Vᵢⱼ P y

(ML: ``V⁻¹`` in the two traces), with ``Vᵢ = σ² Z Dᵢ Zᵀ``,
``Dᵢ = ΛᵢΛᵀ + ΛΛᵢᵀ`` and ``Dᵢⱼ = ΛᵢΛⱼᵀ + ΛⱼΛᵢᵀ`` for θ and ``V_σ = 2V/σ``. Every
trace reduces, through ``ZᵀP̃Z = ZᵀṼ⁻¹Z − ZᵀṼ⁻¹X (XᵀṼ⁻¹X)⁻¹ XᵀṼ⁻¹Z``, to sums over
the per-level blocks of :mod:`._blocks` plus ``p × p`` products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .. import exceptions
from ._blocks import block_trace, cross, left, variance_blocks

__all__ = [
    "SatterthwaiteParts", "quadratic_forms", "satterthwaite", "satterthwaite_parts",
    "satterthwaite_df",
]

# lmerTest's tolerance on the eigenvalues of the Hessian: smaller ones are dropped
# from its inverse (and reported), as in lmerTest's as_lmerModLT.
_EIGEN_TOL = 1e-8


@dataclass(frozen=True)
class SatterthwaiteParts:
    """What Satterthwaite's df of any contrast are computed from.

    Attributes
    ----------
    names : tuple of str
        The variance parameters: lme4's θ names, then ``"sigma"``.
    vcov_beta : ndarray of shape (p, p)
        ``Vβ``.
    jacobian : ndarray of shape (k + 1, p, p)
        ``∂Vβ/∂φᵢ`` for each variance parameter.
    hessian : ndarray of shape (k + 1, k + 1)
        Hessian of the deviance in ``φ = (θ, σ)``.
    vcov_varpar : ndarray of shape (k + 1, k + 1)
        ``2 H⁺``: the inverse over the eigenvalues above lmerTest's tolerance.
    """

    names: tuple
    vcov_beta: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray

    def df(self, L) -> np.ndarray:
        """Satterthwaite's df of each row of ``L`` (shape (r, p)) as a t-test."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        var = quadratic_forms(L, self.vcov_beta)
        grad = ((L @ self.jacobian) * L).sum(axis=-1).T  # lᵀ (∂Vβ/∂φₖ) l
        denom = quadratic_forms(grad, self.vcov_varpar)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 * var**2 / denom


def _result_of(model_or_result):
    """The :class:`~sklmixed.result.MixedLMResult` of a fitted estimator or a result."""
    result = getattr(model_or_result, "result_", model_or_result)
    if not hasattr(result, "fit") or not hasattr(result, "theta_order"):
        raise TypeError(
            "Expected a fitted MixedLMRegressor (or lmer() model) or its result_, got "
            f"{type(model_or_result).__name__}."
        )
    return result


def satterthwaite_parts(model_or_result, warn=True) -> SatterthwaiteParts:
    """The Jacobian of ``Vβ`` and the Hessian of the deviance at the fit, exactly.

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A fitted linear mixed model.
    warn : bool, default=True
        Warn, as lmerTest does, when the Hessian has negative eigenvalues (not a
        minimum) or eigenvalues near zero (a singular fit, or a flat direction).

    Returns
    -------
    SatterthwaiteParts
    """
    result = _result_of(model_or_result)
    crit = result.fit.criterion
    blocks = variance_blocks(crit, result.internal_theta(result.theta))
    sigma = float(result.sigma)
    hess_int, jac_int = _exact_derivatives(blocks, sigma, crit.reml)
    # lme4's θ: θ_internal[o_j] = θ_j · scale[o_j].
    order = result.theta_order
    scale = np.append(result.theta_scale[order], 1.0)
    index = np.append(order, len(order))
    hessian = hess_int[np.ix_(index, index)] * np.outer(scale, scale)
    jacobian = jac_int[index] * scale[:, None, None]
    evals, evecs = np.linalg.eigh(hessian)
    if warn:
        _warn_about_eigenvalues(evals)
    pos = evals > _EIGEN_TOL
    vcov_varpar = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    return SatterthwaiteParts(
        names=tuple(result.theta_names) + ("sigma",),
        vcov_beta=result.fixed_effects_cov.to_numpy(),
        jacobian=jacobian,
        hessian=hessian,
        vcov_varpar=vcov_varpar,
    )


def _warn_about_eigenvalues(evals):
    """lmerTest's warnings on the Hessian of the deviance."""
    neg = evals < -_EIGEN_TOL
    zero = np.abs(evals) <= _EIGEN_TOL
    for mask, text in ((neg, "negative"), (zero, "close to zero")):
        k = int(mask.sum())
        if k:
            values = " ".join(f"{v:.1e}" for v in evals[mask])
            noun = "eigenvalues" if k > 1 else "eigenvalue"
            verb = "failed to converge" if text == "negative" else "may not have converged"
            exceptions.warn(
                f"Model {verb} with {k} {text} {noun} of the deviance's Hessian: {values}. "
                "Satterthwaite's df leave these directions out.",
                exceptions.SingularFitWarning,
            )


def _exact_derivatives(blocks, sigma, reml):
    """Hessian of the deviance and Jacobian of ``Vβ`` in the fit's θ (then σ)."""
    M_inv, e, pwrss = blocks.gls
    p = blocks.p
    n = float(blocks.n_obs)
    B0 = blocks.ZVZ()  # ZᵀṼ⁻¹Z per level
    Ux = blocks.ZVN()[:, :, :p]  # ZᵀṼ⁻¹X per level
    Lam, dLam = blocks.Lam, blocks.dLam
    k = len(dLam)
    s2 = sigma * sigma
    B_sum = B0.sum(axis=0)

    D = [dLam[a] @ Lam.T + Lam @ dLam[a].T for a in range(k)]
    DU = [left(D[a], Ux) for a in range(k)]  # (m, q, p)
    De = [left(D[a], e[:, :, None])[:, :, 0] for a in range(k)]
    F = [cross(Ux, DU[a]) for a in range(k)]  # UxᵀDUx
    u = [cross(Ux, De[a][:, :, None])[:, 0] for a in range(k)]  # UxᵀDe
    B0DU = [B0 @ DU[b] for b in range(k)]
    B0De = [(B0 @ De[b][:, :, None])[:, :, 0] for b in range(k)]
    DB = [left(D[a], B0) for a in range(k)]

    H = np.zeros((k + 1, k + 1))
    for a in range(k):
        for b in range(a, k):
            Dab = dLam[a] @ dLam[b].T + dLam[b] @ dLam[a].T
            trace_Dab = float((Dab * B_sum).sum())  # B_sum symmetric
            t1 = block_trace(DB[a], DB[b])
            DabU = left(Dab, Ux)
            if reml:
                F_ab = cross(Ux, DabU)
                G_ab = cross(DU[a], B0DU[b])
                trace_Dab -= float(np.sum(M_inv * F_ab))
                t1 += -2.0 * float(np.sum(M_inv * G_ab)) + float(
                    np.sum((M_inv @ F[a]) * (M_inv @ F[b]).T)
                )
            eDBDe = float(np.sum(De[a] * B0De[b])) - u[a] @ M_inv @ u[b]
            eDabe = float(np.sum(e * left(Dab, e[:, :, None])[:, :, 0]))
            H[a, b] = H[b, a] = trace_Dab - t1 + (2.0 * eDBDe - eDabe) / s2
        H[a, k] = H[k, a] = 2.0 * float(np.sum(e * De[a])) / sigma**3
    dof = n - p if reml else n
    H[k, k] = -2.0 * dof / s2 + 6.0 * pwrss / s2**2

    jac = np.empty((k + 1, p, p))
    for a in range(k):
        jac[a] = s2 * M_inv @ F[a] @ M_inv
    jac[k] = 2.0 * sigma * M_inv
    return H, jac


def satterthwaite_df(model_or_result, L) -> np.ndarray:
    """Satterthwaite's df of each row of ``L`` as a t-test (lmerTest's ``contest1D``).

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
    L : array-like of shape (r, p) or (p,)

    Returns
    -------
    ndarray of shape (r,)
    """
    return satterthwaite_parts(model_or_result).df(L)


def satterthwaite(model_or_result, L=None) -> pd.DataFrame:
    """t-tests with Satterthwaite's df: lmerTest's ``summary`` table or ``contest1D``.

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A fitted linear mixed model (REML or ML).
    L : array-like of shape (r, p) or (p,), default=None
        Contrasts of the fixed effects, one per row (columns in the order of
        ``fixed_effects_``); default the identity: one test per fixed effect.

    Returns
    -------
    pandas.DataFrame
        Columns ``Estimate``, ``Std. Error``, ``df``, ``t value``, ``Pr(>|t|)`` (the
        two-sided p-value of ``lβ = 0``), one row per contrast (indexed by the fixed
        effects' names for the default ``L``).

    Warns
    -----
    SingularFitWarning
        When the Hessian of the deviance has eigenvalues near zero or negative (what
        lmerTest warns of): a singular fit, or one that did not converge.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_sleepstudy
    >>> fit = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy().frame)
    >>> from sklmixed.inference import satterthwaite
    >>> satterthwaite(fit)["df"].round(2)
    (Intercept)    17.0
    Days           17.0
    Name: df, dtype: float64
    """
    result = _result_of(model_or_result)
    beta = result.fixed_effects
    index = beta.index
    if L is None:
        L = np.eye(beta.size)
    else:
        L = _check_contrasts(L, beta.size)
        index = None
    parts = satterthwaite_parts(result)
    return t_table(L @ beta.to_numpy(), quadratic_forms(L, parts.vcov_beta), parts.df(L), index)


def quadratic_forms(L, A) -> np.ndarray:
    """``lᵀAl`` for each row ``l`` of ``L``."""
    return ((L @ A) * L).sum(axis=1)


def t_table(estimate, variance, df, index=None) -> pd.DataFrame:
    """lmerTest's t-table: estimate, standard error, df, t and its two-sided p-value."""
    se = np.sqrt(variance)
    t = estimate / se
    return pd.DataFrame(
        {
            "Estimate": estimate,
            "Std. Error": se,
            "df": df,
            "t value": t,
            "Pr(>|t|)": 2.0 * _stats.t.sf(np.abs(t), df),
        },
        index=index,
    )


def _check_contrasts(L, p):
    """``L`` as a float (r, p) array, or a clear error."""
    L = np.asarray(L, dtype=float)
    if L.ndim == 1:
        L = L[None, :]
    if L.ndim != 2 or L.shape[1] != p:
        raise ValueError(f"L must have one column per fixed effect ({p}); got shape {L.shape}.")
    if not np.isfinite(L).all():
        raise ValueError("L has missing or infinite entries.")
    return L
