"""Blocked cross-products of ``[Z X y]`` and their blocked Cholesky factor.

Notation follows lme4 (Bates et al. 2015, section 3) and MixedModels.jl. Random-effect
columns are split in two blocks: block 1 is the grouping factor with the most levels,
whose ``Zᵀ Z`` block is block diagonal (one ``q₁ × q₁`` block per level); block 2 stacks
every other factor and is kept dense. The third block is ``[X y]``. With ``Λ`` the
relative covariance factor, the lower triangular ``L`` satisfies::

    L Lᵀ = [Λᵀ Zᵀ Z Λ + I   Λᵀ Zᵀ [X y]]
           [[X y]ᵀ Z Λ      [X y]ᵀ [X y]]

Everything that depends on the rows is reduced once, by :func:`cross_products`; the
per-θ update :func:`factorize` then costs O(levels₁·q₁³ + nnz(Z₂ᵀZ₁)·q₁ + Q₂³ + p³),
independent of the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf

from .terms import RandomTerm

__all__ = ["CrossProducts", "BlockedFactor", "cross_products", "factorize"]


@dataclass(frozen=True)
class CrossProducts:
    """``[Z X y]ᵀ[Z X y]`` in the blocks the factorization needs (computed once per fit).

    The first factor's per-level blocks are stored levels last: entry ``(a, b)`` of
    every level's block is one contiguous vector, so that an update is a few vector
    operations (or one matrix product) across levels rather than a stack of tiny
    matrix products, which numpy runs one level at a time.

    Attributes
    ----------
    A11_entries : ndarray of shape (q1, q1, m1)
        Per-level ``Z₁ᵀZ₁`` blocks of the first factor, levels last (``A11`` is the
        level-major view).
    Z1tXY_rows : ndarray of shape (q1, m1, p + 1)
        Per-level ``Z₁ᵀ[X y]``, levels in the middle (``Z1tXY`` is the level-major view).
    A21 : ndarray of shape (nnzb, q1) or None
        Non-zero column blocks of ``Z₂ᵀZ₁``: entry ``k`` is row ``A21_rows[k]`` of
        ``Z₂ᵀZ₁`` restricted to the columns of level ``A21_levels[k]`` of factor 1.
    A22 : ndarray of shape (Q2, Q2) or None
        ``Z₂ᵀZ₂``, dense.
    Z2tXY : ndarray of shape (Q2, p + 1) or None
        ``Z₂ᵀ[X y]``.
    pair_target, pair_level, pair_outer : ndarray or None
        ``Z₂ᵀZ₁`` entries taken two at a time within a level of factor 1, so that
        ``G Gᵀ`` (the fill-in of block 2) is one weighted ``bincount`` per θ: pair
        ``k`` adds ``pair_outer[k] · vec(B Bᵀ)`` of level ``pair_level[k]`` to the
        flat lower-triangle position ``pair_target[k]``. None when there would be
        too many pairs; a sparse product is used then.
    XYtXY : ndarray of shape (p + 1, p + 1)
        ``[X y]ᵀ[X y]``.
    n_obs, n_fixed : int
        Rows and fixed-effect columns.
    sum_log_weights : float
        ``Σ log wᵢ`` of the prior weights (0 when unweighted).
    """

    A11_entries: np.ndarray
    Z1tXY_rows: np.ndarray
    A21: np.ndarray | None
    A21_rows: np.ndarray | None
    A21_levels: np.ndarray | None
    A22: np.ndarray | None
    Z2tXY: np.ndarray | None
    pair_target: np.ndarray | None
    pair_level: np.ndarray | None
    pair_outer: np.ndarray | None
    XYtXY: np.ndarray
    n_obs: int
    n_fixed: int
    sum_log_weights: float

    @property
    def has_second_block(self) -> bool:
        return self.A22 is not None

    @property
    def A11(self) -> np.ndarray:
        """Per-level ``Z₁ᵀZ₁`` blocks, shape (m1, q1, q1) (a view)."""
        return self.A11_entries.transpose(2, 0, 1)

    @property
    def Z1tXY(self) -> np.ndarray:
        """Per-level ``Z₁ᵀ[X y]``, shape (m1, q1, p + 1) (a view)."""
        return self.Z1tXY_rows.transpose(1, 0, 2)


def _term_matrix(term: RandomTerm, sqrt_weights, offset: int, width: int, rows=slice(None)):
    """``Z`` of one term as a CSR matrix of ``width`` columns, level-major from ``offset``.

    ``rows`` selects a contiguous slice of observations.
    """
    codes, columns = term.codes[rows], term.scaled_columns(rows)
    n, q = columns.shape
    cols = offset + codes[:, None] * q + np.arange(q)
    vals = columns if sqrt_weights is None else columns * sqrt_weights[rows, None]
    return sp.csr_array((vals.ravel(), cols.ravel(), np.arange(0, n * q + 1, q)), shape=(n, width))


# Rows are reduced this many at a time, so that the temporaries ([X y] with weights,
# the sparse Z of the chunk) stay small whatever the number of observations.
_CHUNK_ROWS = 1 << 16


def cross_products(X, y, terms, sqrt_weights=None) -> CrossProducts:
    """Reduce the data to the cross-products of ``[Z X y]``.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix (full column rank).
    y : ndarray of shape (n,)
        Response, ideally with a least-squares fit already removed so that ``yᵀy``
        does not cancel catastrophically in the Schur complement.
    terms : sequence of RandomTerm
        Grouping factors, the one to keep block diagonal first.
    sqrt_weights : ndarray of shape (n,), optional
        Square roots of the prior weights.

    Returns
    -------
    CrossProducts
    """
    n, p = X.shape
    first, rest = terms[0], terms[1:]
    m1, q1 = first.n_levels, first.q
    Q1 = m1 * q1
    widths = [t.n_levels * t.q for t in rest]
    Q2 = int(sum(widths))
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)

    A11 = np.zeros((q1, q1, m1))
    Z1tXY = np.zeros((Q1, p + 1))
    Z2tXY = np.zeros((Q2, p + 1))
    XYtXY = np.zeros((p + 1, p + 1))
    for start in range(0, n, _CHUNK_ROWS):
        rows = slice(start, min(start + _CHUNK_ROWS, n))
        XY = np.column_stack([X[rows], y[rows]])
        Z1cols = first.scaled_columns(rows)
        if sqrt_weights is not None:
            XY *= sqrt_weights[rows, None]
            Z1cols = Z1cols * sqrt_weights[rows, None]
        XYtXY += XY.T @ XY
        Z1tXY += _term_matrix(first, sqrt_weights, 0, Q1, rows).T @ XY
        codes = first.codes[rows]
        for a in range(q1):
            for b in range(a + 1):
                A11[a, b] += np.bincount(codes, Z1cols[:, a] * Z1cols[:, b], minlength=m1)
        for term, offset in zip(rest, offsets):
            Z2tXY += _term_matrix(term, sqrt_weights, offset, Q2, rows).T @ XY
    lower = np.tril_indices(q1, -1)
    A11[lower[1], lower[0]] = A11[lower[0], lower[1]]
    Z1tXY = np.ascontiguousarray(Z1tXY.reshape(m1, q1, p + 1).transpose(1, 0, 2))
    sum_log_weights = 0.0 if sqrt_weights is None else float(2.0 * np.log(sqrt_weights).sum())
    A21 = A21_rows = A21_levels = A22 = None
    pairs = (None, None, None)
    if rest:
        Z1 = _term_matrix(first, sqrt_weights, 0, Q1)
        Z2 = sum(_term_matrix(t, sqrt_weights, o, Q2) for t, o in zip(rest, offsets)).tocsr()
        Z2t = Z2.T.tocsr()
        A22 = (Z2t @ Z2).toarray()
        # Z₂ᵀZ₁ in column blocks of width q1: the blocks are what Λ₁ and L₁₁ act on.
        A21_sparse = (Z2t @ Z1).tocoo()
        block_key = A21_sparse.row.astype(np.int64) * m1 + A21_sparse.col // q1
        keys, inverse = np.unique(block_key, return_inverse=True)
        A21 = np.zeros((keys.size, q1))
        np.add.at(A21, (inverse, A21_sparse.col % q1), A21_sparse.data)
        A21_rows = (keys // m1).astype(np.intp)
        A21_levels = (keys % m1).astype(np.intp)
        pairs = _level_pairs(A21, A21_rows, A21_levels, m1, Q2)
    return CrossProducts(
        A11_entries=A11,
        Z1tXY_rows=Z1tXY,
        A21=A21,
        A21_rows=A21_rows,
        A21_levels=A21_levels,
        A22=A22,
        Z2tXY=Z2tXY if rest else None,
        pair_target=pairs[0],
        pair_level=pairs[1],
        pair_outer=pairs[2],
        XYtXY=XYtXY,
        n_obs=n,
        n_fixed=p,
        sum_log_weights=sum_log_weights,
    )


# Beyond this many pairs the precomputed route to G Gᵀ costs more memory than it saves.
_MAX_PAIRS = 30_000_000


def _level_pairs(A21, rows, levels, m1, Q2):
    """Pairs of ``Z₂ᵀZ₁`` column blocks sharing a level of factor 1 (lower triangle)."""
    counts = np.bincount(levels, minlength=m1)
    if int((counts.astype(np.int64) ** 2).sum()) > 2 * _MAX_PAIRS:
        return None, None, None
    order = np.argsort(levels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_entry = counts[levels[order]]
    first = np.repeat(np.arange(order.size), per_entry)
    offsets = np.arange(first.size) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    second = starts[levels[order]][first] + offsets
    first, second = order[first], order[second]
    keep = rows[first] >= rows[second]
    first, second = first[keep], second[keep]
    target = rows[first].astype(np.int64) * Q2 + rows[second]
    q1 = A21.shape[1]
    outer = (A21[first, :, None] * A21[second, None, :]).reshape(first.size, q1 * q1)
    return target, levels[first], outer


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
        return float(2.0 * np.log(np.diag(self.L33)[:-1]).sum())

    @property
    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares."""
        return float(self.L33[-1, -1] ** 2)


