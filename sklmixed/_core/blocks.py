"""Blocked cross-products of ``[Z X y]`` and their blocked Cholesky factor.

Notation follows lme4 (Bates et al. 2015, section 3) and MixedModels.jl. Random-effect
columns are split in two blocks: block 1 is the grouping factor with the most levels,
whose ``Zᵀ Z`` block is block diagonal (one ``q₁ × q₁`` block per level); block 2 stacks
every other factor and is kept dense. The third block is ``[X y]``. With ``Λ`` the
relative covariance factor, the lower triangular ``L`` satisfies::

    L Lᵀ = [Λᵀ Zᵀ Z Λ + I   Λᵀ Zᵀ [X y]]
           [[X y]ᵀ Z Λ      [X y]ᵀ [X y]]

Everything that depends on the rows is reduced once, by :func:`cross_products`; the
per-θ update :func:`factorize` then costs O(levels₁·q₁³ + pairs·q₁² + Q₂³ + p³), with
``pairs`` the pairs of non-zero blocks of ``Z₂ᵀZ₁`` sharing a level of factor 1,
independent of the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotri as _potri

from .terms import RandomTerm

__all__ = ["CrossProducts", "BlockedFactor", "cross_products", "factorize"]


@dataclass(frozen=True)
class SecondBlockMap:
    """A sparse linear map from per-θ weights to the lower triangle of block 2.

    Attributes
    ----------
    matrix : scipy.sparse.csc_array of shape (Q2 * Q2, n_weights)
        Row ``i + j · Q2`` is entry ``(i, j)``, ``i ≥ j``, of the column-major
        ``Q2 × Q2`` array; rows above the diagonal are empty. Column by column, the
        product scatters into ascending positions of an array small enough for the
        cache: faster than the row by row (CSR) product.
    size : int
        ``Q2``.
    """

    matrix: sp.csc_array
    size: int

    def lower(self, weights) -> np.ndarray:
        """``(Q2, Q2)`` column-major array: the mapped weights below the diagonal, 0 above."""
        return (self.matrix @ weights).reshape(self.size, self.size, order="F")

    def adjoint(self, Y) -> np.ndarray:
        """``matrixᵀ`` applied to the lower triangle of a ``(Q2, Q2)`` array ``Y``."""
        return self.matrix.T @ Y.ravel(order="F")


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
    A22 : scipy.sparse.csr_array of shape (Q2, Q2) or None
        ``Z₂ᵀZ₂``.
    Z2tXY : ndarray of shape (Q2, p + 1) or None
        ``Z₂ᵀ[X y]``.
    S22_map : SecondBlockMap or None
        The lower triangle of block 2 as a linear map of a few per-θ weights (see
        :func:`_second_block_map`). None when it would hold too many entries; a
        sparse product gives ``G Gᵀ`` then.
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
    A22: sp.csr_array | None
    Z2tXY: np.ndarray | None
    S22_map: SecondBlockMap | None
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
    vals = term.scaled_columns(rows)
    if sqrt_weights is not None:
        vals = vals * sqrt_weights[rows, None]
    return _level_columns(term.codes[rows], vals, offset, width)


def _level_columns(codes, vals, offset, width):
    """The CSR matrix whose row i holds ``vals[i]`` in the columns of level ``codes[i]``."""
    n, q = vals.shape
    cols = offset + codes[:, None] * q + np.arange(q)
    return sp.csr_array(
        (np.ravel(vals), cols.ravel(), np.arange(0, n * q + 1, q)), shape=(n, width)
    )


# Rows are reduced this many at a time, so that the temporaries ([X y] with weights,
# the sparse Z of the chunk) stay small whatever the number of observations.
_CHUNK_ROWS = 1 << 16


def _rows_grouped(codes, n_levels):
    """Whether each level's rows form one contiguous run (sorted by level or not)."""
    if codes.size == 0:
        return False
    runs = np.count_nonzero(codes[1:] != codes[:-1]) + 1
    return runs == np.count_nonzero(np.bincount(codes, minlength=n_levels))


def _add_segment_sums(A11, Z1tXY, codes, Zt, XYt):
    """Add the per-level sums of rows grouped by level (see :func:`_rows_grouped`).

    Each level's rows are one run: its sums are one ``np.add.reduceat`` over the
    products of the columns, rows last, with no sparse matrix to build.
    """
    starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
    levels = codes[starts]  # distinct within a chunk, so += is safe
    A11[:, :, levels] += np.add.reduceat(Zt[:, None, :] * Zt[None, :, :], starts, axis=2)
    Z1tXY[:, :, levels] += np.add.reduceat(Zt[:, None, :] * XYt[None, :, :], starts, axis=2)


