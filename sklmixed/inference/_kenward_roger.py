"""Kenward–Roger: the adjusted covariance of β, its df and F scaling (pbkrtest's).

pbkrtest writes ``V = Σᵣ γᵣ Gᵣ`` linear in the covariance parameters γ (each entry
of each term's covariance, then σ²), with ``G`` = ``Z Eᵣ Zᵀ`` for a random-effects
entry and the identity for σ², and computes, with ``Φ = (XᵀV⁻¹X)⁻¹`` ::

    Pᵣ  = −XᵀV⁻¹GᵣV⁻¹X
    Qᵣₛ = XᵀV⁻¹GᵣV⁻¹GₛV⁻¹X
    Iᵣₛ = tr(V⁻¹GᵣV⁻¹Gₛ) − 2 tr(ΦQᵣₛ) + tr(ΦPᵣΦPₛ)    (twice the REML information)
    W   = 2 I⁻¹
    Φ_A = Φ + 2 Φ [Σᵣₛ Wᵣₛ (Qᵣₛ − PᵣΦPₛ)] Φ

pbkrtest forms ``V`` (``n × n``) and inverts it. Here every term is a sum over the
per-level blocks of :mod:`._blocks`: ``ZᵀV⁻¹Z``, ``ZᵀV⁻¹X`` and their analogues with
``W⁻¹`` between two ``V⁻¹`` (prior weights enter as ``G = W⁻¹`` for σ², which
pbkrtest, ignoring weights, takes as ``I``). The random-effects parameters are those
of the unit-scale columns; the adjusted covariance and the df do not depend on a
linear reparametrization of γ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _stats

from ._blocks import block_trace, cross, left, variance_blocks
from ._satterthwaite import _check_contrasts, _result_of, quadratic_forms, t_table

__all__ = ["KenwardRogerParts", "kenward_roger", "kenward_roger_parts"]

# pbkrtest inverts the information with a generalized inverse when its smallest
# absolute eigenvalue is at or below this.
_CONDITION_TOL = 1e-10


@dataclass(frozen=True)
class KenwardRogerParts:
    """pbkrtest's ``vcovAdj`` with its attributes.

    Attributes
    ----------
    vcov_beta : ndarray of shape (p, p)
        ``Φ``, the unadjusted covariance of β.
    vcov_adjusted : ndarray of shape (p, p)
        ``Φ_A``.
    P : ndarray of shape (k + 1, p, p)
        ``Pᵣ`` of each covariance parameter.
    W : ndarray of shape (k + 1, k + 1)
        Twice the inverse of the information.
    """

    vcov_beta: np.ndarray
    vcov_adjusted: np.ndarray
    P: np.ndarray
    W: np.ndarray

    def adjust(self, L):
        """pbkrtest's ``.KR_adjust`` for the hypothesis ``Lβ = 0``.

        Returns
        -------
        dict
            ``ddf``, ``F_scaling``, ``A1``, ``A2``, ``rank``.
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        Phi = self.vcov_beta
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        U = (Theta @ Phi) @ self.P @ Phi  # ΘΦPᵣΦ for each r
        traces = np.trace(U, axis1=1, axis2=2)
        A1 = float(traces @ self.W @ traces)
        k = U.shape[0]
        # tr(UᵣUₛ) for every pair: one product of the flattened matrices.
        products = U.reshape(k, -1) @ U.transpose(0, 2, 1).reshape(k, -1).T
        A2 = float(np.sum(self.W * products))
        q = int(np.linalg.matrix_rank(L))
        B = (A1 + 6.0 * A2) / (2.0 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denom = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        ratio = 1.0 if abs(1 - A2 / q) < 1e-14 and abs(V1) < 1e-14 else (1 - A2 / q) / V1
        rho = ratio**2 * V0 / V2 / q
        ddf = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
        return {"ddf": ddf, "F_scaling": scaling, "A1": A1, "A2": A2, "rank": q}


def kenward_roger_parts(model_or_result) -> KenwardRogerParts:
    """The Kenward–Roger adjusted covariance of the fixed effects (pbkrtest's ``vcovAdj``).

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A REML fit.

    Returns
    -------
    KenwardRogerParts

    Raises
    ------
    ValueError
        For an ML fit (Kenward–Roger is defined for REML; refit with
        ``method="REML"``).
    """
    result = _result_of(model_or_result)
    if result.method != "REML":
        raise ValueError(
            "Kenward-Roger's method is only available for REML fits; this model was "
            "fitted by ML (refit it with REML=True / method='REML')."
        )
    blocks = variance_blocks(result.fit.criterion, result.internal_theta(result.theta))
    s2 = float(result.sigma) ** 2
    M_inv = blocks.gls[0]
    Phi = s2 * M_inv
    p = blocks.p
    B0 = blocks.ZVZ()
    U = blocks.ZVN()[:, :, :p]
    ZX2 = blocks.ZVN(2)[:, :, :p]
    ZZ2 = blocks.ZVZ(2)
    XX2 = blocks.XVX(2)[:p, :p]
    XX3 = blocks.XVX(3)[:p, :p]
    E = blocks.cov_patterns
    k = len(E)
    EU = [left(E[r], U) for r in range(k)]
    EB = [left(E[r], B0) for r in range(k)]

    # Everything below on the Ṽ scale; V⁻¹ = Ṽ⁻¹/σ² gives the powers of σ².
    P = np.empty((k + 1, p, p))
    for r in range(k):
        P[r] = -cross(U, EU[r]) / s2**2
    P[k] = -XX2 / s2**2
    Q = {}
    for r in range(k):
        for s in range(r, k):
            Q[r, s] = cross(EU[r], B0 @ EU[s]) / s2**3
        Q[r, k] = cross(EU[r], ZX2) / s2**3
    Q[k, k] = XX3 / s2**3
    K = np.empty((k + 1, k + 1))
    for r in range(k):
        for s in range(r, k):
            K[r, s] = K[s, r] = block_trace(EB[r], EB[s]) / s2**2
        K[r, k] = K[k, r] = float(np.sum(left(E[r], ZZ2).diagonal(axis1=1, axis2=2))) / s2**2
    n = float(blocks.n_obs)
    K[k, k] = (n - blocks.n_columns + blocks.trace_C_inv2()) / s2**2

    info = np.empty((k + 1, k + 1))
    for r in range(k + 1):
        PhiP = Phi @ P[r]
        for s in range(r, k + 1):
            info[r, s] = info[s, r] = (
                K[r, s] - 2.0 * float(np.sum(Phi * Q[r, s])) + float(np.sum(PhiP * (P[s] @ Phi)))
            )
    if np.abs(np.linalg.eigvalsh(info)).min() > _CONDITION_TOL:
        W = 2.0 * np.linalg.inv(info)
    else:
        W = 2.0 * np.linalg.pinv(info)
    W = (W + W.T) / 2.0
    UU = np.zeros((p, p))
    for r in range(k + 1):
        for s in range(r + 1, k + 1):
            UU += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    UU = UU + UU.T
    for r in range(k + 1):
        UU += W[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
    adjusted = Phi + 2.0 * Phi @ UU @ Phi
    return KenwardRogerParts(Phi, adjusted, P, W)


def kenward_roger(model_or_result, L=None) -> pd.DataFrame:
    """t-tests with Kenward–Roger's df and adjusted standard errors.

    lmerTest's ``summary(fit, ddf = "Kenward-Roger")`` table for the default ``L``,
    its ``contest1D(..., ddf = "Kenward-Roger")`` for given contrasts.

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A REML fit.
    L : array-like of shape (r, p) or (p,), default=None
        Contrasts, one per row; default one test per fixed effect.

    Returns
    -------
    pandas.DataFrame
        Columns ``Estimate``, ``Std. Error`` (from the adjusted covariance), ``df``,
        ``t value``, ``Pr(>|t|)``.

    Raises
    ------
    ValueError
        For an ML fit.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_sleepstudy
    >>> from sklmixed.inference import kenward_roger
    >>> fit = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy().frame)
    >>> kenward_roger(fit)["df"].round(2)
    (Intercept)    17.0
    Days           17.0
    Name: df, dtype: float64
    """
    result = _result_of(model_or_result)
    beta = result.fixed_effects
    index = beta.index if L is None else None
    L = np.eye(beta.size) if L is None else _check_contrasts(L, beta.size)
    parts = kenward_roger_parts(result)
    df = np.array([parts.adjust(row[None])["ddf"] for row in L])
    variance = quadratic_forms(L, parts.vcov_adjusted)
    return t_table(L @ beta.to_numpy(), variance, df, index)


def kenward_roger_f(model_or_result, L, parts=None, rhs=0.0) -> dict:
    """pbkrtest's ``KRmodcomp`` of ``Lβ = rhs``: F (scaled and not), its df and p-value.

    Parameters
    ----------
    model_or_result : MixedLMRegressor or MixedLMResult
        A REML fit.
    L : array-like of shape (r, p)
    parts : KenwardRogerParts, default=None
        Computed when not given.
    rhs : float or array-like of shape (r,), default=0

    Returns
    -------
    dict
        ``F``, ``F_unscaled``, ``F_scaling``, ``ndf``, ``ddf``, ``p_value``.
    """
    result = _result_of(model_or_result)
    L = _check_contrasts(L, result.fixed_effects.size)
    parts = kenward_roger_parts(result) if parts is None else parts
    out = parts.adjust(L)
    beta = result.fixed_effects.to_numpy()
    rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],))
    if np.any(rhs != 0):
        beta = beta - np.linalg.pinv(L) @ rhs  # pbkrtest's betaH
    Lb = L @ beta
    wald = float(Lb @ np.linalg.solve(L @ parts.vcov_adjusted @ L.T, Lb))
    q = out["rank"]
    F_unscaled = wald / q
    F = out["F_scaling"] * F_unscaled
    return {
        "F": F,
        "F_unscaled": F_unscaled,
        "F_scaling": out["F_scaling"],
        "ndf": q,
        "ddf": out["ddf"],
        "p_value": float(_stats.f.sf(F, q, out["ddf"])),
    }
