"""The joint conditional covariance of the spherical modes and β, read from the factor.

At fixed θ the penalized least-squares system of the spherical random effects ``u``
and the fixed effects ``β`` has the matrix (lme4's paper, section 3)::

    C = [Λᵀ Zᵀ W Z Λ + I   Λᵀ Zᵀ W X]
        [Xᵀ W Z Λ          Xᵀ W X   ]

and ``Cov(u, β | θ) = σ² C⁻¹``. A linear combination ``aᵀ(u, β)``, such as a
prediction ``f = (ZΛ)ᵢ u + Xᵢ β`` with ``a = [(ZΛ)ᵢ, Xᵢ]``, has variance
``σ² aᵀ C⁻¹ a = σ² ‖L_c⁻¹ a‖²``, where ``L_c`` is the blocked Cholesky factor
without its ``y`` row (``C`` is its leading block). :class:`JointCovariance` computes
``aᵀ C⁻¹ a`` for many sparse ``a`` at once from the factor the fit already has: a
triangular solve per row, batched over rows and levels, with neither an ``n × n``
matrix nor a dense inverse of the first block.

The first block (the factor with most levels) is block diagonal, one ``q₁ × q₁`` block
``L₁₁,g`` per level ``g``: with ``v₁ = L₁₁,g⁻¹ a₁`` a row's share is ``‖v₁‖²``. The rest,
``R = (block 2, β)``, has the lower triangular factor
``L_RR = [[L₂₂, 0], [L₃₂, R_X]]`` and ``Σ = (L_RR L_RRᵀ)⁻¹`` (a dense
``(Q₂ + p)²`` matrix, the size of ``L₂₂``); with ``r = a_R − L_R1 v₁`` the rest's share
is ``rᵀ Σ r``. ``L_R1 v₁`` touches only the block-2 levels that share rows with level
``g`` in the data, so ``L₂₁,gᵀ Σ₂₂ L₂₁,g`` and ``L₂₁,gᵀ Σ₂β`` are kept per level.

This module is numpy and scipy only; it serves any blocked factor of the form above
(the LMM's, or a GLMM's at its PIRLS weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dtrtri as _trtri

from .._core.kernels import inverse_lower, second_block_inverse

__all__ = ["JointCovariance", "JointRows", "lambda_t_matrix", "pairs_within"]

# Rows per batch: temporaries of a few (rows × p) arrays stay in the cache's reach.
_CHUNK_ROWS = 1 << 15
# Entries of the dense (rows × Q₂) residuals of rows with several first-block levels.
_DENSE_ENTRIES = 1 << 22


@dataclass(frozen=True)
class JointRows:
    """Vectors ``a`` in the coordinates ``(u₁, u₂, β)`` of the joint system.

    Attributes
    ----------
    x : ndarray of shape (n, p)
        The β part (the rows of X).
    rows1, levels1 : ndarray of shape (k1,), dtype intp
        First-block entries, sorted by row: each is one level of the first factor
        (at most one entry per row and level).
    coef1 : ndarray of shape (k1, q1)
        Their coefficients on that level's ``q₁`` spherical effects (``Λ₁ᵀ z``).
    rows2, index2 : ndarray of shape (k2,), dtype intp
        Second-block entries, sorted by row: position in ``u₂`` (repeats allowed).
    value2 : ndarray of shape (k2,)
    one_per_row : bool
        Whether ``rows1`` is ``0, 1, ..., n - 1`` (every row one first-block entry,
        possibly with zero coefficients): the common case, computed without reductions.
    """

    x: np.ndarray
    rows1: np.ndarray
    levels1: np.ndarray
    coef1: np.ndarray
    rows2: np.ndarray
    index2: np.ndarray
    value2: np.ndarray
    one_per_row: bool = False

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @classmethod
    def build(cls, x, block1=None, block2=None, q1=0):
        """Rows from COO-like entries; first-block entries of one row and level are
        summed, entries sorted by row.

        Parameters
        ----------
        x : ndarray of shape (n, p)
        block1 : tuple (rows, levels, coef) or None
        block2 : tuple (rows, index, value) or None
        q1 : int
            Columns of the first factor (for an empty ``block1``).
        """
        n = x.shape[0]
        if block1 is None:
            rows1 = levels1 = np.zeros(0, dtype=np.intp)
            coef1 = np.zeros((0, q1))
        else:
            rows1, levels1, coef1 = (np.asarray(a) for a in block1)
        one = rows1.size == n and np.array_equal(rows1, np.arange(n))
        if not one and rows1.size:
            # Sorted by row, one entry per (row, level): the levels' solves are per level.
            span = int(levels1.max()) + 1
            unique, inverse = np.unique(
                rows1.astype(np.int64) * span + levels1, return_inverse=True
            )
            summed = np.zeros((unique.size, coef1.shape[1]))
            np.add.at(summed, inverse, coef1)
            rows1, levels1, coef1 = unique // span, unique % span, summed
            one = rows1.size == n and np.array_equal(rows1, np.arange(n))
        if block2 is None:
            rows2 = index2 = np.zeros(0, dtype=np.intp)
            value2 = np.zeros(0)
        else:
            rows2, index2, value2 = (np.asarray(a) for a in block2)
            order = np.argsort(rows2, kind="stable")
            rows2, index2, value2 = rows2[order], index2[order], value2[order]
        return cls(
            np.asarray(x, dtype=float),
            rows1.astype(np.intp),
            levels1.astype(np.intp),
            np.asarray(coef1, dtype=float),
            rows2.astype(np.intp),
            index2.astype(np.intp),
            np.asarray(value2, dtype=float),
            bool(one),
        )

    def chunk(self, start, stop):
        """The rows ``start:stop`` (renumbered from 0)."""
        a, b = np.searchsorted(self.rows1, [start, stop])
        c, d = np.searchsorted(self.rows2, [start, stop])
        return JointRows(
            self.x[start:stop],
            self.rows1[a:b] - start,
            self.levels1[a:b],
            self.coef1[a:b],
            self.rows2[c:d] - start,
            self.index2[c:d],
            self.value2[c:d],
            self.one_per_row,
        )


def lambda_t_matrix(terms, T):
    """``Λᵀ`` of stacked terms as a sparse block-diagonal matrix (``Tⱼᵀ`` per level)."""
    blocks = [
        sp.kron(sp.identity(t.n_levels, format="csr"), sp.csr_array(Tj.T))
        for t, Tj in zip(terms, T)
    ]
    return sp.block_diag(blocks, format="csr") if blocks else None


def pairs_within(counts):
    """All ordered pairs of members of the same group, for consecutive groups.

    Parameters
    ----------
    counts : ndarray of int
        Group sizes; members are numbered consecutively, group by group.

    Returns
    -------
    first, second : ndarray of intp
        Member indices of each pair, group by group (so sorted by group).
    """
    counts = np.asarray(counts, dtype=np.intp)
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    member_group_size = np.repeat(counts, counts)
    first = np.repeat(np.arange(total, dtype=np.intp), member_group_size)
    pair_starts = np.cumsum(member_group_size) - member_group_size
    offsets = np.arange(first.size, dtype=np.intp) - np.repeat(pair_starts, member_group_size)
    second = np.repeat(np.repeat(starts, counts), member_group_size) + offsets
    return first, second


class JointCovariance:
    """``aᵀ C⁻¹ a`` for the blocked factor ``L`` of one θ (without the σ² factor).

    Parameters
    ----------
    factor : BlockedFactor
        The factor at θ.
    cp : CrossProducts
        The cross-products it was computed from.
    terms : sequence of TermLayout
        The terms, in block order.
    """

    def __init__(self, factor, cp, terms):
        p = cp.n_fixed
        self.p = p
        self.terms = tuple(terms)
        self.q1 = terms[0].q if terms else 0
        self.m1 = terms[0].n_levels if terms else 0
        RX = np.asfortranarray(factor.L33[:p, :p])
        if terms:
            L_inv = inverse_lower(factor.L11)  # (m1, q1, q1), lower triangular
            self._L_inv = {
                (a, b): np.ascontiguousarray(L_inv[:, a, b])
                for a in range(self.q1)
                for b in range(a + 1)
            }
            # Each level's L₃₁ block, transposed: (m1, q1, p).
            self._L31 = np.ascontiguousarray(factor.C1_rows[:, :, :p].transpose(1, 0, 2))
        self.has_second_block = cp.has_second_block
        if cp.has_second_block:
            self._second_block(factor, p, RX)
        elif p:
            RX_inv, info = _trtri(RX, lower=1)
            if info:
                raise np.linalg.LinAlgError("R_X is singular")
            self.Sbb = RX_inv.T @ RX_inv
        else:
            self.Sbb = np.zeros((0, 0))

    def _second_block(self, factor, p, RX):
        Q2 = factor.L22.shape[0]
        L_RR = np.zeros((Q2 + p, Q2 + p), order="F")
        L_RR[:Q2, :Q2] = np.tril(factor.L22)
        L_RR[Q2:, :Q2] = factor.L32t[:, :p].T
        L_RR[Q2:, Q2:] = np.tril(RX)
        Sigma = second_block_inverse(L_RR)
        self.S22 = np.ascontiguousarray(Sigma[:Q2, :Q2])
        self.S2b = np.ascontiguousarray(Sigma[:Q2, Q2:])
        self.Sbb = np.ascontiguousarray(Sigma[Q2:, Q2:])
        self.Q2 = Q2
        # L₂₁ = Λ₂ᵀ G, by level of the first factor: its rows and their q₁ values.
        q1, m1 = self.q1, self.m1
        L21 = (lambda_t_matrix(self.terms[1:], factor.T[1:]) @ factor.G).tocoo()
        level, col = np.divmod(L21.col.astype(np.int64), q1)
        key = level * Q2 + L21.row
        unique, inverse = np.unique(key, return_inverse=True)
        values = np.bincount(inverse * q1 + col, L21.data, minlength=unique.size * q1)
        self._supp_values = values.reshape(unique.size, q1)
        supp_level, self._supp_rows = np.divmod(unique, Q2)
        self._supp_rows = self._supp_rows.astype(np.intp)
        self._supp_ptr = np.searchsorted(supp_level, np.arange(m1 + 1)).astype(np.intp)
        # Per level: E = L₂₁,gᵀ Σ₂₂ L₂₁,g (q1 × q1) and J = L₂₁,gᵀ Σ₂β (q1 × p).
        L21 = L21.tocsc()
        self._E = self._per_level_quadratic(L21)
        self._J = np.asarray(L21.T @ self.S2b).reshape(m1, q1, p)

    def _per_level_quadratic(self, L21):
        """``E_g = L₂₁,gᵀ Σ₂₂ L₂₁,g`` per level: ``L₂₁ᵀ Σ₂₂`` for a batch of levels (dense,
        a bounded number of entries at a time), then its products with ``L₂₁``'s own
        entries on each level's columns."""
        m1, q1, Q2 = self.m1, self.q1, self.Q2
        E = np.zeros(m1 * q1 * q1)
        step = max(1, _DENSE_ENTRIES // max(q1 * Q2, 1))
        for lo in range(0, m1, step):
            hi = min(lo + step, m1)
            block = L21[:, lo * q1 : hi * q1]
            W = np.asarray(block.T @ self.S22)  # rows (level, a) of L₂₁ᵀ Σ₂₂
            entries = block.tocoo()
            level, b = np.divmod(entries.col, q1)
            for a in range(q1):
                values = W[level * q1 + a, entries.row] * entries.data
                index = ((lo + level) * q1 + a) * q1 + b
                E += np.bincount(index, values, minlength=E.size)
        return E.reshape(m1, q1, q1)

    # -- evaluation ------------------------------------------------------------------
    def quadratic_forms(self, rows: JointRows) -> np.ndarray:
        """``aᵢᵀ C⁻¹ aᵢ`` for every row.

        Parameters
        ----------
        rows : JointRows

        Returns
        -------
        ndarray of shape (n,)
        """
        n = rows.n
        out = np.empty(n)
        step = _CHUNK_ROWS // (4 if self.has_second_block else 1)
        for start in range(0, n, step):
            stop = min(start + step, n)
            out[start:stop] = self._chunk(rows.chunk(start, stop))
        return out

    def _chunk(self, rows: JointRows):
        n = rows.n
        out = np.zeros(n)
        rb = np.array(rows.x, dtype=float)  # r_β = x − L₃₁ v₁
        v1 = None
        if rows.rows1.size:
            levels, coef = rows.levels1, rows.coef1
            v1 = np.zeros((levels.size, self.q1))
            for (a, b), entries in self._L_inv.items():
                v1[:, a] += np.take(entries, levels) * coef[:, b]
            share = np.einsum("ka,ka->k", v1, v1)
            if self.p:
                # One gather of each row's level block and one contraction: fewer
                # row-sized temporaries than a pass per column.
                contribution = np.einsum("kap,ka->kp", np.take(self._L31, levels, axis=0), v1)
            if rows.one_per_row:
                out += share
                if self.p:
                    rb -= contribution
            else:
                out += np.bincount(rows.rows1, share, minlength=n)
                if self.p:
                    rb -= _sum_by_row(rows.rows1, contribution, n)
        if self.has_second_block:
            out += self._rest(rows, v1, rb)
        elif self.p:
            out += np.einsum("nk,nk->n", rb @ self.Sbb, rb)
        return out

    def _rest(self, rows, v1, rb):
        """``rᵀ Σ r`` of the rest ``R = (block 2, β)``, ``r = a_R − L_R1 v₁``."""
        n = rows.n
        out = np.einsum("nk,nk->n", rb @ self.Sbb, rb) if self.p else np.zeros(n)
        own_rows, own_index, own_value = rows.rows2, rows.index2, rows.value2
        # Own entries among themselves, and with r_β.
        first, second = pairs_within(np.bincount(own_rows, minlength=n))
        out += np.bincount(
            own_rows[first],
            own_value[first] * own_value[second] * self.S22[own_index[first], own_index[second]],
            minlength=n,
        )
        if self.p:
            cross = own_value * np.einsum("ek,ek->e", self.S2b[own_index], rb[own_rows])
            out += 2.0 * np.bincount(own_rows, cross, minlength=n)
        if v1 is None:
            return out
        per_row = np.bincount(rows.rows1, minlength=n)
        single = per_row[rows.rows1] == 1
        if single.any():
            out += self._rest_single(rows, v1, rb, single, n)
        if not single.all():
            out += self._rest_dense(rows, v1, rb, ~single)
        return out

    def _rest_single(self, rows, v1, rb, single, n):
        """Rows with one first-block level ``g``: ``t = L₂₁,g v₁`` enters through the
        per-level ``E``, ``J`` and the pairs of own entries with ``g``'s rows of ``L₂₁``."""
        r1, g, v = rows.rows1[single], rows.levels1[single], v1[single]
        out = np.bincount(r1, np.einsum("ka,kab,kb->k", v, self._E[g], v), minlength=n)
        if self.p:
            Jr = np.einsum("kab,kb->ka", self._J[g], rb[r1])
            out -= 2.0 * np.bincount(r1, np.einsum("ka,ka->k", v, Jr), minlength=n)
        # −2 ownᵀ Σ₂₂ t over the pairs (own entry, entry of its row's level in L₂₁).
        level_of_row = np.full(n, -1, dtype=np.intp)
        level_of_row[r1] = g
        entry_of_row = np.full(n, -1, dtype=np.intp)
        entry_of_row[r1] = np.arange(r1.size)
        own_level = level_of_row[rows.rows2]
        has = own_level >= 0
        own = np.flatnonzero(has)
        if own.size:
            start = self._supp_ptr[own_level[own]]
            count = self._supp_ptr[own_level[own] + 1] - start
            e = np.repeat(own, count)
            s = np.repeat(start, count) + _offsets(count)
            t = np.einsum("ka,ka->k", self._supp_values[s], v[entry_of_row[rows.rows2[e]]])
            term = rows.value2[e] * self.S22[rows.index2[e], self._supp_rows[s]] * t
            out -= 2.0 * np.bincount(rows.rows2[e], term, minlength=n)
        return out

    def _rest_dense(self, rows, v1, rb, multi):
        """Rows with several first-block levels (a correction spread over levels):
        ``t = Σₑ L₂₁,gₑ v₁,ₑ`` formed densely, a few rows at a time. The own entries' terms
        are already counted; ``(own − t)ᵀΣ₂₂(own − t)`` adds ``tᵀΣ₂₂t − 2 ownᵀΣ₂₂t`` and
        the cross term with ``r_β`` adds ``−2 tᵀΣ₂β r_β``."""
        out = np.zeros(rows.n)
        entries = np.flatnonzero(multi)
        targets = np.unique(rows.rows1[entries])
        step = max(1, _DENSE_ENTRIES // max(self.Q2, 1))
        for lo in range(0, targets.size, step):
            chunk_rows = targets[lo : lo + step]
            local = np.full(rows.n, -1, dtype=np.intp)
            local[chunk_rows] = np.arange(chunk_rows.size)
            sel = entries[local[rows.rows1[entries]] >= 0]
            start = self._supp_ptr[rows.levels1[sel]]
            count = self._supp_ptr[rows.levels1[sel] + 1] - start
            e = np.repeat(sel, count)
            s = np.repeat(start, count) + _offsets(count)
            t = np.zeros((chunk_rows.size, self.Q2))
            np.add.at(
                t,
                (local[rows.rows1[e]], self._supp_rows[s]),
                np.einsum("ka,ka->k", self._supp_values[s], v1[e]),
            )
            own = local[rows.rows2] >= 0
            r2own = np.zeros_like(t)
            np.add.at(r2own, (local[rows.rows2[own]], rows.index2[own]), rows.value2[own])
            St = t @ self.S22
            share = np.einsum("kq,kq->k", St, t) - 2.0 * np.einsum("kq,kq->k", St, r2own)
            if self.p:
                share -= 2.0 * np.einsum("kq,kq->k", t @ self.S2b, rb[chunk_rows])
            out[chunk_rows] += share
        return out


def _sum_by_row(rows, values, n):
    """Rows of ``values`` summed by ``rows`` into an ``(n, k)`` array."""
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, rows, values)
    return out


def _offsets(counts):
    """``0, 1, ..., c − 1`` for each ``c`` of ``counts``, concatenated."""
    counts = np.asarray(counts, dtype=np.intp)
    return np.arange(int(counts.sum()), dtype=np.intp) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