def _apply_lambda_t(M, terms, T):
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


def _apply_lambda(M, terms, T):
    """``Λ₂ M`` for the stacked block-2 terms, ``M`` of shape (Q2, k)."""
    return _apply_lambda_t(M, terms, [Tj.T for Tj in T])


def split_theta(theta, terms):
    """Split the θ vector into the relative covariance factors ``T`` of each term."""
    T, start = [], 0
    for term in terms:
        T.append(term.factor(theta[start : start + term.n_theta]))
        start += term.n_theta
    return T


def factorize(cp: CrossProducts, terms, theta) -> BlockedFactor:
    """Update the blocked Cholesky factor ``L`` for a new θ.

    Parameters
    ----------
    cp : CrossProducts
    terms : sequence of RandomTerm
        The terms ``cp`` was computed from, in the same order.
    theta : ndarray
        Concatenated θ of the terms.

    Returns
    -------
    BlockedFactor
    """
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
        M = _congruence(T1, A)
        M[np.arange(q1), np.arange(q1)] += 1.0
        L11 = _cholesky_levels(M)
        C1 = _forward_solve_levels(L11, (T1.T @ W.reshape(q1, m1 * k)).reshape(q1, m1, k))
    logdet_L = 2.0 * np.log(L11.reshape(q1 * q1, m1)[:: q1 + 1]).sum()  # the diagonals
    C1_flat = C1.reshape(q1 * m1, k)  # row order is irrelevant to the Gram matrix
    S33 = cp.XYtXY - C1_flat.T @ C1_flat
    G = L22 = L32t = None
    if cp.has_second_block:
        L31t = np.ascontiguousarray(C1.transpose(1, 0, 2)).reshape(m1 * q1, k)
        G, L22, L32t = _factorize_second_block(cp, terms[1:], T, L11.transpose(2, 0, 1), L31t)
        S33 -= L32t.T @ L32t
        logdet_L += 2.0 * np.log(np.diag(L22)).sum()
    L33 = _schur_cholesky(S33)
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
    S22 = _apply_lambda_t(cp.A22 - _gram(cp, G, B1, Q2), block_terms, T[1:])
    S22 = _apply_lambda_t(S22.T, block_terms, T[1:])
    S22[np.diag_indices(Q2)] += 1.0
    L22 = scipy.linalg.cholesky(S22, lower=True, check_finite=False)
    R = _apply_lambda_t(cp.Z2tXY - G @ L31t, block_terms, T[1:])
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


