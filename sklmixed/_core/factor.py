"""The blocked Cholesky factor ``L(θ)`` of the penalized system.

With ``Λ`` the relative covariance factor, the lower triangular ``L`` satisfies::

    L Lᵀ = [Λᵀ Zᵀ Z Λ + I   Λᵀ Zᵀ [X y]]
           [[X y]ᵀ Z Λ      [X y]ᵀ [X y]]

:func:`factorize` updates it from the cross-products for a new θ at a cost of
O(levels₁·q₁³ + pairs·q₁² + Q₂³ + p³), with ``pairs`` the pairs of non-zero blocks
of ``Z₂ᵀZ₁`` sharing a level of factor 1, independent of the number of rows. PIRLS
(the GLMMs) factors the same blocks of a weighted system.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf

from ..stats import CrossProducts
from ..stats.second_block import kind_count, kind_scales
from .kernels import (
    apply_lambda,
    apply_lambda_t,
    cholesky_levels,
    congruence,
    forward_solve_levels,
    inverse_lower,
    schur_cholesky,
)
from .terms import split_theta

__all__ = ["BlockedFactor", "factorize", "fill_in_quadratic_forms"]


@dataclass(frozen=True)
class BlockedFactor:
    """The blocked Cholesky factor ``L`` at one θ.

    Attributes
    ----------
    T : tuple of ndarray
        The relative covariance factor of each term.
    L11_entries : ndarray of shape (q1, q1, m1)
        Per-level lower Cholesky factors of ``T₁ᵀ A₁₁ T₁ + I``, levels last
        (``L11`` is the level-major view).
    C1_rows : ndarray of shape (q1, m1, p + 1)
        ``L₃₁ᵀ`` levels in the middle: ``L₁₁⁻¹ T₁ᵀ Z₁ᵀ[X y]`` per level (``L31t`` is
        the level-major copy).
    G : scipy.sparse.csr_array of shape (Q2, Q1) or None
        ``Z₂ᵀZ₁Λ₁L₁₁⁻ᵀ``, so that ``L₂₁ = Λ₂ᵀ G``.
    L22 : ndarray of shape (Q2, Q2) or None
        Dense lower Cholesky factor of block 2.
    L32t : ndarray of shape (Q2, p + 1) or None
        ``L₃₂ᵀ``.
    L33 : ndarray of shape (p + 1, p + 1)
        Lower Cholesky factor of the ``[X y]`` Schur complement; its last diagonal
        element squared is the penalized residual sum of squares.
    logdet_L : float
        ``log |L_Z|²`` of the random-effects part (lme4's ``ldL2``).
    """

    T: tuple
    L11_entries: np.ndarray
    C1_rows: np.ndarray
    G: sp.csr_array | None
    L22: np.ndarray | None
    L32t: np.ndarray | None
    L33: np.ndarray
    logdet_L: float

    @property
    def L11(self) -> np.ndarray:
        """Per-level Cholesky factors of block 1, shape (m1, q1, q1) (a view)."""
        return self.L11_entries.transpose(2, 0, 1)

    @cached_property
    def L31t(self) -> np.ndarray:
        """``L₃₁ᵀ``, shape (Q1, p + 1), rows level-major as the columns of ``Z₁``."""
        q1, m1, k = self.C1_rows.shape
        return np.ascontiguousarray(self.C1_rows.transpose(1, 0, 2)).reshape(m1 * q1, k)

    @property
    def logdet_RX(self) -> float:
        """``log |R_X|²`` (lme4's ``ldRX2``)."""
        return float(2.0 * np.log(self.L33.diagonal()[:-1]).sum())

    @property
    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares."""
        return float(self.L33[-1, -1] ** 2)


def factorize(cp: CrossProducts, terms, theta) -> BlockedFactor:
    """Update the blocked Cholesky factor ``L`` for a new θ.

    Parameters
    ----------
    cp : CrossProducts
    terms : sequence of TermLayout
        The terms ``cp`` was computed from, in the same order (none: no random
        effects, and ``L`` is the Cholesky factor of ``[X y]ᵀ[X y]``).
    theta : ndarray
        Concatenated θ of the terms.

    Returns
    -------
    BlockedFactor
    """
    if not terms:
        W = cp.Z1tXY_rows
        return BlockedFactor((), cp.A11_entries, W, None, None, None, schur_cholesky(cp.XYtXY), 0.0)
    T = split_theta(theta, terms)
    T1 = T[0]
    A, W = cp.A11_entries, cp.Z1tXY_rows
    q1, m1, k = W.shape
    if q1 == 1:
        # Scalar blocks: vector arithmetic only.
        t = T1[0, 0]
        l11 = np.sqrt(t * t * A[0, 0] + 1.0)
        L11 = l11[None, None, :]
        C1 = ((t / l11)[:, None] * W[0])[None]
    elif q1 == 2:
        L11, C1 = _factor_levels_2x2(T1, A, W)
    else:
        M = congruence(T1, A)
        M[np.arange(q1), np.arange(q1)] += 1.0
        L11 = cholesky_levels(M)
        C1 = forward_solve_levels(L11, (T1.T @ W.reshape(q1, m1 * k)).reshape(q1, m1, k))
    logdet_L = 2.0 * np.log(L11.reshape(q1 * q1, m1)[:: q1 + 1]).sum()  # the diagonals
    C1_flat = C1.reshape(q1 * m1, k)  # row order is irrelevant to the Gram matrix
    S33 = cp.XYtXY - C1_flat.T @ C1_flat
    G = L22 = L32t = None
    if cp.has_second_block:
        L31t = np.ascontiguousarray(C1.transpose(1, 0, 2)).reshape(m1 * q1, k)
        G, L22, L32t = _factorize_second_block(cp, terms[1:], T, L11.transpose(2, 0, 1), L31t)
        S33 -= L32t.T @ L32t
        logdet_L += 2.0 * np.log(np.diag(L22)).sum()
    L33 = schur_cholesky(S33)
    return BlockedFactor(T, L11, C1, G, L22, L32t, L33, float(logdet_L))


def _factorize_second_block(cp: CrossProducts, block_terms, T, L11, L31t):
    """``G``, the dense ``L₂₂`` and ``L₃₂ᵀ`` of the factors after the first."""
    m1, q1 = L11.shape[:2]
    Q2 = cp.A22.shape[0]
    T1 = T[0]
    # Λ₁ L₁₁⁻ᵀ is block diagonal with blocks T₁ L₁₁,ᵢ⁻ᵀ.
    B1 = T1 @ inverse_lower(L11).transpose(0, 2, 1)
    Gvals = np.einsum("ka,kab->kb", cp.A21, B1[cp.A21_levels])
    cols = (cp.A21_levels[:, None] * q1 + np.arange(q1)).ravel()
    indptr = np.concatenate([[0], np.cumsum(np.bincount(cp.A21_rows, minlength=Q2) * q1)])
    G = sp.csr_array((Gvals.ravel(), cols, indptr), shape=(Q2, m1 * q1))
    # In place and without clean-up: the upper triangle of S₂₂ is already 0.
    L22, info = _potrf(
        _second_block_matrix(cp, block_terms, T, G, B1), lower=1, clean=0, overwrite_a=1
    )
    if info != 0:
        raise np.linalg.LinAlgError(f"block 2 is not positive definite (dpotrf info {info})")
    R = apply_lambda_t(cp.Z2tXY - G @ L31t, block_terms, T[1:])
    L32t = scipy.linalg.solve_triangular(L22, R, lower=True, check_finite=False)
    return G, L22, L32t


def _factor_levels_2x2(T, A, W):
    """Closed-form factorization for the commonest random slope, ``(1 + x | g)``.

    Per level: ``L Lᵀ = Tᵀ A T + I`` and ``C = L⁻¹ Tᵀ W`` with ``W = Z₁ᵀ[X y]``
    (levels-last layouts, see :class:`CrossProducts`). The three distinct entries of
    ``Tᵀ A T`` come from one matrix product with the four entries of ``A``.
    """
    t00, t10, t11 = float(T[0, 0]), float(T[1, 0]), float(T[1, 1])
    # Rows: the weights of A's entries (0,0), (0,1), (1,0), (1,1) in (TᵀAT)[0,0],
    # [1,0] and [1,1] (T is lower triangular; A is symmetric).
    weights = np.array(
        [
            [t00 * t00, t00 * t10, t00 * t10, t10 * t10],
            [0.0, 0.0, t11 * t00, t11 * t10],
            [0.0, 0.0, 0.0, t11 * t11],
        ]
    )
    m00, m10, m11 = weights @ A.reshape(4, -1)
    L = np.zeros_like(A)
    l00 = L[0, 0] = np.sqrt(m00 + 1.0)
    l10 = L[1, 0] = m10 / l00
    l11 = L[1, 1] = np.sqrt(m11 + 1.0 - l10 * l10)
    C = (T.T @ W.reshape(2, -1)).reshape(W.shape)
    C[0] /= l00[:, None]
    C[1] -= l10[:, None] * C[0]
    C[1] /= l11[:, None]
    return L, C


def _second_block_matrix(cp: CrossProducts, block_terms, T, G, B1):
    """``S₂₂ = Λ₂ᵀ (A₂₂ − G Gᵀ) Λ₂ + I``, column-major; only its lower triangle is set.

    Everything above the diagonal is 0, so that the Cholesky factor computed in place
    is a clean lower triangular matrix.
    """
    Q2 = cp.A22.shape[0]
    scalar = all(term.q == 1 for term in block_terms)
    diagonal = np.diag_indices(Q2)
    if cp.S22_map is not None:
        lam = np.array([Tj[0, 0] for Tj in T[1:]]) if scalar else np.ones(len(block_terms))
        S = cp.S22_map.lower(_map_weights(lam, B1, identity=scalar))
        if scalar:
            return S
    else:
        # A₂₂ − G Gᵀ, lower triangle only, computed in place in the array LAPACK factors.
        S = gram_lower(G)
        S *= -1.0
        a22 = cp.A22.tocoo()
        lower = a22.row >= a22.col
        S[a22.row[lower], a22.col[lower]] += a22.data[lower]
        if scalar:
            lam = np.repeat([Tj[0, 0] for Tj in T[1:]], [t.n_levels for t in block_terms])
            S *= lam[:, None]
            S *= lam[None, :]
            S[diagonal] += 1.0
            return S
    # Non-scalar terms in block 2: fill the upper triangle, then apply Λ₂ densely.
    M = S + S.T
    M[diagonal] = S[diagonal]
    del S
    S = apply_lambda_t(apply_lambda_t(M, block_terms, T[1:]).T, block_terms, T[1:])
    S[np.diag_indices(Q2)] += 1.0
    return np.asfortranarray(np.tril(S))


# Columns of G Gᵀ formed at a time without the map: a dense copy of that many columns
# of Gᵀ (Q1 × 256) stays small while the sparse rows after them stream past it.
_GRAM_COLUMNS = 256


def gram_lower(G):
    """The lower triangle of ``G Gᵀ`` for a sparse ``G``, column-major, 0 above it.

    A band of columns at a time: the rows of ``G`` after the band times a dense copy
    of the band's columns of ``Gᵀ``, then written to their places below the diagonal.
    Rows are taken in order of decreasing number of entries (the most popular levels
    first), so that the rows after each band, whose entries set the cost, are the
    sparsest; a row's own sum runs in the order of its entries, so the values do not
    depend on that order. Only the lower triangle is computed (half the work of
    ``G @ G.T``) and no sparse matrix of the size of the result is ever formed: the
    memory is the result plus one band.

    Parameters
    ----------
    G : scipy.sparse.csr_array of shape (Q2, Q1)

    Returns
    -------
    ndarray of shape (Q2, Q2)
        Fortran-ordered.
    """
    Q2 = G.shape[0]
    order = np.argsort(-np.diff(G.indptr), kind="stable")
    Gp = G[order]
    Gpt = Gp.T.tocsc()  # column slices are cheap
    out = np.zeros((Q2, Q2), order="F")
    flat = out.reshape(-1, order="F")  # a view: Fortran position i + j·Q2
    for start in range(0, Q2, _GRAM_COLUMNS):
        stop = min(start + _GRAM_COLUMNS, Q2)
        band = Gp[start:] @ Gpt[:, start:stop].toarray()  # rows order[start:], columns order[start:stop]
        rows, cols = order[start:, None], order[None, start:stop]
        position = np.maximum(rows, cols) + np.minimum(rows, cols) * Q2
        width = stop - start
        # The band's square part holds each pair twice: keep its lower half (in the
        # band's order), whose positions are all distinct.
        keep = np.tril(np.ones((width, width), dtype=bool))
        flat[position[:width][keep]] = band[:width][keep]
        flat[position[width:].ravel()] = band[width:].ravel()
    return out


def _map_weights(lam, B1, identity):
    """The weights ``w`` of :func:`_second_block_map` for the scale ``λ`` of each term.

    ``identity`` False leaves ``I`` out (weight 0 on the diagonal column).
    """
    q1 = B1.shape[1]
    if q1 == 1:
        BBt = B1[:, 0, 0] ** 2
    else:
        a, b = np.triu_indices(q1)
        BBt = (B1 @ B1.transpose(0, 2, 1))[:, a, b].ravel()
    scale = kind_scales(lam)
    return np.concatenate([np.outer(-scale, BBt).ravel(), scale, [1.0 if identity else 0.0]])


def fill_in_quadratic_forms(cp: CrossProducts, factor, block_terms, W):
    """Per level ``s`` of factor 1, ``L₂₁,ₛᵀ W L₂₁,ₛ`` with ``L₂₁,ₛ`` its columns of ``L₂₁``.

    ``L₂₁ = Λ₂ᵀ G`` is sparse and ``W`` (``Q2 × Q2``, symmetric) dense; through the
    map of :func:`_second_block_map` (one pass over it, transposed), or without it a
    band of ``L₂₁ᵀ W`` at a time, this costs no dense ``Q2 × Q1`` matrix.

    Parameters
    ----------
    cp : CrossProducts
    factor : BlockedFactor
    block_terms : sequence of TermLayout
        The terms of block 2.
    W : ndarray of shape (Q2, Q2)
        Symmetric.

    Returns
    -------
    ndarray of shape (m1, q1, q1)
    """
    T = factor.T
    m1, q1 = factor.L11.shape[:2]
    nab = q1 * (q1 + 1) // 2
    if cp.S22_map is None:  # L₂₁ = Λ₂ᵀ G, sparse
        return _level_quadratic_forms(_lambda_t_sparse(block_terms, T[1:]) @ factor.G, W, m1, q1)
    if all(term.q == 1 for term in block_terms):
        Y, scale = W, kind_scales(np.array([Tj[0, 0] for Tj in T[1:]]))
    else:
        Y = apply_lambda(apply_lambda(W, block_terms, T[1:]).T, block_terms, T[1:])
        scale = np.ones(kind_count(len(block_terms)))
    # The map holds each off-diagonal pair of positions once (i > j): halving the
    # diagonal of Y makes its adjoint the upper triangle of Σ_ij Y_ij a_i a_jᵀ with
    # a halved diagonal. Y is W itself when it can be: halved, then doubled back.
    diagonal = np.diag_indices(Y.shape[0])
    Y[diagonal] *= 0.5
    per_kind = cp.S22_map.adjoint(Y)[: scale.size * m1 * nab]
    Y[diagonal] *= 2.0
    F = (scale @ per_kind.reshape(scale.size, m1 * nab)).reshape(m1, nab)
    A = np.zeros((m1, q1, q1))
    a, b = np.triu_indices(q1)
    A[:, a, b] = F
    A = A + A.transpose(0, 2, 1)
    B1 = T[0] @ inverse_lower(factor.L11).transpose(0, 2, 1)
    return B1.transpose(0, 2, 1) @ A @ B1


def _lambda_t_sparse(block_terms, T):
    """``Λ₂ᵀ`` of the stacked block-2 terms as a sparse block-diagonal matrix."""
    return sp.block_diag(
        [sp.kron(sp.eye_array(term.n_levels), sp.csr_array(Tj.T)) for term, Tj in zip(block_terms, T)],
        format="csr",
    )


# Rows of Hᵀ = L₂₁ᵀ W formed at a time by _level_quadratic_forms.
_FORM_ROWS = 512


def _level_quadratic_forms(L21, W, m1, q1):
    """``L₂₁,ₛᵀ W L₂₁,ₛ`` for each level ``s`` of factor 1 (its ``q1`` columns of ``L₂₁``).

    ``L₂₁ᵀ W`` a band of rows at a time (sparse times dense), each row then dotted with
    the sparse rows of ``L₂₁ᵀ`` of its level: no dense ``Q2 × Q1`` matrix.
    """
    Lt = L21.T.tocsr()  # (Q1, Q2)
    Q1 = Lt.shape[0]
    W = W.T if W.flags.f_contiguous else W  # the same matrix, C-ordered as the product needs
    out = np.empty((Q1, q1))  # row s·q1 + a, column b: entry (a, b) of level s
    for start in range(0, Q1, _FORM_ROWS * q1):
        stop = min(start + _FORM_ROWS * q1, Q1)
        H = Lt[start:stop] @ W  # (rows, Q2)
        for b in range(q1):
            # Rows of level s's column b of L₂₁, aligned with the band's rows s·q1 + a.
            partner = Lt[np.repeat(np.arange(start + b, stop, q1), q1)]
            counts = np.diff(partner.indptr)
            row = np.repeat(np.arange(stop - start), counts)
            out[start:stop, b] = np.bincount(
                row, partner.data * H[row, partner.indices], minlength=stop - start
            )
    return out.reshape(m1, q1, q1)
