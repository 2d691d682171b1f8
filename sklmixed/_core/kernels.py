"""Small dense kernels the blocked factor is built from.

Per-level blocks are stored levels last (``(q, q, m)``): each entry of the small
block is one contiguous vector over levels, so a factorization loops over the
block's few entries with one vector operation across all levels each.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotri as _potri

__all__ = [
    "apply_lambda",
    "apply_lambda_t",
    "back_substitute_levels",
    "cholesky_levels",
    "congruence",
    "forward_solve_levels",
    "inverse_lower",
    "inverse_lower_levels",
    "schur_cholesky",
    "second_block_inverse",
]


def second_block_inverse(L22):
    """``S₂₂⁻¹`` from the lower Cholesky factor of block 2 (upper triangle 0).

    Returns
    -------
    ndarray of shape (Q2, Q2)
        Full, symmetric, column-major.
    """
    W, info = _potri(L22, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("block 2 is singular")
    # dpotri sets the lower triangle only: mirror it a band of rows at a time, which
    # needs no temporary as large as W.
    Q2 = W.shape[0]
    for start in range(0, Q2, _MIRROR_ROWS):
        stop = min(start + _MIRROR_ROWS, Q2)
        W[start:stop, stop:] = W[stop:, start:stop].T
        diagonal_block = W[start:stop, start:stop]
        diagonal_block += np.tril(diagonal_block, -1).T
    return W


_MIRROR_ROWS = 256


def apply_lambda_t(M, terms, T):
    """``Λ₂ᵀ M`` for the stacked block-2 terms, ``M`` of shape (Q2, k)."""
    out = np.empty_like(M)
    start = 0
    for term, Tj in zip(terms, T):
        stop = start + term.n_levels * term.q
        if term.q == 1:
            out[start:stop] = Tj[0, 0] * M[start:stop]
        else:
            R = M[start:stop].reshape(term.n_levels, term.q, -1)
            out[start:stop] = np.einsum("ab,mak->mbk", Tj, R).reshape(stop - start, -1)
        start = stop
    return out


def apply_lambda(M, terms, T):
    """``Λ₂ M`` for the stacked block-2 terms, ``M`` of shape (Q2, k)."""
    return apply_lambda_t(M, terms, [Tj.T for Tj in T])


def congruence(T, A):
    """``Tᵀ A T`` for every level of ``A`` (q, q, m), as two matrix products."""
    q, _, m = A.shape
    Y = (T.T @ A.reshape(q, q * m)).reshape(q, q, m)  # Y[a, j] = Σᵢ T[i, a] A[i, j]
    # Σⱼ T[j, b] Y[a, j] is entry (b, a) of the symmetric product.
    return (T.T @ Y.transpose(1, 0, 2).reshape(q, q * m)).reshape(q, q, m)


# Up to this block size the factorizations below loop over the block's entries with
# one vector operation across levels each; beyond it LAPACK's batched routines win.
_UNROLL_MAX_Q = 4


def cholesky_levels(M):
    """Lower Cholesky factors of SPD blocks stored levels last, shape (q, q, m)."""
    q = M.shape[0]
    if q > _UNROLL_MAX_Q:
        return np.linalg.cholesky(M.transpose(2, 0, 1)).transpose(1, 2, 0)
    L = np.zeros_like(M)
    for j in range(q):
        d = M[j, j] - np.einsum("km,km->m", L[j, :j], L[j, :j])
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (M[i, j] - np.einsum("km,km->m", L[i, :j], L[j, :j])) / L[j, j]
    return L


def forward_solve_levels(L, W):
    """``L⁻¹ W`` per level for ``L`` (q, q, m) levels last and ``W`` (q, m, k)."""
    q = L.shape[0]
    if q > _UNROLL_MAX_Q:
        solved = np.linalg.solve(L.transpose(2, 0, 1), W.transpose(1, 0, 2))
        return np.ascontiguousarray(solved.transpose(1, 0, 2))
    C = np.empty_like(W)
    for i in range(q):
        C[i] = (W[i] - np.einsum("jm,jmk->mk", L[i, :i], C[:i])) / L[i, i][:, None]
    return C


def inverse_lower(L):
    """Inverses of a stack of small lower triangular matrices, shape (m, q, q)."""
    return inverse_lower_levels(L.transpose(1, 2, 0)).transpose(2, 0, 1)


def inverse_lower_levels(L):
    """Inverses of small lower triangular blocks stored levels last, shape (q, q, m)."""
    q = L.shape[0]
    if q > _UNROLL_MAX_Q:
        return np.linalg.inv(L.transpose(2, 0, 1)).transpose(1, 2, 0)
    inv = np.zeros_like(L)
    for i in range(q):
        inv[i, i] = 1.0 / L[i, i]
        for j in range(i):
            # Row i of L times column j of the inverse is zero below the diagonal.
            inv[i, j] = -np.einsum("km,km->m", L[i, j:i], inv[j:i, j]) * inv[i, i]
    return inv


def schur_cholesky(S):
    """Cholesky factor of the ``[X y]`` Schur complement, tolerant of an exact fit.

    When ``y`` lies (numerically) in the span of ``X`` and ``ZΛ`` the last pivot can
    round to a tiny negative number; it is the penalized RSS, so it is clamped at 0.
    """
    L, info = _potrf(S, lower=True, clean=True)
    if info == 0:
        return L
    p = S.shape[0] - 1
    L = np.zeros_like(S)
    L[:p, :p] = np.linalg.cholesky(S[:p, :p])
    L[p, :p] = scipy.linalg.solve_triangular(L[:p, :p], S[:p, p], lower=True, check_finite=False)
    L[p, p] = np.sqrt(max(S[p, p] - L[p, :p] @ L[p, :p], 0.0))
    return L


def back_substitute_levels(L, c):
    """``L⁻ᵀ c`` per level, for ``L`` (q, q, m) lower triangular levels last and ``c`` (q, m)."""
    q = L.shape[0]
    u = np.empty_like(c)
    for i in range(q - 1, -1, -1):
        u[i] = (c[i] - np.einsum("jm,jm->m", L[i + 1 :, i], u[i + 1 :])) / L[i, i]
    return u
