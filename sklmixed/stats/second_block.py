"""Block 2 of the cross-products: ``Z₂ᵀZ₁`` in column blocks, and the map of its
lower triangle.

``Z₂ᵀZ₁`` is stored as the non-zero ``1 × q1`` blocks of its rows at each level of
factor 1 (what ``Λ₁`` and ``L₁₁`` act on). :func:`second_block_map` turns the data's
part of ``S₂₂ = Λ₂ᵀ (A₂₂ − G Gᵀ) Λ₂ + I`` into a fixed sparse matrix, so that each θ
costs one sparse product with a few weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["SecondBlockMap", "blocks_of_z2tz1", "second_block_map", "kind_scales", "kind_count"]


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


def blocks_of_z2tz1(Z2tZ1, m1, q1):
    """The non-zero column blocks of width ``q1`` of ``Z₂ᵀZ₁``.

    Returns
    -------
    A21 : ndarray of shape (nnzb, q1)
    rows, levels : ndarray of shape (nnzb,)
        Row of ``Z₂ᵀZ₁`` and level of factor 1 of each block, sorted by row.
    """
    coo = Z2tZ1.tocoo()
    block_key = coo.row.astype(np.int64) * m1 + coo.col // q1
    keys, inverse = np.unique(block_key, return_inverse=True)
    A21 = np.zeros((keys.size, q1))
    np.add.at(A21, (inverse, coo.col % q1), coo.data)
    return A21, (keys // m1).astype(np.intp), (keys % m1).astype(np.intp)


# Beyond this many entries (12 bytes each) the map of block 2 costs more memory than
# it saves time; G Gᵀ is then a sparse product per θ.
_MAX_MAP_ENTRIES = 30_000_000


def kind_count(n_terms):
    """Number of (term, term) pairs ``a ≥ b`` among the terms of block 2."""
    return n_terms * (n_terms + 1) // 2


def second_block_map(A21, rows, levels, A22, m1, term_of_row):
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
    n_kinds = kind_count(n_terms)
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


def kind_scales(lam):
    """``λ_a λ_b`` for each pair ``a ≥ b`` of block-2 terms, in :func:`_kind` order."""
    a, b = np.tril_indices(lam.size)
    return lam[a] * lam[b]
