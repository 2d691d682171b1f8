"""The solution at one θ: β, σ, the conditional modes and their covariances.

Everything lme4 reports once θ is fixed is read from the blocked factor at θ: β and
σ² from its ``[X y]`` block, the spherical modes ``u`` by back-substitution (then
``b = Λu``), and each level's conditional covariance from the diagonal blocks of
``σ² Λ (L_Z L_Zᵀ)⁻¹ Λᵀ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dtrtri as _trtri
from scipy.linalg.lapack import dtrtrs as _trtrs

from .factor import BlockedFactor, fill_in_quadratic_forms
from .kernels import (
    apply_lambda,
    back_substitute_levels,
    congruence,
    inverse_lower,
    inverse_lower_levels,
    second_block_inverse,
)

__all__ = [
    "Solution",
    "conditional_modes",
    "fixed_effects_from_factor",
    "solution_from_factor",
    "spherical_modes",
]


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


def solution_from_factor(factor: BlockedFactor, cp, terms, reml, deviance, ml_deviance):
    """β, σ, the conditional modes and their covariances from the factor at θ.

    Parameters
    ----------
    factor : BlockedFactor
        The factor at θ.
    cp : CrossProducts
    terms : sequence of TermLayout
    reml : bool
    deviance, ml_deviance : float
        The criterion at θ as fitted, and the ML deviance (the criterion's to say).

    Returns
    -------
    Solution
    """
    n, p = cp.n_obs, cp.n_fixed
    beta, beta_cov, sigma2 = fixed_effects_from_factor(factor, n, p, reml)
    return Solution(
        beta=beta,
        beta_cov=beta_cov,
        sigma=float(np.sqrt(sigma2)),
        modes=conditional_modes(factor, cp, terms, beta),
        cond_cov=_conditional_covariances(factor, cp, terms, sigma2) if terms else [],
        deviance=deviance,
        ml_deviance=ml_deviance,
        pwrss=factor.pwrss,
        logdet_L=factor.logdet_L,
        logdet_RX=factor.logdet_RX,
    )


def conditional_modes(factor: BlockedFactor, cp, terms, beta):
    """The conditional modes ``b = Λu`` of each term (see :func:`spherical_modes`)."""
    if not terms:
        return []
    return [u @ Tj.T for u, Tj in zip(spherical_modes(factor, cp, terms, beta), factor.T)]


def spherical_modes(factor: BlockedFactor, cp, terms, beta):
    """The spherical modes ``u`` of each term, shape (n_levels, q) each, by
    back-substitution through ``Lᵀ`` for the coefficients ``(−β, 1)`` of ``[X y]``
    (PIRLS reads ``u`` itself: ``Λ`` may be singular)."""
    if not terms:
        return []
    resid_coef = np.append(-beta, 1.0)
    T = factor.T
    first = terms[0]
    m1, q1 = first.n_levels, first.q
    c1 = (factor.L31t @ resid_coef).reshape(m1, q1)
    out = [None] * len(terms)
    if cp.has_second_block:
        u2 = scipy.linalg.solve_triangular(
            factor.L22.T, factor.L32t @ resid_coef, lower=False, check_finite=False
        )
        # L₂₁ᵀ u₂ = Gᵀ Λ₂ u₂
        b2 = apply_lambda(u2[:, None], terms[1:], T[1:])[:, 0]
        c1 = c1 - (factor.G.T @ b2).reshape(m1, q1)
        start = 0
        for j, term in enumerate(terms[1:], start=1):
            stop = start + term.n_levels * term.q
            out[j] = u2[start:stop].reshape(term.n_levels, term.q)
            start = stop
    out[0] = back_substitute_levels(factor.L11_entries, c1.T).T
    return out


def _conditional_covariances(factor: BlockedFactor, cp, terms, sigma2):
    """Diagonal blocks of ``σ² Λ (L_Z L_Zᵀ)⁻¹ Λᵀ``, one ``q × q`` block per level."""
    T = factor.T
    if not cp.has_second_block:
        # Levels last (see CrossProducts): T L⁻ᵀ L⁻¹ Tᵀ per level as a few products.
        L_inv = inverse_lower_levels(factor.L11_entries)
        V = np.einsum("bam,bcm->acm", L_inv, L_inv)
        return [sigma2 * congruence(T[0].T, V).transpose(2, 0, 1)]
    L11_inv = inverse_lower(factor.L11)  # (m1, q1, q1)
    V1 = L11_inv.transpose(0, 2, 1) @ L11_inv
    # Column block i of L⁻¹ for factor 1 is [L₁₁,ᵢ⁻¹ ; −L₂₂⁻¹ L₂₁ Eᵢ L₁₁,ᵢ⁻¹], so level i
    # adds L₁₁,ᵢ⁻ᵀ (L₂₁ Eᵢ)ᵀ S₂₂⁻¹ (L₂₁ Eᵢ) L₁₁,ᵢ⁻¹.
    S22_inv = second_block_inverse(factor.L22)
    fill = fill_in_quadratic_forms(cp, factor, terms[1:], S22_inv)
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
