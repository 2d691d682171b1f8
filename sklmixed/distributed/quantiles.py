"""Exact quantiles of values spread over partitions, in two passes of small messages.

Pass 1 counts the values in 2²⁰ bins that follow the order of float64 (the top 20
bits of each value's order-preserving integer key: sign, exponent and 8 bits of
mantissa, so a bin spans 1/256 of an octave). The counts say which bins hold the
order statistics wanted; pass 2 returns only the values of those bins, which are
sorted on the client. The quantiles are then numpy's (and R's) default, type 7:
``v[k] + (h - k)(v[k+1] - v[k])`` with ``h = (n - 1) p``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_counts", "values_in_bins", "quantiles_from_bins", "wanted_bins"]

_BITS = 20
_SHIFT = 64 - _BITS
N_BINS = 1 << _BITS


def _keys(values):
    """Integer keys in the order of the float64 values (−0.0 just below +0.0)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, np.int64(-(2**63)) - bits - 1, bits)


def _bins(values):
    return (_keys(values) >> _SHIFT) + (N_BINS >> 1)


def bin_counts(values) -> np.ndarray:
    """Pass 1 on one partition: how many values fall in each bin."""
    return np.bincount(_bins(values), minlength=N_BINS).astype(np.int64)


def _ranks(n, probs):
    """The 0-based order statistics type-7 quantiles read, and their weights."""
    h = (n - 1) * np.asarray(probs, dtype=float)
    low = np.floor(h).astype(np.int64)
    return low, np.minimum(low + 1, n - 1), h - low


def wanted_bins(counts, probs) -> np.ndarray:
    """The bins holding the order statistics of the quantiles ``probs``."""
    n = int(counts.sum())
    low, high, _ = _ranks(n, probs)
    cumulative = np.cumsum(counts)
    return np.unique(np.searchsorted(cumulative, np.concatenate([low, high]), side="right"))


def values_in_bins(values, bins) -> np.ndarray:
    """Pass 2 on one partition: its values that fall in ``bins``."""
    return np.asarray(values, dtype=np.float64)[np.isin(_bins(values), bins)]


def quantiles_from_bins(counts, bins, values, probs) -> np.ndarray:
    """Type-7 quantiles from the bin counts and every value of the wanted bins."""
    n = int(counts.sum())
    low, high, weight = _ranks(n, probs)
    before = np.concatenate([[0], np.cumsum(counts)])
    values = np.asarray(values, dtype=np.float64)
    sorted_by_bin = {b: np.sort(values[_bins(values) == b]) for b in bins}

    def order_statistic(k):
        b = int(np.searchsorted(before[1:], k, side="right"))
        return sorted_by_bin[b][k - before[b]]

    lo = np.array([order_statistic(k) for k in low])
    hi = np.array([order_statistic(k) for k in high])
    return lo + weight * (hi - lo)
