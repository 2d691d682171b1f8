"""The criterion of one grouping factor with one or two columns, without the blocked factor.

With one grouping factor, the ``[X y]`` Schur complement of ``L Lᵀ`` is::

    S(θ) = [X y]ᵀ[X y] − Σᵢ Wᵢᵀ Nᵢ Wᵢ,    Nᵢ = T Mᵢ⁻¹ Tᵀ,  Mᵢ = Tᵀ Aᵢ T + I,

with ``Aᵢ = Z₁ᵢᵀZ₁ᵢ`` and ``Wᵢ = Z₁ᵢᵀ[X y]`` per level ``i``. ``S`` is linear in the
``q(q+1)/2`` distinct entries of each ``Nᵢ``, so once the products ``Wᵢ[a]ᵀWᵢ[b]`` are
stored, an evaluation is a closed-form inverse per level (``q ≤ 2``), one
matrix-vector product and a ``(p+1) × (p+1)`` Cholesky factorization, with
``log |L_Z|² = Σᵢ log |Mᵢ|``: a fraction of the blocked factor's array operations,
which matters where each operation's overhead outweighs its arithmetic (few levels;
``benchmarks/overhead.py`` measures it). The stored products take
``m·q(q+1)/2·(p+1)²`` entries, so
the map is built only while they fit in a few megabytes; the blocked factor
(:func:`~sklmixed._core.factor.factorize`) remains the path for larger terms, for the
gradient and for the solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf

from ..stats import CrossProducts
from .deviance import criterion_from_parts
from .terms import TermLayout

__all__ = ["SchurComplementMap", "schur_complement_map", "compact_batch"]

# Stored products beyond this (8 MB) would weigh on memory; up to it the map beat the
# blocked factor at every size benchmarks/overhead.py measured.
_MAX_ENTRIES = 1 << 20


# Rows and columns of the entries (a, b), a ≥ b, of a q × q block (np.tril_indices).
_PAIRS = {1: (np.array([0]), np.array([0])), 2: (np.array([0, 1, 1]), np.array([0, 0, 1]))}


# The rows |Mᵢ|, then T adj(Mᵢ) Tᵀ's (0,0), (1,0), (1,1), as linear maps of the level
# entries (|A|, A₀₀, A₁₀, A₁₁, 1), are Σ_c w_c _BASIS[c] for the weights
# w = (d², Σ₀₀, Σ₁₀, Σ₁₁, 1) of _weights.
_BASIS = np.zeros((5, 4, 5))
_BASIS[0, 0, 0] = _BASIS[0, 1, 3] = _BASIS[0, 3, 1] = 1.0  # d²: d²|A|, d² adj A
_BASIS[0, 2, 2] = -1.0
_BASIS[1, 0, 1] = _BASIS[1, 1, 4] = 1.0  # Σ₀₀
_BASIS[2, 0, 2], _BASIS[2, 2, 4] = 2.0, 1.0  # Σ₁₀ (A₁₀ counts twice in tr ΣA)
_BASIS[3, 0, 3] = _BASIS[3, 3, 4] = 1.0  # Σ₁₁
_BASIS[4, 0, 4] = 1.0  # the 1 of |M| = d²|A| + tr ΣA + 1


@dataclass(frozen=True)
class SchurComplementMap:
    """``S(θ) = XYtXY − products @ N(θ)`` for one grouping factor.

    Attributes
    ----------
    level_entries : ndarray of shape (m,) or (5, 4 · m)
        ``q = 1``: ``Aᵢ`` per level. ``q = 2``: for each weight of :func:`_weights`, its
        coefficients in the rows of :func:`_determinants_and_n` per level (the rows as
        linear maps of ``|Aᵢ|``, ``Aᵢ[0,0]``, ``Aᵢ[1,0]``, ``Aᵢ[1,1]`` and 1).
    theta_slots : list of int
        Positions of ``T[0,0]``, ``T[1,0]``, ``T[1,1]`` in θ followed by a zero (the
        zero stands for ``T[1,0]`` of uncorrelated columns).
    products : ndarray of shape ((p + 1)², n_pairs · m)
        Column ``(pair, i)`` is ``Wᵢ[a]ᵀWᵢ[b]``, symmetrized (``+ Wᵢ[b]ᵀWᵢ[a]`` when
        ``a ≠ b``) and flattened, for the pairs (0,0), (1,0), (1,1) of random-effect
        columns.
    XYtXY : ndarray of shape (p + 1, p + 1)
        ``[X y]ᵀ[X y]``.
    """

    level_entries: np.ndarray
    theta_slots: list
    products: np.ndarray
    XYtXY: np.ndarray


def schur_complement_map(cp: CrossProducts, term: TermLayout, max_entries=_MAX_ENTRIES):
    """The map for a single grouping factor, or None where the blocked factor is faster.

    The map needs closed-form per-level inverses (``q ≤ 2``); for ``q = 3`` two
    congruences and a triangular inverse per level cost more than the factor saves.

    Parameters
    ----------
    cp : CrossProducts
        Cross-products; None is returned unless they hold one grouping factor.
    term : TermLayout
        The grouping factor ``cp`` was computed from.
    max_entries : int
        Largest number of stored products.

    Returns
    -------
    SchurComplementMap or None
    """
    if cp.has_second_block or term.q > 2:
        return None
    A, W = cp.A11_entries, cp.Z1tXY_rows  # (q, q, m), (q, m, k)
    q, m, k = W.shape
    pair_rows, pair_cols = _PAIRS[q]
    if (pair_rows.size * k * k + (20 if q == 2 else 1)) * m > max_entries:
        return None
    outer = np.einsum("pmi,pmj->pmij", W[pair_rows], W[pair_cols])
    off = pair_rows != pair_cols
    outer[off] += outer[off].transpose(0, 1, 3, 2)
    products = np.ascontiguousarray(outer.reshape(-1, k * k).T)
    if q == 1:
        return SchurComplementMap(A[0, 0], (0,), products, cp.XYtXY)
    a00, a10, a11 = A[0, 0], A[1, 0], A[1, 1]
    entries = np.vstack([a00 * a11 - a10 * a10, a00, a10, a11, np.ones(m)])
    # Each weight's share of the four rows, per level: (5, 4 · m).
    entries = (_BASIS.reshape(20, 5) @ entries).reshape(5, 4 * m)
    slots = [term.n_theta] * 3  # the appended zero
    for j, (r, c) in enumerate(zip(term.theta_rows, term.theta_cols)):
        slots[[(0, 0), (1, 0), (1, 1)].index((r, c))] = j
    return SchurComplementMap(entries, slots, products, cp.XYtXY)


def compact_batch(thetas, smap: SchurComplementMap, parts):
    """The criterion at each row of ``thetas`` from the map (see the module docstring).

    The per-level arithmetic runs with θ as one more axis; each row's Schur
    complement and its Cholesky factor are then formed on their own, by the same
    calls whatever the number of rows, so a batch gives bit for bit the values of
    one θ at a time (a matrix-matrix product would round differently from a
    matrix-vector one, and differently again under another BLAS kernel). A NaN marks
    a θ where rounding took the Schur complement to the edge of positive
    definiteness, or r² to its floor: the blocked factor decides those.

    Parameters
    ----------
    thetas : ndarray of shape (J, k)
    smap : SchurComplementMap
    parts : tuple
        ``(n, p, Σ log w, reml, r² floor)`` of the criterion.

    Returns
    -------
    ndarray of shape (J,)
    """
    n, p, sum_log_weights, reml, floor = parts
    if smap.level_entries.ndim == 1:
        det, N = _determinants_and_n_q1(thetas[:, :1] ** 2, smap.level_entries)
    else:
        padded = np.zeros((len(thetas), thetas.shape[1] + 1))
        padded[:, :-1] = thetas
        t00, t10, t11 = padded[:, smap.theta_slots].T
        det, N = _determinants_and_n(_weights(t00, t10, t11), smap.level_entries)
    k = smap.XYtXY.shape[0]
    N = N.reshape(len(thetas), -1)
    out = np.empty(len(thetas))
    for j in range(len(thetas)):
        S = smap.XYtXY - (smap.products @ N[j]).reshape(k, k)
        L33, info = _potrf(S, lower=True, clean=False)
        diag = L33.diagonal()
        pwrss = float(diag[-1]) ** 2
        if info != 0 or not pwrss > floor:
            out[j] = np.nan
            continue
        logdet_L = float(np.log(det[j]).sum())
        logdet_RX = 2.0 * float(np.log(diag[:-1]).sum()) if reml else 0.0
        out[j] = criterion_from_parts(logdet_L, logdet_RX, pwrss, n, p, sum_log_weights, reml)
    return out


def _weights(t00, t10, t11):
    """Rows ``(d², Σ₀₀, Σ₁₀, Σ₁₁, 1)`` with ``d = |T|`` and ``Σ = T Tᵀ``, one per θ."""
    weights = np.empty((t00.shape[0], 5))
    weights[:, 0] = (t00 * t11) ** 2
    weights[:, 1] = t00 * t00
    weights[:, 2] = t00 * t10
    weights[:, 3] = t10 * t10 + t11 * t11
    weights[:, 4] = t00 * 0.0 + 1.0  # NaN where θ is
    return weights


def _determinants_and_n(weights, entries):
    """``|Mᵢ|`` and the entries (0,0), (1,0), (1,1) of ``Nᵢ = T Mᵢ⁻¹ Tᵀ`` for ``q = 2``.

    With ``d = |T|`` and ``Σ = T Tᵀ``, ``|Mᵢ| = d²|Aᵢ| + tr(Σ Aᵢ) + 1`` and, since
    ``T adj(TᵀAᵢT) Tᵀ = d² adj(Aᵢ)``, ``T adj(Mᵢ) Tᵀ = d² adj(Aᵢ) + Σ``: both linear
    in the entries of ``Aᵢ``, and the weights of :func:`_weights` (shape (5,) or, for
    several θ, (J, 5)) times the map's ``level_entries`` give all four rows at once.
    """
    # A one-row product per θ: the same sums, in the same order, one θ or several.
    rows = (weights[..., None, :] @ entries).reshape(*weights.shape[:-1], 4, -1)
    det = rows[..., 0, :]
    return det, rows[..., 1:, :] / det[..., None, :]


def _determinants_and_n_q1(t2, entries):
    """``|Mᵢ| = t²Aᵢ + 1`` and ``Nᵢ = t²/|Mᵢ|`` for ``q = 1`` (``t2`` of shape (J, 1))."""
    det = t2 * entries + 1.0
    return det, t2 / det
