"""The criterion of one grouping factor with one or two columns, without the blocked factor.

With one grouping factor, the ``[X y]`` Schur complement of ``L Lᵀ`` is::

    S(θ) = [X y]ᵀ[X y] − Σᵢ Wᵢᵀ Nᵢ Wᵢ,    Nᵢ = T Mᵢ⁻¹ Tᵀ,  Mᵢ = Tᵀ Aᵢ T + I,

with ``Aᵢ = Z₁ᵢᵀZ₁ᵢ`` and ``Wᵢ = Z₁ᵢᵀ[X y]`` per level ``i``. ``S`` is linear in the
``q(q+1)/2`` distinct entries of each ``Nᵢ``, so once the products ``Wᵢ[a]ᵀWᵢ[b]`` are
stored, an evaluation is a closed-form inverse per level (``q ≤ 2``), one
matrix-vector product and a ``(p+1) × (p+1)`` Cholesky factorization, with
``log |L_Z|² = Σᵢ log |Mᵢ|``. That is half the array operations of the blocked factor,
and half the time on the Exam models (65 levels), where each operation's overhead
outweighs its arithmetic. The stored products take ``m·q(q+1)/2·(p+1)²`` entries, so
the map is built only while they fit in a few megabytes; the blocked factor
(:func:`~sklmixed._core.blocks.factorize`) remains the path for larger terms, for the
gradient and for the solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scipy.linalg.lapack import dpotrf as _potrf

from .blocks import CrossProducts
from .deviance import criterion_from_parts, objective
from .terms import RandomTerm

__all__ = ["SchurComplementMap", "schur_complement_map", "compact_objective"]

# Stored products beyond this (8 MB) would weigh on memory. Up to it, the map beats the
# blocked factor at every size measured (2× at 65 levels, 3× at 10,000 levels, q = 2).
_MAX_ENTRIES = 1 << 20


@dataclass(frozen=True)
class SchurComplementMap:
    """``S(θ) = XYtXY − products @ N(θ)`` for one grouping factor.

    Attributes
    ----------
    A_entries : ndarray of shape (q, q, m)
        Per-level ``Z₁ᵀZ₁``, levels last (as in :class:`CrossProducts`).
    A_pairs : ndarray of shape (n_pairs + 1, m)
        The entries ``(a, b)``, ``a ≥ b``, of every level's ``Z₁ᵀZ₁``, then a row of
        ones (the identity in ``Mᵢ``).
    products : ndarray of shape ((p + 1)², n_pairs · m)
        Column ``(pair, i)`` is ``Wᵢ[a]ᵀWᵢ[b]``, symmetrized (``+ Wᵢ[b]ᵀWᵢ[a]`` when
        ``a ≠ b``) and flattened, for the pairs ``a ≥ b`` of random-effect columns.
    pair_rows, pair_cols : ndarray of int
        ``a`` and ``b`` of each pair.
    XYtXY : ndarray of shape (p + 1, p + 1)
        ``[X y]ᵀ[X y]``.
    """

    A_entries: np.ndarray
    A_pairs: np.ndarray
    products: np.ndarray
    pair_rows: np.ndarray
    pair_cols: np.ndarray
    XYtXY: np.ndarray


def schur_complement_map(cp: CrossProducts, max_entries=_MAX_ENTRIES):
    """The map for a single grouping factor, or None where the blocked factor is faster.

    The map needs closed-form per-level inverses (``q ≤ 2``); for ``q = 3`` two
    congruences and a triangular inverse per level cost more than the factor saves.

    Parameters
    ----------
    cp : CrossProducts
        Cross-products; None is returned unless they hold one grouping factor.
    max_entries : int
        Largest number of stored products.

    Returns
    -------
    SchurComplementMap or None
    """
    if cp.has_second_block or cp.A11_entries.shape[0] > 2:
        return None
    A, W = cp.A11_entries, cp.Z1tXY_rows  # (q, q, m), (q, m, k)
    q, m, k = W.shape
    pair_rows, pair_cols = np.tril_indices(q)
    if pair_rows.size * m * k * k > max_entries:
        return None
    outer = np.einsum("pmi,pmj->pmij", W[pair_rows], W[pair_cols])
    off = pair_rows != pair_cols
    outer[off] += outer[off].transpose(0, 1, 3, 2)
    products = np.ascontiguousarray(outer.reshape(-1, k * k).T)
    A_pairs = np.vstack([A[pair_rows, pair_cols], np.ones((1, m))])
    return SchurComplementMap(A, A_pairs, products, pair_rows, pair_cols, cp.XYtXY)


def compact_objective(theta, smap: SchurComplementMap, term: RandomTerm, cp, reml: bool):
    """The profiled criterion at θ from the map (see the module docstring).

    Equal to :func:`~sklmixed._core.deviance.objective` up to rounding, which
    answers instead where the Schur complement is on the edge of positive
    definiteness.
    """
    T = term.factor(theta)
    A = smap.A_entries
    q = A.shape[0]
    if q == 1:
        t2 = T[0, 0] * T[0, 0]
        det = t2 * A[0, 0] + 1.0
        N = t2 / det
        logdet_L = float(np.log(det).sum())
    else:
        logdet_L, N = _inverse_2x2(T, smap.A_pairs)
    k = smap.XYtXY.shape[0]
    S = smap.XYtXY - (smap.products @ N.ravel()).reshape(k, k)
    L33, info = _potrf(S, lower=True, clean=False)
    if info != 0 or not L33[-1, -1] > 0.0:
        # Rounding took S to the edge of positive definiteness (an exact fit, θ so
        # large that Z absorbs a column of X): the blocked factor's Gram products
        # decide there, as they do everywhere else.
        return objective(theta, cp, [term], reml)
    diag = L33.diagonal()
    logdet_RX = 2.0 * float(np.log(diag[:-1]).sum())
    return criterion_from_parts(logdet_L, logdet_RX, float(diag[-1]) ** 2, cp, reml)


def _inverse_2x2(T, A_pairs):
    """``log |L_Z|²`` and the entries (0,0), (1,0), (1,1) of ``Nᵢ`` for ``q = 2``.

    ``Mᵢ⁻¹`` is the adjugate over the determinant. The adjugate's entries are linear
    in ``Aᵢ``'s (one matrix product with weights quadratic in ``T``), and ``Nᵢ``'s
    entries are linear in the adjugate's (another).
    """
    t00, t10, t11 = float(T[0, 0]), float(T[1, 0]), float(T[1, 1])
    # Rows: m11 + 1, −m10, m00 + 1 of M = TᵀAT + I, from A's (0,0), (1,0), (1,1), 1.
    adj = (
        np.array(
            [
                [0.0, 0.0, t11 * t11, 1.0],
                [0.0, -t00 * t11, -t10 * t11, 0.0],
                [t00 * t00, 2.0 * t00 * t10, t10 * t10, 1.0],
            ]
        )
        @ A_pairs
    )
    det = adj[0] * adj[2] - adj[1] * adj[1]
    # T M⁻¹ Tᵀ = T adj(M) Tᵀ / |M|.
    N = (
        np.array(
            [
                [t00 * t00, 0.0, 0.0],
                [t00 * t10, t00 * t11, 0.0],
                [t10 * t10, 2.0 * t10 * t11, t11 * t11],
            ]
        )
        @ adj
    )
    N /= det
    return float(np.log(det).sum()), N
