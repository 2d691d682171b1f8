"""The additive cross-products of ``[Z X y]`` and their arrangement in blocks.

Notation follows lme4 (Bates et al. 2015, section 3) and MixedModels.jl. Random-effect
columns are split in two blocks: block 1 is the grouping factor with the most levels,
whose ``ZᵀZ`` block is block diagonal (one ``q₁ × q₁`` block per level); block 2
stacks every other factor. The third block is ``[X y]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .plan import ReductionPlan, plan
from .second_block import SecondBlockMap, blocks_of_z2tz1, second_block_map

__all__ = ["SufficientStats", "CrossProducts", "partial_stats", "reduce"]

# Rows are reduced this many at a time, so that the temporaries ([X y] with weights,
# the sparse Z of the chunk) stay small whatever the number of observations.
CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class SufficientStats:
    """Cross-products of ``[Z X y]`` (scaled, weighted, offset as the plan says).

    Every array field is a sum over rows: the statistics of two sets of rows reduced
    with the same plan add up (``a + b``) to those of their union.

    Attributes
    ----------
    plan : ReductionPlan
    n_levels, q : tuple of int
        Levels and columns of each factor, in block order.
    blocks : tuple of tuple of tuple of int
        Correlated blocks of each factor's columns, in block order.
    A11 : ndarray of shape (q1, q1, m1)
        Per-level ``Z₁ᵀZ₁`` of the first factor, levels last (lower triangles).
    Z1tXY : ndarray of shape (q1, p + 1, m1)
        Per-level ``Z₁ᵀ[X y]``.
    XYtXY : ndarray of shape (p + 1, p + 1)
    Z2tXY : ndarray of shape (Q2, p + 1) or None
    A22 : scipy.sparse.csr_array of shape (Q2, Q2) or None
        ``Z₂ᵀZ₂``.
    Z2tZ1 : scipy.sparse.csr_array of shape (Q2, Q1) or None
    level_counts : tuple of ndarray
        Observations per level of each factor (counted with the frequency weights,
        not the prior ones), for the starting values.
    level_resid_sums : tuple of ndarray
        Sum of the offset residuals per level of each factor (frequency-weighted).
    resid_sum, resid_sumsq : float
        Sum and sum of squares of the offset residuals (frequency-weighted).
    n_obs : float
        Number of observations: rows, or the sum of the frequency weights.
    sum_log_weights : float
        ``Σ fᵢ log wᵢ`` of the prior weights ``w`` (0 when there are none), with the
        frequency weights ``f``.
    """

    plan: ReductionPlan
    n_levels: tuple
    q: tuple
    blocks: tuple
    A11: np.ndarray
    Z1tXY: np.ndarray
    XYtXY: np.ndarray
    Z2tXY: np.ndarray | None
    A22: sp.csr_array | None
    Z2tZ1: sp.csr_array | None
    level_counts: tuple
    level_resid_sums: tuple
    resid_sum: float
    resid_sumsq: float
    n_obs: int
    sum_log_weights: float

    @property
    def n_fixed(self) -> int:
        """Number of fixed-effect columns."""
        return self.XYtXY.shape[0] - 1

    _ADDITIVE = (
        "A11", "Z1tXY", "XYtXY", "Z2tXY", "A22", "Z2tZ1", "resid_sum", "resid_sumsq",
        "n_obs", "sum_log_weights",
    )  # fmt: skip

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if (self.n_levels, self.q, self.blocks) != (other.n_levels, other.q, other.blocks):
            raise ValueError("Statistics of different model structures cannot be added.")
        summed = {
            name: None if getattr(self, name) is None else getattr(self, name) + getattr(other, name)
            for name in self._ADDITIVE
        }
        summed["level_counts"] = tuple(a + b for a, b in zip(self.level_counts, other.level_counts))
        summed["level_resid_sums"] = tuple(
            a + b for a, b in zip(self.level_resid_sums, other.level_resid_sums)
        )
        return replace(self, **summed)

    def finalize(self) -> CrossProducts:
        """The statistics in the blocks the factorization reads."""
        q1 = self.q[0] if self.q else 1
        A11 = self.A11.copy()
        for a in range(q1):  # the upper triangles from the lower ones
            A11[:a, a] = A11[a, :a]
        A21 = A21_rows = A21_levels = S22_map = None
        if self.Z2tZ1 is not None:
            A21, A21_rows, A21_levels = blocks_of_z2tz1(self.Z2tZ1, self.n_levels[0], q1)
            widths = [m * q for m, q in zip(self.n_levels[1:], self.q[1:])]
            term_of_row = np.repeat(np.arange(len(widths)), widths)
            S22_map = second_block_map(
                A21, A21_rows, A21_levels, self.A22, self.n_levels[0], term_of_row
            )
        return CrossProducts(
            A11_entries=A11,
            Z1tXY_rows=np.ascontiguousarray(self.Z1tXY.transpose(0, 2, 1)),
            A21=A21,
            A21_rows=A21_rows,
            A21_levels=A21_levels,
            A22=self.A22,
            Z2tXY=self.Z2tXY,
            S22_map=S22_map,
            XYtXY=self.XYtXY,
            n_obs=self.n_obs,
            n_fixed=self.n_fixed,
            sum_log_weights=self.sum_log_weights,
        )


@dataclass(frozen=True)
class CrossProducts:
    """``[Z X y]ᵀ[Z X y]`` in the blocks the factorization needs.

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
        The lower triangle of block 2 as a linear map of a few per-θ weights. None
        when it would hold too many entries; a sparse product gives ``G Gᵀ`` then.
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


