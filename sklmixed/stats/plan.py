"""What the partitions of a reduction agree on before any cross-product is formed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ReductionPlan",
    "plan",
    "least_squares_offset",
    "rounding_noise",
    "block_order",
    "scales_from_sums",
    "exact_fit_rule",
]


@dataclass(frozen=True)
class ReductionPlan:
    """The agreed layout of a reduction.

    Attributes
    ----------
    order : tuple of int
        Positions of the model's factors in block order: most levels first (its
        ``ZᵀZ`` block stays block diagonal), then the rest by decreasing levels.
    scales : tuple of ndarray
        Per factor in block order, the root mean square of each random-effect column;
        columns are divided by it, so θ is optimized for unit-scale columns.
    offset : ndarray of shape (p,)
        Coefficients of a least-squares fit of ``y`` on ``X``, removed from ``y``
        before the reduction (it only shifts β).
    exact_fit : bool
        Whether the least-squares residuals are rounding errors of ``y``.
    """

    order: tuple
    scales: tuple
    offset: np.ndarray
    exact_fit: bool = False


def block_order(n_levels) -> tuple:
    """Factors by decreasing number of levels (stable): the first is block diagonal."""
    return tuple(sorted(range(len(n_levels)), key=lambda i: -n_levels[i]))


def column_scales(columns, frequency=None) -> np.ndarray:
    """Root mean square of each column (frequency-weighted); 1 for a column of zeros."""
    if frequency is None:
        return scales_from_sums(np.einsum("ij,ij->j", columns, columns), columns.shape[0])
    return scales_from_sums(np.einsum("i,ij,ij->j", frequency, columns, columns), frequency.sum())


def scales_from_sums(sums_of_squares, n) -> np.ndarray:
    """Root mean squares from column sums of squares over ``n`` rows; 1 for a zero column
    (the form in which partitions of a distributed reduction deliver them)."""
    rms = np.sqrt(np.asarray(sums_of_squares, dtype=float) / n)
    return np.where(rms > 0, rms, 1.0)


def least_squares_offset(X, y, XtX=None, frequency=None):
    """Coefficients of a least-squares fit of ``y`` on ``X``, refined once.

    Removing this fit before forming cross-products keeps ``yᵀy`` from swamping the
    penalized residual sum of squares (a response around 1e6 would otherwise lose
    every significant digit of it). Any offset is valid: it only shifts β.

    Returns
    -------
    coef : ndarray of shape (p,)
    resid : ndarray of shape (n,)
        ``y - X @ coef``.
    """
    if X.shape[1] == 0:
        return np.zeros(0), y
    Xw = X if frequency is None else X * frequency[:, None]
    if XtX is None:
        XtX = Xw.T @ X
    gamma = np.linalg.lstsq(XtX, Xw.T @ y, rcond=None)[0]
    resid = y - X @ gamma
    correction = np.linalg.lstsq(XtX, Xw.T @ resid, rcond=None)[0]
    return gamma + correction, resid - X @ correction


def rounding_noise(resid, y) -> bool:
    """Whether the least-squares residuals ``resid`` of ``y`` are rounding errors of ``y``
    (an exact fit: root mean square within 1e3 machine epsilons of ``max |y|``, a margin
    far above the rounding of any BLAS kernel and far below any real residual)."""
    scale = float(np.abs(y).max()) if y.size else 0.0
    return exact_fit_rule(float(np.sqrt(np.mean(resid**2))), scale)


def exact_fit_rule(resid_rms, y_max_abs) -> bool:
    """:func:`rounding_noise` from the residuals' root mean square and ``max |y|``."""
    return resid_rms <= 1e3 * np.finfo(float).eps * y_max_abs


def plan(arrays, y=None):
    """The :class:`ReductionPlan` of in-memory model arrays, and the offset residuals.

    Parameters
    ----------
    arrays : ModelArrays
    y : ndarray of shape (n,), optional
        The response to reduce; default ``arrays.y`` (less ``arrays.offset``).

    Returns
    -------
    ReductionPlan
    resid : ndarray of shape (n,)
        ``y`` less the least-squares fit (and the offset).
    """
    if y is None:
        y = arrays.y if arrays.offset is None else arrays.y - arrays.offset
    frequency = arrays.frequency
    order = block_order([f.n_levels for f in arrays.factors])
    scales = tuple(column_scales(arrays.factors[i].columns, frequency) for i in order)
    offset, resid = least_squares_offset(arrays.X, y, frequency=frequency)
    return ReductionPlan(order, scales, offset, rounding_noise(resid, y)), resid
