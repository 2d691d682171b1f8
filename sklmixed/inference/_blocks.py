"""Products with ``V⁻¹`` from the stored cross-products: the algebra behind the df.

With ``V = σ² Ṽ``, ``Ṽ = Z Λ Λᵀ Zᵀ + W⁻¹`` (prior weights ``W``) and
``C = Λᵀ Zᵀ W Z Λ + I``, Woodbury's identity gives every product of ``Ṽ⁻¹`` with
``Z``, ``X`` and ``y`` from the stored ``ZᵀWZ``, ``ZᵀW[X y]`` and ``[X y]ᵀW[X y]``::

    AᵀṼ⁻¹B = AᵀWB − (ΛᵀZᵀWA)ᵀ C⁻¹ (ΛᵀZᵀWB)

and, with ``F = W^½ZΛ``, ``Ṽ⁻¹(W⁻¹Ṽ⁻¹)ᵏ⁻¹ = W^½ (I − F C⁻¹ Fᵀ)ᵏ W^½`` and
``(I − F C⁻¹ Fᵀ)ᵏ = I − F (C⁻¹ + … + C⁻ᵏ) Fᵀ``: the products Kenward–Roger needs
for the residual variance, again from the cross-products alone. No ``n × n`` (or
``n × q``) matrix is formed and nothing costs more with rows.

For one grouping factor every ``q × q`` matrix of the random effects is block
diagonal, one block per level: the arrays below hold them as stacks ``(m, q, q)``
and each evaluation is a few batched products over levels. With several grouping
factors the random-effects space is held as one dense block (``m = 1``), which is
exact for any structure and meant for the moderate numbers of levels of crossed or
nested designs (``MAX_DENSE_COLUMNS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = [
    "MAX_DENSE_COLUMNS", "VarianceBlocks", "block_trace", "cross", "left", "right",
    "variance_blocks",
]

# Several grouping factors are held as one dense block of this many random-effect
# columns at most (a few dense products of its square are formed).
MAX_DENSE_COLUMNS = 3000


def left(S, X):
    """``S X`` for every block of ``X`` (m, q, r): ``S`` a (q, q) array, or a sparse
    (Q, Q) matrix with a single block (``m = 1``)."""
    if sp.issparse(S):
        return (S @ X[0])[None]
    m, q, r = X.shape
    # One matrix product over all levels (numpy's stacked matmul runs level by level).
    out = S @ X.transpose(1, 0, 2).reshape(q, m * r)
    return out.reshape(S.shape[0], m, r).transpose(1, 0, 2)


def cross(A, B):
    """``Σₘ AₘᵀBₘ`` over the blocks of ``A`` (m, q, a) and ``B`` (m, q, b): one matrix
    product (a stack of per-level products would run one level at a time)."""
    return A.reshape(-1, A.shape[-1]).T @ B.reshape(-1, B.shape[-1])


def block_trace(A, B):
    """``Σₘ tr(AₘBₘ)`` over the blocks of two stacks (m, q, q)."""
    return float(np.sum(A * B.transpose(0, 2, 1)))


def right(X, S):
    """``X S`` for every block of ``X`` (m, r, q) (see :func:`left`)."""
    return left(S.T, X.transpose(0, 2, 1)).transpose(0, 2, 1)


@dataclass(frozen=True)
class VarianceBlocks:
    """The cross-products of a fit in per-level blocks, with ``Λ`` and its derivatives.

    Attributes
    ----------
    M : ndarray of shape (m, q, q)
        ``ZᵀWZ`` per block (unit-scale random-effect columns).
    N : ndarray of shape (m, q, p + 1)
        ``ZᵀW[X y]`` per block.
    XY : ndarray of shape (p + 1, p + 1)
        ``[X y]ᵀW[X y]``.
    Lam : ndarray of shape (q, q) or sparse matrix
        ``Λ`` of one block (the same for every block); sparse with one block.
    dLam : list of ndarray of shape (q, q) or of sparse matrices
        ``∂Λ/∂θₐ`` for each entry of θ (the fit's θ: block order, unit-scale columns).
    cov_patterns : list of ndarray of shape (q, q) or of sparse matrices
        ``∂(ΛΛᵀ)/∂γₐ`` for the covariance parametrization γ of Kenward–Roger: the
        symmetric indicator of each covariance entry, in θ's positions.
    n_obs : float
        Observations (rows, or the sum of the frequency weights).
    n_columns : int
        Random-effect columns ``m · q``.
    """

    M: np.ndarray
    N: np.ndarray
    XY: np.ndarray
    Lam: np.ndarray
    dLam: np.ndarray
    cov_patterns: np.ndarray
    n_obs: float
    n_columns: int

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return self.XY.shape[0] - 1

    # -- Woodbury ------------------------------------------------------------------
    @cached_property
    def C_inv(self) -> np.ndarray:
        """``C⁻¹`` per block, ``C = ΛᵀMΛ + I``."""
        C = left(self.Lam.T, self.MLam)
        C[:, np.arange(C.shape[1]), np.arange(C.shape[1])] += 1.0
        return _spd_inverse(C)

    @cached_property
    def MLam(self) -> np.ndarray:
        """``MΛ`` per block."""
        return right(self.M, self.Lam)

    @cached_property
    def aN(self) -> np.ndarray:
        """``ΛᵀN`` per block."""
        return left(self.Lam.T, self.N)

    def _powers_sum(self, k):
        """``C⁻¹ + … + C⁻ᵏ`` per block."""
        out = self.C_inv.copy()
        power = self.C_inv
        for _ in range(k - 1):
            power = power @ self.C_inv
            out += power
        return out

    def ZVN(self, k=1) -> np.ndarray:
        """``ZᵀṼ⁻¹(W⁻¹Ṽ⁻¹)ᵏ⁻¹[X y]`` per block, shape (m, q, p + 1)."""
        return self.N - self.MLam @ (self._powers_sum(k) @ self.aN)

    def ZVZ(self, k=1) -> np.ndarray:
        """``ZᵀṼ⁻¹(W⁻¹Ṽ⁻¹)ᵏ⁻¹Z`` per block, shape (m, q, q)."""
        return self.M - self.MLam @ self._powers_sum(k) @ self.MLam.transpose(0, 2, 1)

    def XVX(self, k=1) -> np.ndarray:
        """``[X y]ᵀṼ⁻¹(W⁻¹Ṽ⁻¹)ᵏ⁻¹[X y]``, shape (p + 1, p + 1)."""
        a = self.aN
        return self.XY - cross(a, self._powers_sum(k) @ a)

    def trace_C_inv2(self) -> float:
        """``tr C⁻²``."""
        return block_trace(self.C_inv, self.C_inv)

    # -- the fixed effects ---------------------------------------------------------
    @cached_property
    def gls(self):
        """``(XᵀṼ⁻¹X)⁻¹``, β̂'s residual parts: ``Zᵀ P̃ y`` per block and ``yᵀP̃y``.

        ``P̃ = Ṽ⁻¹ − Ṽ⁻¹X(XᵀṼ⁻¹X)⁻¹XᵀṼ⁻¹``; ``yᵀP̃y`` is the penalized residual sum
        of squares and ``ZᵀP̃y = ZᵀṼ⁻¹(y − Xβ̂)``.
        """
        p = self.p
        XVX = self.XVX()
        M_inv = _spd_inverse(XVX[None, :p, :p])[0]
        beta = M_inv @ XVX[:p, p]
        pwrss = float(XVX[p, p] - XVX[:p, p] @ beta)
        U = self.ZVN()
        e = U[:, :, p] - U[:, :, :p] @ beta
        return M_inv, e, pwrss


def _spd_inverse(A):
    """Inverse of each symmetric positive definite matrix of a stack ``(m, k, k)``."""
    L = np.linalg.cholesky(A)
    eye = np.broadcast_to(np.eye(A.shape[-1]), A.shape)
    L_inv = np.linalg.solve(L, eye)
    return L_inv.transpose(0, 2, 1) @ L_inv


def _patterns(rows, cols, q):
    """``∂T/∂θₐ`` (one entry set) and the symmetric covariance indicators."""
    k = rows.size
    dT = np.zeros((k, q, q))
    dT[np.arange(k), rows, cols] = 1.0
    sym = dT + dT.transpose(0, 2, 1)
    sym[np.arange(k), rows, cols] = 1.0  # a diagonal entry once
    return dT, sym


def variance_blocks(criterion, theta) -> VarianceBlocks:
    """The :class:`VarianceBlocks` of a fitted criterion at θ.

    Parameters
    ----------
    criterion : Criterion
        The fit's criterion (its statistics and term layouts).
    theta : ndarray
        θ in the criterion's order and units (block order, unit-scale columns).

    Returns
    -------
    VarianceBlocks

    Raises
    ------
    ValueError
        Without random effects, or with several grouping factors whose random-effect
        columns exceed :data:`MAX_DENSE_COLUMNS`.
    """
    terms, stats, cp = criterion.terms, criterion.stats, criterion.cp
    theta = np.asarray(theta, dtype=float)
    if not terms:
        raise ValueError("The model has no random effects: its df are those of a linear model.")
    if len(terms) == 1:
        term = terms[0]
        M = np.ascontiguousarray(cp.A11_entries.transpose(2, 0, 1))
        N = np.ascontiguousarray(cp.Z1tXY_rows.transpose(1, 0, 2))
        dT, sym = _patterns(term.theta_rows, term.theta_cols, term.q)
        return VarianceBlocks(
            M, N, cp.XYtXY, term.factor(theta), list(dT), list(sym), cp.n_obs,
            term.n_levels * term.q,
        )
    return _dense_blocks(stats, cp, terms, theta)


def _dense_blocks(stats, cp, terms, theta):
    """Several grouping factors as one dense block (``m = 1``)."""
    widths = [t.n_levels * t.q for t in terms]
    Q = int(sum(widths))
    if Q > MAX_DENSE_COLUMNS:
        raise ValueError(
            f"Denominator df for several grouping factors hold their {Q} random-effect "
            f"columns as one dense block, limited to {MAX_DENSE_COLUMNS} columns."
        )
    first = terms[0]
    Q1 = widths[0]
    M = np.zeros((Q, Q))
    A11 = cp.A11_entries.transpose(2, 0, 1)
    for level in range(first.n_levels):
        s = slice(level * first.q, (level + 1) * first.q)
        M[s, s] = A11[level]
    M21 = stats.Z2tZ1.toarray()
    M[Q1:, :Q1] = M21
    M[:Q1, Q1:] = M21.T
    M[Q1:, Q1:] = stats.A22.toarray()
    N = np.vstack([cp.Z1tXY_rows.transpose(1, 0, 2).reshape(Q1, -1), cp.Z2tXY])
    # Λ and its derivatives are block diagonal: sparse, so that their products with
    # the dense blocks cost O(Q²), not O(Q³).
    Lam, dLam, patterns = [], [], []
    start_theta = 0
    for j, term in enumerate(terms):
        T = term.factor(theta[start_theta : start_theta + term.n_theta])
        Lam.append(sp.kron(sp.eye_array(term.n_levels), T))
        dT, sym = _patterns(term.theta_rows, term.theta_cols, term.q)
        for a in range(term.n_theta):
            for source, out in ((dT, dLam), (sym, patterns)):
                diag = [sp.csr_array((w, w)) for w in widths]
                diag[j] = sp.kron(sp.eye_array(term.n_levels), source[a])
                out.append(sp.block_diag(diag, format="csr"))
        start_theta += term.n_theta
    return VarianceBlocks(
        M[None], N[None], cp.XYtXY, sp.block_diag(Lam, format="csr"), dLam, patterns,
        cp.n_obs, Q,
    )
