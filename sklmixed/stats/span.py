"""How much of y the columns of ``[X Z]`` leave unexplained, from the cross-products.

Where ``[X Z]`` spans y, the random effects reproduce it as θ grows: r² falls to 0 and
the likelihood has no maximum. :func:`residual_outside_span` computes the residual sum
of squares of y on every column of ``[X Z]`` (no penalty), so that question is
answered directly rather than by how far an optimizer got before rounding stalled it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["residual_outside_span"]

# Eigenvalues below this fraction of a block's largest are its null space (columns that
# repeat within a level, say): a margin far from the rounding of any real direction.
_RANK_TOL = 1e-10


def _pseudo_inverse(A):
    """Pseudo-inverses of a stack of symmetric positive semidefinite blocks (m, q, q)."""
    values, vectors = np.linalg.eigh(A)
    top = values[..., -1:]
    keep = values > _RANK_TOL * np.where(top > 0, top, 1.0)
    inv = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return (vectors * inv[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def residual_outside_span(cp) -> float:
    """``min ‖y − Xβ − Zb‖²`` (weighted) over β and b, from the cross-products.

    Parameters
    ----------
    cp : CrossProducts

    Returns
    -------
    float
        The residual sum of squares of y on all of ``[X Z]``; a dense system of the
        second block's size is solved when there is one.
    """
    A = cp.A11  # (m1, q1, q1)
    W = cp.Z1tXY  # (m1, q1, k)
    k = cp.XYtXY.shape[0]
    A_pinv = _pseudo_inverse(A)
    S = cp.XYtXY - np.einsum("mak,mab,mbl->kl", W, A_pinv, W)
    if cp.has_second_block:
        m1, q1 = A.shape[:2]
        B = sp.csr_array(
            (cp.A21.ravel(), (np.repeat(cp.A21_rows, q1), (cp.A21_levels[:, None] * q1 +
             np.arange(q1)).ravel())),
            shape=(cp.A22.shape[0], m1 * q1),
        )
        D = sp.block_diag(list(A_pinv), format="csr")
        BD = B @ D
        S22 = (cp.A22 - BD @ B.T).toarray()
        S2y = cp.Z2tXY - BD @ W.reshape(m1 * q1, k)
        S = np.block([[S22, S2y], [S2y.T, S]])
    # The residual of the last column on the others: its Schur complement, through a
    # pseudo-inverse (Z's columns and X's intercept are collinear).
    M, s = S[:-1, :-1], S[:-1, -1]
    if M.size == 0:
        return float(S[-1, -1])
    return float(S[-1, -1] - s @ _pseudo_inverse(M) @ s)