def _add_scattered_sums(A11, Z1tXY, codes, Zcols, XY):
    """Add the per-level sums of rows in any order: a sparse product and bincounts
    (``A11``: the lower triangle; the caller fills the upper one by symmetry)."""
    q, _, m = A11.shape
    Z1tXY += (_level_columns(codes, Zcols, 0, m * q).T @ XY).reshape(m, q, -1).transpose(1, 2, 0)
    for a in range(q):
        for b in range(a + 1):
            A11[a, b] += np.bincount(codes, Zcols[:, a] * Zcols[:, b], minlength=m)


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
    Z1tXY = np.zeros((q1, p + 1, m1))
    Z2tXY = np.zeros((Q2, p + 1))
    XYtXY = np.zeros((p + 1, p + 1))
    grouped = _rows_grouped(first.codes, m1)
    for start in range(0, n, _CHUNK_ROWS):
        rows = slice(start, min(start + _CHUNK_ROWS, n))
        XYt = np.empty((p + 1, rows.stop - start))  # [X y]ᵀ: rows contiguous
        XYt[:p] = X[rows].T
        XYt[p] = y[rows]
        Z1cols = first.scaled_columns(rows)
        if sqrt_weights is not None:
            XYt *= sqrt_weights[rows]
            Z1cols = Z1cols * sqrt_weights[rows, None]
        XYtXY += XYt @ XYt.T
        codes = first.codes[rows]
        if grouped:
            _add_segment_sums(A11, Z1tXY, codes, np.ascontiguousarray(Z1cols.T), XYt)
        else:
            _add_scattered_sums(A11, Z1tXY, codes, Z1cols, XYt.T)
        for term, offset in zip(rest, offsets):
            Z2tXY += _term_matrix(term, sqrt_weights, offset, Q2, rows).T @ XYt.T
    for a in range(q1):  # the upper triangles from the lower ones
        A11[:a, a] = A11[a, :a]
    Z1tXY = np.ascontiguousarray(Z1tXY.transpose(0, 2, 1))
    sum_log_weights = 0.0 if sqrt_weights is None else float(2.0 * np.log(sqrt_weights).sum())
    A21 = A21_rows = A21_levels = A22 = S22_map = None
    if rest:
        Z1 = _term_matrix(first, sqrt_weights, 0, Q1)
        Z2 = sum(_term_matrix(t, sqrt_weights, o, Q2) for t, o in zip(rest, offsets)).tocsr()
        Z2t = Z2.T.tocsr()
        A22 = (Z2t @ Z2).tocsr()
        # Z₂ᵀZ₁ in column blocks of width q1: the blocks are what Λ₁ and L₁₁ act on.
        A21_sparse = (Z2t @ Z1).tocoo()
        del Z1, Z2, Z2t
        block_key = A21_sparse.row.astype(np.int64) * m1 + A21_sparse.col // q1
        keys, inverse = np.unique(block_key, return_inverse=True)
        A21 = np.zeros((keys.size, q1))
        np.add.at(A21, (inverse, A21_sparse.col % q1), A21_sparse.data)
        A21_rows = (keys // m1).astype(np.intp)
        A21_levels = (keys % m1).astype(np.intp)
        term_of_row = np.repeat(np.arange(len(rest)), widths)
        S22_map = _second_block_map(A21, A21_rows, A21_levels, A22, m1, term_of_row)
    return CrossProducts(
        A11_entries=A11,
        Z1tXY_rows=Z1tXY,
        A21=A21,
        A21_rows=A21_rows,
        A21_levels=A21_levels,
        A22=A22,
        Z2tXY=Z2tXY if rest else None,
        S22_map=S22_map,
        XYtXY=XYtXY,
        n_obs=n,
        n_fixed=p,
        sum_log_weights=sum_log_weights,
    )


# Beyond this many entries (12 bytes each) the map of block 2 costs more memory than
# it saves time; G Gᵀ is then a sparse product per θ.
_MAX_MAP_ENTRIES = 30_000_000


def _n_kinds(n_terms):
    """Number of (term, term) pairs ``a ≥ b`` among the terms of block 2."""
    return n_terms * (n_terms + 1) // 2


def _second_block_map(A21, rows, levels, A22, m1, term_of_row):
    """Block 2's lower triangle as a sparse linear map of per-θ weights.

    Entry ``(i, j)``, ``i ≥ j``, of ``S₂₂ = Λ₂ᵀ (A₂₂ − G Gᵀ) Λ₂ + I`` is, with
    ``G = Z₂ᵀZ₁ Λ₁ L₁₁⁻ᵀ`` (``A₂₁,ᵢₛ`` the ``1 × q1`` block of row ``i`` of ``Z₂ᵀZ₁`` at
    level ``s`` of factor 1, ``Bₛ = T₁ L₁₁,ₛ⁻ᵀ``) and scalar terms in block 2
    (``Λ₂`` diagonal, ``λᵢ`` the θ of row ``i``'s term)::

        λᵢλⱼ A₂₂,ᵢⱼ − Σₛ λᵢλⱼ A₂₁,ᵢₛ Bₛ Bₛᵀ A₂₁,ⱼₛᵀ + δᵢⱼ

    The data fix everything but ``λᵢλⱼ``, which depends only on the pair of terms
    (``kind``) of ``i`` and ``j``, and ``Bₛ Bₛᵀ``. So the entries are ``M @ w`` for a
    fixed sparse ``M`` with the columns

    * ``kind · m1 · nab + s · nab + ab``: ``A₂₁,ᵢₛ[a] A₂₁,ⱼₛ[b]`` (plus the ``(b, a)``
      product when ``a < b``), for the ``nab = q1 (q1 + 1) / 2`` entries ``a ≤ b`` of
      the symmetric ``Bₛ Bₛᵀ``; weight ``−λλ (Bₛ Bₛᵀ)[a, b]``;
    * ``n_kinds · m1 · nab + kind``: ``A₂₂,ᵢⱼ``; weight ``λλ``;
    * the last: 1 on the diagonal; weight 1.

    ``M @ w`` is one pass over ``M`` per θ, straight into the column-major array that
    LAPACK then factors in place; only the lower triangle is stored and computed.
    With non-scalar terms in block 2 the same map with unit ``λ`` and no identity
    gives ``A₂₂ − G Gᵀ``, to which ``Λ₂`` is then applied densely.

    Every column's entries are counted beforehand, so each entry is written straight
    to its place in the CSC arrays (no sort, no COO copy), a chunk of levels at a time.

    Parameters
    ----------
    A21 : ndarray of shape (nnzb, q1)
        Non-zero blocks of ``Z₂ᵀZ₁``.
    rows, levels : ndarray of shape (nnzb,)
        Row of ``Z₂ᵀZ₁`` and level of factor 1 of each block; each (row, level)
        once, sorted by row.
    A22 : scipy.sparse.csr_array of shape (Q2, Q2)
    m1 : int
        Number of levels of factor 1.
    term_of_row : ndarray of shape (Q2,)
        Index, within block 2, of the term of each row (ascending).

    Returns
    -------
    SecondBlockMap or None
        None when the map would have more than ``_MAX_MAP_ENTRIES`` entries or its
        indices do not fit 32 bits.
    """
    Q2 = term_of_row.size
    q1 = A21.shape[1]
    nab = q1 * (q1 + 1) // 2
    n_terms = int(term_of_row[-1]) + 1
    n_kinds = _n_kinds(n_terms)
    n_weights = n_kinds * (m1 * nab + 1) + 1

    # Blocks level by level, rows ascending within a level, so that a level's blocks
    # of one term are consecutive (a segment): pairs of kind (a, b) at level s are
    # the a × b rectangle (a > b) or lower triangle (a = b) of two segments.
    order = np.argsort(levels, kind="stable")
    entry_rows, entry_levels, entry_A21 = rows[order], levels[order], A21[order]
    entry_terms = term_of_row[entry_rows]
    segment = entry_levels.astype(np.int64) * n_terms + entry_terms
    segment_count = np.bincount(segment, minlength=m1 * n_terms)
    segment_start = np.cumsum(segment_count) - segment_count
    by_level = segment_count.reshape(m1, n_terms).astype(np.int64)
    ka, kb = np.tril_indices(n_terms)  # kinds in _kind order
    kind_pairs = np.where(
        ka == kb, by_level[:, ka] * (by_level[:, ka] + 1) // 2, by_level[:, ka] * by_level[:, kb]
    ).T  # (n_kinds, m1)

    a22 = A22.tocoo()
    keep = a22.row >= a22.col
    a22_kind = _kind(term_of_row[a22.row[keep]], term_of_row[a22.col[keep]])
    a22_order = np.lexsort((a22.col[keep] * Q2 + a22.row[keep], a22_kind))
    column_counts = np.concatenate(
        [np.repeat(kind_pairs.ravel(), nab), np.bincount(a22_kind, minlength=n_kinds), [Q2]]
    )
    nnz = int(column_counts.sum())
    if nnz > _MAX_MAP_ENTRIES or max(Q2 * Q2, n_weights, nnz) >= 2**31:
        return None
    indptr = np.concatenate([[0], np.cumsum(column_counts)]).astype(np.int32)
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz)

    level_counts = np.bincount(entry_levels, minlength=m1).astype(np.int64)
    pair_end = np.cumsum(level_counts * (level_counts + 1) // 2)
    entry_end = np.cumsum(level_counts)
    # What a pair needs of its two blocks, 32-bit (the checks above bound every value).
    entries = tuple(
        column.astype(np.int32)
        for column in (
            entry_rows,
            entry_terms,
            entry_levels,
            segment_count[segment],
            np.arange(entry_rows.size) - segment_start[segment],  # index within the segment
        )
    )
    indptr64 = indptr.astype(np.int64)
    lo = 0
    while lo < m1:
        # Whole levels, about _CHUNK_PAIRS pairs at a time, to bound the temporaries.
        pair_lo = int(pair_end[lo - 1]) if lo else 0
        hi = max(int(np.searchsorted(pair_end, pair_lo + _CHUNK_PAIRS, side="right")), lo + 1)
        entry_lo = int(entry_end[lo - 1]) if lo else 0
        _place_pairs(
            level_counts[lo:hi], entry_lo, entries, entry_A21, Q2, m1, indptr64, indices, data
        )
        lo = hi

    tail = slice(int(indptr[n_kinds * m1 * nab]), nnz - Q2)
    indices[tail] = (a22.row[keep] + a22.col[keep] * Q2)[a22_order]
    data[tail] = a22.data[keep][a22_order]
    indices[nnz - Q2 :] = np.arange(Q2) * (Q2 + 1)
    data[nnz - Q2 :] = 1.0
    return SecondBlockMap(sp.csc_array((data, indices, indptr), shape=(Q2 * Q2, n_weights)), Q2)


# Level pairs placed at a time by _second_block_map.
_CHUNK_PAIRS = 1 << 16


def _place_pairs(counts, entry_lo, entries, A21, Q2, m1, indptr, indices, data):
    """Write the map entries of the block pairs of consecutive levels to their CSC places.

    The levels hold ``counts`` blocks, from ``entry_lo`` on in the level-major order
    of ``entries`` (arrays: row, term, level, segment size, index within the segment).
    Block ``l`` pairs with itself and the blocks ``k > l`` of its level. Within its
    column (kind, level, ab) a pair's place is its index in the segments' rectangle
    (``l′ · size + k′``) or lower triangle (``l′ · size − l′(l′ + 1)/2 + k′``), ordered by
    ``l``, then ``k``: ascending positions ``i + j · Q2``, as sorted CSC has them.
    """
    n = int(counts.sum())
    q1 = A21.shape[1]
    nab = q1 * (q1 + 1) // 2
    rows, terms, levels, sizes, indexes = entries
    blocks = slice(entry_lo, entry_lo + n)
    run = np.repeat(np.cumsum(counts), counts) - np.arange(n)  # pairs of each block l
    # Block l's side repeats (sequential), block k's side is gathered.
    row_l, term_l, level, index_l = (
        np.repeat(a[blocks], run) for a in (rows, terms, levels, indexes)
    )
    k = np.arange(row_l.size) - np.repeat(np.cumsum(run) - run - np.arange(n) - entry_lo, run)
    row_k, term_k, size_k, index_k = (a[k] for a in (rows, terms, sizes, indexes))
    local = index_l * size_k + index_k
    local -= np.where(term_k == term_l, index_l * (index_l + 1) // 2, 0)
    column = ((term_k * (term_k + 1) // 2 + term_l) * np.int32(m1) + level) * np.int32(nab)
    position = row_k + row_l * np.int32(Q2)
    A21_k, A21_l = A21[k], np.repeat(A21[blocks], run, axis=0)
    del row_l, term_l, level, index_l, row_k, term_k, size_k, index_k, k
    if q1 == 1:
        place = indptr[column] + local
        indices[place] = position
        data[place] = A21_k[:, 0] * A21_l[:, 0]
        return
    a, b = np.triu_indices(q1)
    for ab in range(nab):
        place = indptr[column + ab] + local
        indices[place] = position
        value = A21_k[:, a[ab]] * A21_l[:, b[ab]]
        if a[ab] < b[ab]:
            value += A21_k[:, b[ab]] * A21_l[:, a[ab]]
        data[place] = value


def _kind(term_i, term_j):
    """Index of the pair of block-2 terms ``term_i ≥ term_j``."""
    return term_i * (term_i + 1) // 2 + term_j


def _second_block_matrix(cp: CrossProducts, block_terms, T, G, B1):
    """``S₂₂ = Λ₂ᵀ (A₂₂ − G Gᵀ) Λ₂ + I``, column-major; only its lower triangle is set.

    Everything above the diagonal is 0, so that the Cholesky factor computed in place
    is a clean lower triangular matrix.
    """
    Q2 = cp.A22.shape[0]
    scalar = all(term.q == 1 for term in block_terms)
    if cp.S22_map is not None:
        lam = np.array([Tj[0, 0] for Tj in T[1:]]) if scalar else np.ones(len(block_terms))
        S = cp.S22_map.lower(_map_weights(lam, B1, identity=scalar))
        if scalar:
            return S
        # A₂₂ − G Gᵀ, lower triangle only: fill the upper one, then Λ₂ densely.
        M = S + S.T
        M[np.diag_indices(Q2)] = S[np.diag_indices(Q2)]
    else:
        M = (cp.A22 - G @ G.T).toarray()
    S = _apply_lambda_t(_apply_lambda_t(M, block_terms, T[1:]).T, block_terms, T[1:])
    S[np.diag_indices(Q2)] += 1.0
    return np.asfortranarray(np.tril(S))


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
    scale = _kind_scales(lam)
    return np.concatenate([np.outer(-scale, BBt).ravel(), scale, [1.0 if identity else 0.0]])


def _kind_scales(lam):
    """``λ_a λ_b`` for each pair ``a ≥ b`` of block-2 terms, in :func:`_kind` order."""
    a, b = np.tril_indices(lam.size)
    return lam[a] * lam[b]


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


def fill_in_quadratic_forms(cp: CrossProducts, factor, block_terms, W):
    """Per level ``s`` of factor 1, ``L₂₁,ₛᵀ W L₂₁,ₛ`` with ``L₂₁,ₛ`` its columns of ``L₂₁``.

    ``L₂₁ = Λ₂ᵀ G`` is sparse and ``W`` (``Q2 × Q2``, symmetric) dense; through the
    map of :func:`_second_block_map` (one pass over it, transposed) this costs no
    dense ``Q2 × Q1`` product.

    Parameters
    ----------
    cp : CrossProducts
    factor : BlockedFactor
    block_terms : sequence of RandomTerm
        The terms of block 2.
    W : ndarray of shape (Q2, Q2)
        Symmetric.

    Returns
    -------
    ndarray of shape (m1, q1, q1) or None
        None when ``cp`` has no map.
    """
    if cp.S22_map is None:
        return None
    T = factor.T
    m1, q1 = factor.L11.shape[:2]
    nab = q1 * (q1 + 1) // 2
    if all(term.q == 1 for term in block_terms):
        Y, scale = W, _kind_scales(np.array([Tj[0, 0] for Tj in T[1:]]))
    else:
        Y = _apply_lambda(_apply_lambda(W, block_terms, T[1:]).T, block_terms, T[1:])
        scale = np.ones(_n_kinds(len(block_terms)))
    # The map holds each off-diagonal pair of positions once (i > j): halving the
    # diagonal of Y makes its adjoint the upper triangle of Σ_ij Y_ij a_i a_jᵀ with a
    # halved diagonal. Y is W itself when it can be: halved, then doubled back (exact).
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
    # In place and without clean-up: the upper triangle of S₂₂ is already 0.
    L22, info = _potrf(
        _second_block_matrix(cp, block_terms, T, G, B1), lower=1, clean=0, overwrite_a=1
    )
    if info != 0:
        raise np.linalg.LinAlgError(f"block 2 is not positive definite (dpotrf info {info})")
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