def _congruence(T, A):
    """``Tᵀ A T`` for every level of ``A`` (q, q, m), as two matrix products."""
    q, _, m = A.shape
    Y = (T.T @ A.reshape(q, q * m)).reshape(q, q, m)  # Y[a, j] = Σᵢ T[i, a] A[i, j]
    # Σⱼ T[j, b] Y[a, j] is entry (b, a) of the symmetric product.
    return (T.T @ Y.transpose(1, 0, 2).reshape(q, q * m)).reshape(q, q, m)


# Up to this block size the factorizations below loop over the block's entries with
# one vector operation across levels each; beyond it LAPACK's batched routines win.
_UNROLL_MAX_Q = 4


def _cholesky_levels(M):
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


def _forward_solve_levels(L, W):
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


def _gram(cp: CrossProducts, G, B1, Q2):
    """``G Gᵀ``, dense: through the precomputed level pairs when there are any."""
    if cp.pair_target is None:
        return (G @ G.T).toarray()
    m1, q1 = B1.shape[:2]
    if q1 == 1:
        weights = cp.pair_outer[:, 0] * (B1[:, 0, 0] ** 2)[cp.pair_level]
    else:
        BBt = (B1 @ B1.transpose(0, 2, 1)).reshape(m1, -1)
        weights = np.einsum("pk,pk->p", cp.pair_outer, BBt[cp.pair_level])
    # astype: with no pairs at all (factors that never share a row) bincount gives ints.
    lower = np.bincount(cp.pair_target, weights, minlength=Q2 * Q2).astype(float).reshape(Q2, Q2)
    full = lower + lower.T
    full[np.diag_indices(Q2)] *= 0.5
    return full


def _schur_cholesky(S):
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
