"""Profiled deviance and REML criterion as functions of θ, and the solution at a θ.

With β and σ profiled out (Bates et al. 2015, eqs. 34 and 41)::

    ML:    d(θ)   = log|L_Z|² − Σ log w + n (1 + log(2π r²/n))
    REML:  d_R(θ) = log|L_Z|² − Σ log w + log|R_X|² + (n − p)(1 + log(2π r²/(n − p)))

where ``r²`` is the penalized weighted residual sum of squares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dtrtri as _trtri
from scipy.linalg.lapack import dtrtrs as _trtrs

from .blocks import (
    BlockedFactor,
    CrossProducts,
    _apply_lambda,
    _apply_lambda_t,
    _congruence,
    factorize,
    fill_in_quadratic_forms,
    inverse_lower,
    inverse_lower_levels,
    second_block_inverse,
)

__all__ = [
    "objective",
    "criterion_from_parts",
    "deviance_from_factor",
    "fixed_effects_from_factor",
    "Solution",
    "solve",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def criterion_from_parts(logdet_L, logdet_RX, pwrss, cp, reml: bool, log=math.log):
    """The profiled criterion (−2 log-likelihood) from ``log|L_Z|²``, ``log|R_X|²`` and
    r² > 0; with ``log=np.log`` the parts may be arrays (one entry per θ)."""
    n, p = cp.n_obs, cp.n_fixed
    dev = logdet_L - cp.sum_log_weights
    if reml:
        nmp = n - p
        return dev + logdet_RX + nmp * (1.0 + _LOG_2PI + log(pwrss / nmp))
    return dev + n * (1.0 + _LOG_2PI + log(pwrss / n))


def deviance_from_factor(factor: BlockedFactor, cp: CrossProducts, reml: bool) -> float:
    """The profiled criterion (−2 log-likelihood) from an updated factor."""
    pwrss = factor.pwrss
    if pwrss <= 0.0:  # an exact fit (the last pivot clamped at 0)
        return -np.inf
    logdet_RX = factor.logdet_RX if reml else 0.0
    return criterion_from_parts(factor.logdet_L, logdet_RX, pwrss, cp, reml)


def objective(theta, cp: CrossProducts, terms, reml: bool) -> float:
    """The profiled deviance (``reml=False``) or REML criterion at θ.

    Where rounding makes a Schur complement lose positive definiteness (θ so large
    that the random effects absorb a fixed-effect column, say), the criterion is
    reported as +inf so that the optimizer steps back.
    """
    try:
        factor = factorize(cp, terms, theta)
    except np.linalg.LinAlgError:
        return np.inf
    return deviance_from_factor(factor, cp, reml)


@dataclass(frozen=True)
class Solution:
    """Everything lme4 reports at one θ.

    Attributes
    ----------
    beta : ndarray of shape (p,)
        Fixed effects (of the response the cross-products were built from).
    beta_cov : ndarray of shape (p, p)
        ``σ² (R_Xᵀ R_X)⁻¹``.
    sigma : float
        Residual standard deviation (REML or ML estimate).
    modes : list of ndarray of shape (n_levels, q)
        Conditional modes ``b = Λ u`` of each term.
    cond_cov : list of ndarray of shape (n_levels, q, q) or None
        Conditional covariance of each level's modes (lme4's ``condVar``); None when
        too large to compute.
    deviance : float
        The criterion at θ (REML or ML as fitted).
    ml_deviance : float
        The ML deviance at θ (lme4's ``deviance(fit, REML = FALSE)``).
    pwrss, logdet_L, logdet_RX : float
        Parts of the criterion.
    """

    beta: np.ndarray
    beta_cov: np.ndarray
    sigma: float
    modes: list
    cond_cov: list | None
    deviance: float
    ml_deviance: float
    pwrss: float
    logdet_L: float
    logdet_RX: float


def fixed_effects_from_factor(factor: BlockedFactor, n, p, reml):
    """β, its covariance ``σ² (R_Xᵀ R_X)⁻¹`` and σ² from the ``[X y]`` block of ``L``."""
    L33 = factor.L33
    sigma2 = factor.pwrss / (n - p if reml else n)
    if p == 0:
        return np.zeros(0), np.zeros((0, 0)), sigma2
    # LAPACK directly: scipy's solve_triangular costs ten times more on blocks this small.
    RX = L33[:p, :p]
    beta, info = _trtrs(RX, L33[p, :p], lower=1, trans=1)
    RX_inv, info_inv = _trtri(RX, lower=1)
    if info or info_inv:
        raise np.linalg.LinAlgError("R_X is singular")
    return beta, sigma2 * (RX_inv.T @ RX_inv), sigma2


# Above this many entries the dense Q₂ × Q₁ matrix behind the first factor's
# conditional covariances is not formed.
_MAX_COND_COV_ENTRIES = 20_000_000


def solve(theta, cp: CrossProducts, terms, reml: bool) -> Solution:
    """β, σ, the conditional modes and their covariances at θ."""
    factor = factorize(cp, terms, theta)
    n, p = cp.n_obs, cp.n_fixed
    beta, beta_cov, sigma2 = fixed_effects_from_factor(factor, n, p, reml)

    # Back-substitution through L' for the spherical modes u, then b = Λu.
    resid_coef = np.append(-beta, 1.0)
    T = factor.T
    first = terms[0]
    m1, q1 = first.n_levels, first.q
    c1 = (factor.L31t @ resid_coef).reshape(m1, q1)
    modes = [None] * len(terms)
    if cp.has_second_block:
        u2 = scipy.linalg.solve_triangular(
            factor.L22.T, factor.L32t @ resid_coef, lower=False, check_finite=False
        )
        # L₂₁ᵀ u₂ = Gᵀ Λ₂ u₂
        c1 = c1 - (factor.G.T @ _apply_lambda(u2[:, None], terms[1:], T[1:]))[:, 0].reshape(m1, q1)
        b2 = _apply_lambda(u2[:, None], terms[1:], T[1:])[:, 0]
        start = 0
        for j, term in enumerate(terms[1:], start=1):
            stop = start + term.n_levels * term.q
            modes[j] = b2[start:stop].reshape(term.n_levels, term.q)
            start = stop
    modes[0] = _back_substitute_levels(factor.L11_entries, c1.T).T @ T[0].T

    crit = deviance_from_factor(factor, cp, reml)
    return Solution(
        beta=beta,
        beta_cov=beta_cov,
        sigma=float(np.sqrt(sigma2)),
        modes=modes,
        cond_cov=_conditional_covariances(factor, cp, terms, sigma2),
        deviance=crit,
        ml_deviance=deviance_from_factor(factor, cp, False),
        pwrss=factor.pwrss,
        logdet_L=factor.logdet_L,
        logdet_RX=factor.logdet_RX,
    )


def _back_substitute_levels(L, c):
    """``L⁻ᵀ c`` per level, for ``L`` (q, q, m) lower triangular levels last and ``c`` (q, m)."""
    q = L.shape[0]
    u = np.empty_like(c)
    for i in range(q - 1, -1, -1):
        u[i] = (c[i] - np.einsum("jm,jm->m", L[i + 1 :, i], u[i + 1 :])) / L[i, i]
    return u


def _conditional_covariances(factor: BlockedFactor, cp, terms, sigma2):
    """Diagonal blocks of ``σ² Λ (L_Z L_Zᵀ)⁻¹ Λᵀ``, one ``q × q`` block per level."""
    T = factor.T
    if not cp.has_second_block:
        # Levels last (see CrossProducts): T L⁻ᵀ L⁻¹ Tᵀ per level as a few products.
        L_inv = inverse_lower_levels(factor.L11_entries)
        V = np.einsum("bam,bcm->acm", L_inv, L_inv)
        return [sigma2 * _congruence(T[0].T, V).transpose(2, 0, 1)]
    L11_inv = inverse_lower(factor.L11)  # (m1, q1, q1)
    V1 = L11_inv.transpose(0, 2, 1) @ L11_inv
    Q2, Q1 = factor.G.shape
    m1, q1 = terms[0].n_levels, terms[0].q
    # Column block i of L⁻¹ for factor 1 is [L₁₁,ᵢ⁻¹ ; −L₂₂⁻¹ L₂₁ Eᵢ L₁₁,ᵢ⁻¹], so level i
    # adds L₁₁,ᵢ⁻ᵀ (L₂₁ Eᵢ)ᵀ S₂₂⁻¹ (L₂₁ Eᵢ) L₁₁,ᵢ⁻¹.
    S22_inv = second_block_inverse(factor.L22)
    fill = fill_in_quadratic_forms(cp, factor, terms[1:], S22_inv)
    if fill is None:
        if Q2 * Q1 > _MAX_COND_COV_ENTRIES:
            return None
        L21 = _apply_lambda_t(factor.G.toarray(), terms[1:], T[1:])
        H = scipy.linalg.solve_triangular(factor.L22, L21, lower=True, check_finite=False)
        H = H.reshape(Q2, m1, q1)
        fill = np.einsum("rma,rmb->mab", H, H)
    V1 = V1 + L11_inv.transpose(0, 2, 1) @ fill @ L11_inv
    out = [sigma2 * (T[0] @ V1 @ T[0].T)]
    start = 0
    for term, Tj in zip(terms[1:], T[1:]):
        # Diagonal q × q blocks of S₂₂⁻¹ for this term's levels.
        idx = start + np.arange(term.n_levels * term.q).reshape(term.n_levels, term.q)
        Vj = S22_inv[idx[:, :, None], idx[:, None, :]]
        out.append(sigma2 * (Tj @ Vj @ Tj.T))
        start += idx.size
    return out
