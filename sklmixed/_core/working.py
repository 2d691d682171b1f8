"""The weighted cross-products of PIRLS's working system, with their layout fixed once.

Each PIRLS step needs ``[Z X z]ᵀ W [Z X z]`` for new working weights ``W`` and
response ``z``, in the blocks of :class:`~sklmixed.stats.CrossProducts`. Only ``W``
and ``z`` change between steps; which entries are non-zero does not. So
:class:`WorkingLayout` computes once, from the design, every sparse pattern (``Zᵀ``
of each block, the pairs of block-2 columns sharing a row, the blocks of ``Z₂ᵀZ₁``)
and each step is a few ``bincount`` and sparse-times-dense products over the rows:
the same statistics :func:`~sklmixed.stats.partial_stats` computes for a fixed
response, without rebuilding a sparse matrix or the θ-map of block 2 (which pays
only when many θ share one set of statistics).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..stats import CrossProducts

__all__ = ["WorkingLayout"]


def _row_entries(codes, cols, offset):
    """Per row, the global column and value of each of a factor's ``q`` columns."""
    n, q = cols.shape
    return offset + codes[:, None] * q + np.arange(q), cols


class WorkingLayout:
    """Fixed sparse patterns of ``[Z X]`` for repeated weighted reductions.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    columns : sequence of ndarray of shape (n, q)
        Each factor's scaled random-effect columns, block order.
    codes : sequence of ndarray of shape (n,)
        Each factor's level codes, block order.
    n_levels : sequence of int
    """

    def __init__(self, X, columns, codes, n_levels):
        self.X = X
        n, p = X.shape
        self.n, self.p = n, p
        first_cols, first_codes = columns[0], codes[0]
        self.m1, self.q1 = int(n_levels[0]), first_cols.shape[1]
        self.codes1 = first_codes
        self.cols1 = first_cols
        m1, q1 = self.m1, self.q1
        c1, v1 = _row_entries(first_codes, first_cols, 0)
        # Z₁ᵀ as CSR (rows level-major): Z₁ᵀ (W [X z]) is one sparse-times-dense product.
        self.Z1t = sp.csr_array(
            (v1.ravel(), (c1.ravel(), np.repeat(np.arange(n), q1))), shape=(m1 * q1, n)
        )
        self.Z1t.sum_duplicates()
        self.has_second = len(columns) > 1
        if not self.has_second:
            return
        widths = [int(m) * c.shape[1] for m, c in zip(n_levels[1:], columns[1:])]
        Q2 = int(sum(widths))
        offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        parts = [_row_entries(k, c, o) for k, c, o in zip(codes[1:], columns[1:], offsets)]
        c2 = np.column_stack([c for c, _ in parts])  # (n, k2) global block-2 columns
        v2 = np.column_stack([v for _, v in parts])
        k2 = c2.shape[1]
        self.Q2 = Q2
        self.Z2t = sp.csr_array(
            (v2.ravel(), (c2.ravel(), np.repeat(np.arange(n), k2))), shape=(Q2, n)
        )
        self.Z2t.sum_duplicates()
        # A₂₂ = Z₂ᵀWZ₂: entry (r, r') gathers Σᵢ Wᵢ z_ir z_ir' over rows sharing both.
        ia, ib = np.meshgrid(np.arange(k2), np.arange(k2), indexing="ij")
        ia, ib = ia.ravel(), ib.ravel()
        key = c2[:, ia].astype(np.int64) * Q2 + c2[:, ib]  # (n, k2²)
        self._a22_keys, self._a22_index = np.unique(key.ravel(), return_inverse=True)
        self._a22_coef = (v2[:, ia] * v2[:, ib]).ravel()
        self._a22_rows = np.repeat(np.arange(n), k2 * k2)
        # Sorted keys r · Q2 + c are CSR order: the pattern is fixed once.
        a22_r = self._a22_keys // Q2
        self._a22_indices = (self._a22_keys % Q2).astype(np.int32)
        self._a22_indptr = np.searchsorted(a22_r, np.arange(Q2 + 1)).astype(np.int32)
        self._a22_shape = (Q2, Q2)
        # Z₂ᵀZ₁ in blocks of width q1: block (row r of block 2, level s of factor 1).
        key = c2.astype(np.int64) * m1 + first_codes[:, None]  # (n, k2)
        keys, index = np.unique(key.ravel(), return_inverse=True)
        self.A21_rows = (keys // m1).astype(np.intp)
        self.A21_levels = (keys % m1).astype(np.intp)
        self._a21_blocks = keys.size
        # Entry (block, a) gathers Wᵢ z₂ z₁ₐ: flat index block · q1 + a.
        self._a21_index = (index.reshape(n, k2, 1) * q1 + np.arange(q1)).ravel()
        self._a21_coef = (v2[:, :, None] * first_cols[:, None, :]).ravel()
        self._a21_rows = np.repeat(np.arange(n), k2 * q1)

    def cross_products(self, weights, z) -> CrossProducts:
        """``[Z X z]ᵀ W [Z X z]`` in blocks.

        Parameters
        ----------
        weights : ndarray of shape (n,)
            Working weights ``W``.
        z : ndarray of shape (n,)
            Working response (offset removed).

        Returns
        -------
        CrossProducts
            Without the θ-map of block 2 (``S22_map`` None).
        """
        n, p, m1, q1 = self.n, self.p, self.m1, self.q1
        XY = np.empty((n, p + 1))
        XY[:, :p] = self.X
        XY[:, p] = z
        WXY = XY * weights[:, None]
        XYtXY = WXY.T @ XY
        Z1tXY = (self.Z1t @ WXY).reshape(m1, q1, p + 1)
        A11 = np.empty((q1, q1, m1))
        Wz = self.cols1 * weights[:, None]
        for a in range(q1):
            for b in range(a + 1):
                A11[a, b] = np.bincount(self.codes1, Wz[:, a] * self.cols1[:, b], minlength=m1)
                A11[b, a] = A11[a, b]
        A21 = A22 = Z2tXY = None
        if self.has_second:
            Z2tXY = self.Z2t @ WXY
            vals = np.bincount(
                self._a22_index, self._a22_coef * weights[self._a22_rows],
                minlength=self._a22_keys.size,
            )  # fmt: skip
            A22 = sp.csr_array(
                (vals, self._a22_indices, self._a22_indptr), shape=self._a22_shape
            )
            A21 = np.bincount(
                self._a21_index, self._a21_coef * weights[self._a21_rows],
                minlength=self._a21_blocks * q1,
            ).reshape(self._a21_blocks, q1)  # fmt: skip
        return CrossProducts(
            A11_entries=A11,
            Z1tXY_rows=np.ascontiguousarray(Z1tXY.transpose(1, 0, 2)),
            A21=A21,
            A21_rows=self.A21_rows if self.has_second else None,
            A21_levels=self.A21_levels if self.has_second else None,
            A22=A22,
            Z2tXY=Z2tXY,
            S22_map=None,
            XYtXY=XYtXY,
            n_obs=n,
            n_fixed=p,
            sum_log_weights=0.0,
        )
