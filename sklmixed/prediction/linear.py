"""Predictions from a fitted result on model arrays: ``Xβ + Σ Z b``."""

from __future__ import annotations

import numpy as np

__all__ = ["linear_predictor", "padded_modes", "prediction_mean"]


def padded_modes(result, factors):
    """Each factor's table of conditional modes with a row of zeros appended.

    Code −1 (a level never seen in fit) indexes that last row: an unseen group
    contributes nothing, so its prediction is the population-level one, exactly.
    """
    out = []
    for factor in factors:
        modes = result.random_effects[factor.name].to_numpy()
        out.append(np.vstack([modes, np.zeros((1, modes.shape[1]))]))
    return out


def linear_predictor(X, beta, factors, modes, offset=None):
    """``Xβ + Σ Z b`` (+ offset), each factor's modes looked up by its rows' level codes.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    beta : ndarray of shape (p,)
    factors : sequence of RandomFactor
        Their ``codes`` index the rows of ``modes``.
    modes : sequence of ndarray of shape (n_levels (+1), q)
    offset : ndarray of shape (n,), optional

    Returns
    -------
    ndarray of shape (n,)
    """
    out = X @ beta
    if offset is not None:
        out += offset
    for factor, factor_modes in zip(factors, modes):
        Z, code = factor.columns, factor.codes
        if Z.shape[1] == 1 or Z.flags.f_contiguous:
            # Column by column on Fortran-ordered columns (a formula's): contiguous
            # reads, the same products summed in the same order as the einsum.
            zb = Z[:, 0] * np.take(factor_modes[:, 0], code)
            for j in range(1, Z.shape[1]):
                zb += Z[:, j] * np.take(factor_modes[:, j], code)
            out += zb
        else:
            # np.take gathers rows without fancy indexing's overhead.
            out += np.einsum("ij,ij->i", Z, np.take(factor_modes, code, axis=0))
    return out


def prediction_mean(arrays, beta, modes, include):
    """``Xβ`` (+ offset) plus the modes of the included factors' known levels.

    Parameters
    ----------
    arrays : ModelArrays
        New data, coded by the fitted design (−1: a level never seen, which adds 0).
    beta : ndarray of shape (p,)
    modes : mapping of str to ndarray of shape (n_levels, q)
        Each factor's table of conditional modes (a
        :class:`~sklmixed.prediction.state.PredictionState`'s ``modes``, or a
        result's ``random_effects`` as arrays).
    include : tuple of str
        The factors whose random effects enter.

    Returns
    -------
    ndarray of shape (n,)
    """
    factors, tables = [], []
    for factor in arrays.factors:
        if factor.name in include:
            table = np.asarray(modes[factor.name], dtype=float)
            factors.append(factor)
            tables.append(np.vstack([table, np.zeros((1, table.shape[1]))]))
    return linear_predictor(arrays.X, beta, factors, tables, arrays.offset)
