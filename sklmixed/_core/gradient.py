"""Analytic gradient of the profiled criterion for one grouping factor.

With ``M_i = Tᵀ A_i T + I`` per level, ``S`` the ``[X y]`` Schur complement,
``γ = (−β̂, 1)`` and ``E = ∂T/∂θ_k`` (a single 1 at row r, column c of ``T``)::

    ∂ log|L|²   =  2 Σ_i (A_i T M_i⁻¹)[r, c]
    ∂ r²        = −2 Σ_i (U_i γ)[r] (V_i γ)[c]
    ∂ log|R_X|² = −2 Σ_i (U_i,x S_xx⁻¹ V_i,xᵀ)[r, c]

where ``V_i = M_i⁻¹ Tᵀ W_i`` and ``U_i = W_i − A_i T V_i`` with ``W_i = Z_iᵀ[X y]``
(the envelope theorem for ``r²``, ``∂P_i = K_i E N_i + (K_i E N_i)ᵀ`` for the projection
``P_i = T M_i⁻¹ Tᵀ``). Every term is a sum over levels of small products, so the
gradient costs about as much as one evaluation, independently of the number of rows.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from .kernels import inverse_lower_levels

__all__ = ["gradient_from_factor"]


def gradient_from_factor(factor, cp, term, reml: bool):
    """The gradient in θ of the criterion, for a single grouping factor.

    Parameters
    ----------
    factor : BlockedFactor
        The factor at θ (where the criterion is finite).
    cp : CrossProducts
        Cross-products without a second block.
    term : TermLayout
        The one term.
    reml : bool

    Returns
    -------
    ndarray
        The gradient, one entry per θ entry of the term.
    """
    T = factor.T[0]
    # Levels-last layouts (see CrossProducts): A (q, q, m), W, C, U, V (q, m, k).
    A, W = cp.A11_entries, cp.Z1tXY_rows
    q, m, k = W.shape
    p = k - 1
    L_inv = inverse_lower_levels(factor.L11_entries)
    M_inv = np.einsum("bam,bcm->acm", L_inv, L_inv)  # L⁻ᵀ L⁻¹
    V = np.einsum("bam,bmk->amk", L_inv, factor.C1_rows)  # M⁻¹ Tᵀ W = L⁻ᵀ C
    TV = (T @ V.reshape(q, m * k)).reshape(q, m, k)
    U = W - np.einsum("abm,bmk->amk", A, TV)  # W − A T V

    L33 = factor.L33
    beta = solve_triangular(L33[:p, :p].T, L33[p, :p], lower=False, check_finite=False)
    gamma = np.append(-beta, 1.0)
    pwrss = factor.pwrss

    AT = np.einsum("rjm,jl->rlm", A, T)
    d_logdet_L = 2.0 * np.einsum("rlm,lcm->rc", AT, M_inv)
    Ug, Vg = U @ gamma, V @ gamma  # (q, m)
    d_pwrss = -2.0 * (Ug @ Vg.T)
    n = cp.n_obs
    if reml:
        RX = L33[:p, :p]
        # S_xx⁻¹ = R_X⁻ᵀ R_X⁻¹, applied to the x-columns of U and V.
        Ux = solve_triangular(RX, U[:, :, :p].reshape(-1, p).T, lower=True, check_finite=False)
        Vx = solve_triangular(RX, V[:, :, :p].reshape(-1, p).T, lower=True, check_finite=False)
        d_logdet_RX = -2.0 * np.tensordot(
            Ux.reshape(p, q, m), Vx.reshape(p, q, m), axes=([0, 2], [0, 2])
        )
        G = d_logdet_L + d_logdet_RX + (n - p) * d_pwrss / pwrss
    else:
        G = d_logdet_L + n * d_pwrss / pwrss
    return G[term.theta_rows, term.theta_cols]