def reduce(arrays, y=None, weights=None) -> SufficientStats:
    """The sufficient statistics of in-memory model arrays: :func:`plan`, then
    :func:`partial_stats` of all rows.

    Parameters
    ----------
    arrays : ModelArrays
        Its ``factors`` must carry level codes in ``range(n_levels)`` (fitted data).
    y, weights : ndarray of shape (n,), optional
        The response and prior weights to reduce instead of ``arrays``'s own (PIRLS
        passes working responses and weights).

    Returns
    -------
    SufficientStats
    """
    if y is None:
        y = arrays.y if arrays.offset is None else arrays.y - arrays.offset
    layout, resid = plan(arrays, y)
    weights = arrays.weights if weights is None else weights
    return partial_stats(arrays, layout, resid, weights, arrays.frequency)


def partial_stats(arrays, layout: ReductionPlan, resid, weights=None, frequency=None):
    """Statistics of one set of rows under an agreed plan (one chunk, file or partition).

    Parameters
    ----------
    arrays : ModelArrays
    layout : ReductionPlan
    resid : ndarray of shape (n,)
        The response less ``arrays.X @ layout.offset``.
    weights : ndarray of shape (n,), optional
        Prior weights (row ``i`` has residual variance ``σ²/wᵢ``).
    frequency : ndarray of shape (n,), optional
        Frequency weights (row ``i`` counts ``fᵢ`` times).

    Returns
    -------
    SufficientStats
    """
    X = arrays.X
    n, p = X.shape
    factors = [arrays.factors[i] for i in layout.order]
    # Both kinds of weights multiply the cross-products alike; they differ in what
    # counts as an observation (n, the level counts) and in Σ log w.
    combined = weights if frequency is None else (frequency if weights is None else weights * frequency)
    sqrt_weights = None if combined is None else np.sqrt(combined)
    if factors:
        first, rest = factors[0], factors[1:]
        m1, q1 = first.n_levels, first.q
    else:
        first, rest, m1, q1 = None, [], 0, 1
    widths = [f.n_levels * f.q for f in rest]
    Q2 = int(sum(widths))
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
    scales = layout.scales

    A11 = np.zeros((q1, q1, m1))
    Z1tXY = np.zeros((q1, p + 1, m1))
    Z2tXY = np.zeros((Q2, p + 1))
    XYtXY = np.zeros((p + 1, p + 1))
    grouped = first is not None and _rows_grouped(first.codes, m1)
    for start in range(0, n, CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, n))
        XYt = np.empty((p + 1, rows.stop - start))  # [X y]ᵀ: rows contiguous
        XYt[:p] = X[rows].T
        XYt[p] = resid[rows]
        if sqrt_weights is not None:
            XYt *= sqrt_weights[rows]
        XYtXY += XYt @ XYt.T
        if first is None:
            continue
        Z1cols = first.columns[rows] / scales[0]
        if sqrt_weights is not None:
            Z1cols = Z1cols * sqrt_weights[rows, None]
        codes = first.codes[rows]
        if grouped:
            _add_segment_sums(A11, Z1tXY, codes, np.ascontiguousarray(Z1cols.T), XYt)
        else:
            _add_scattered_sums(A11, Z1tXY, codes, Z1cols, XYt.T)
        for factor, scale, offset in zip(rest, scales[1:], offsets):
            Z2tXY += _factor_matrix(factor, scale, sqrt_weights, offset, Q2, rows).T @ XYt.T
    A22 = Z2tZ1 = None
    if rest:
        Z1 = _factor_matrix(first, scales[0], sqrt_weights, 0, m1 * q1)
        Z2 = sum(
            _factor_matrix(f, s, sqrt_weights, o, Q2) for f, s, o in zip(rest, scales[1:], offsets)
        ).tocsr()
        Z2t = Z2.T.tocsr()
        A22 = (Z2t @ Z2).tocsr()
        Z2tZ1 = (Z2t @ Z1).tocsr()
    if weights is None:
        sum_log_weights = 0.0
    elif frequency is None:
        sum_log_weights = float(2.0 * np.log(sqrt_weights).sum())
    else:
        sum_log_weights = float(frequency @ np.log(weights))
    counted = resid if frequency is None else frequency * resid
    return SufficientStats(
        plan=layout,
        n_levels=tuple(f.n_levels for f in factors),
        q=tuple(f.q for f in factors),
        blocks=tuple(f.blocks for f in factors),
        A11=A11,
        Z1tXY=Z1tXY,
        XYtXY=XYtXY,
        Z2tXY=Z2tXY if rest else None,
        A22=A22,
        Z2tZ1=Z2tZ1,
        level_counts=tuple(
            np.bincount(f.codes, frequency, minlength=f.n_levels).astype(float) for f in factors
        ),
        level_resid_sums=tuple(
            np.bincount(f.codes, counted, minlength=f.n_levels) for f in factors
        ),
        resid_sum=float(counted.sum()),
        resid_sumsq=float(counted @ resid),
        n_obs=n if frequency is None else float(frequency.sum()),
        sum_log_weights=sum_log_weights,
    )


def _factor_matrix(factor, scale, sqrt_weights, offset, width, rows=slice(None)):
    """``Z`` of one factor as a CSR matrix of ``width`` columns, level-major from ``offset``."""
    vals = factor.columns[rows] / scale
    if sqrt_weights is not None:
        vals = vals * sqrt_weights[rows, None]
    return _level_columns(factor.codes[rows], vals, offset, width)


def _level_columns(codes, vals, offset, width):
    """The CSR matrix whose row i holds ``vals[i]`` in the columns of level ``codes[i]``."""
    n, q = vals.shape
    cols = offset + codes[:, None] * q + np.arange(q)
    return sp.csr_array(
        (np.ravel(vals), cols.ravel(), np.arange(0, n * q + 1, q)), shape=(n, width)
    )


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
    (``A11``: the lower triangle; the upper one is filled by symmetry at the end)."""
    q, _, m = A11.shape
    Z1tXY += (_level_columns(codes, Zcols, 0, m * q).T @ XY).reshape(m, q, -1).transpose(1, 2, 0)
    for a in range(q):
        for b in range(a + 1):
            A11[a, b] += np.bincount(codes, Zcols[:, a] * Zcols[:, b], minlength=m)
