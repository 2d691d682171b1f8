"""Cross-products of simulated responses, drawn from the stored blocks.

A parametric bootstrap replicate is ``y* = Xβ̂ + ZΛ̂u* + ε*`` with ``u* ~ N(0, σ̂²I)``
and ``ε* ~ N(0, σ̂²W⁻¹)``. A refit reads only ``Zᵀy*``, ``Xᵀy*`` and ``y*ᵀy*``
(everything else is the data's), and these have an exact joint distribution in
terms of the stored blocks: with ``G = [Z X]`` (weighted), ``Gᵀε ~ N(0, σ²GᵀG)``,
and ``εᵀε = |Pε|² + |(I − P)ε|²`` with ``P`` the projection on the columns of ``G``:
the first part is the squared norm of ``Gᵀε`` in the coordinates that whiten it,
the second ``σ²χ²(n − rank G)`` and independent of ``Gᵀε``. So a replicate costs
O(levels·q² + p²), never a pass over the rows.

For one grouping factor the draw is made level by level: the ``Zᵢᵀε`` of different
levels involve different rows and are independent, ``N(0, σ²Aᵢ)``; given them,
``Xᵀε`` is ``Σᵢ XᵢᵀZᵢAᵢ⁺Zᵢᵀε`` plus a ``N(0, σ²(XᵀX − Σᵢ XᵢᵀZᵢAᵢ⁺ZᵢᵀXᵢ))`` part. With
several factors ``GᵀG`` is formed densely (its size is the number of random-effect
columns, not of rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Draws", "draw_responses"]

# Eigenvalues of a Gram block below this fraction of its largest are taken as zero
# (directions outside the span). The choice is benign: a direction counted on either
# side adds an independent σ²χ²(1) to εᵀε and, with an eigenvalue this small, nothing
# that matters to Gᵀε.
_RANK_TOL = 1e-10


@dataclass(frozen=True)
class Draws:
    """The response columns of the cross-products of ``B`` simulated responses.

    Attributes
    ----------
    Z1ty : ndarray of shape (q1, m1, B)
        ``Z₁ᵀy*`` per level (unit-scale columns).
    Z2ty : ndarray of shape (Q2, B) or None
    Xty : ndarray of shape (p, B)
    yty : ndarray of shape (B,)
    """

    Z1ty: np.ndarray
    Z2ty: np.ndarray | None
    Xty: np.ndarray
    yty: np.ndarray


def _whitening(A, tol=_RANK_TOL):
    """Square roots of symmetric PSD blocks: ``(V Λ^½, V Λ^-½)`` per block, zero on
    directions of eigenvalue below ``tol`` times the block's largest, and the rank."""
    w, V = np.linalg.eigh(A)
    top = w[..., -1:]
    keep = w > tol * np.maximum(top, 0.0)
    root = np.where(keep, np.sqrt(np.where(keep, w, 1.0)), 0.0)
    inv_root = np.where(keep, 1.0 / np.where(keep, root, 1.0), 0.0)
    return V * root[..., None, :], V * inv_root[..., None, :], keep.sum(axis=-1)


def draw_responses(stats, cp, T, c, sigma, n_boot, rng) -> Draws:
    """Draw the response cross-products of ``n_boot`` parametric bootstrap replicates.

    Parameters
    ----------
    stats : SufficientStats
        The fit's statistics (unit-scale columns, the least-squares offset removed).
    cp : CrossProducts
        The same statistics in blocks.
    T : sequence of ndarray
        Each factor's relative covariance factor at the estimate (block order, for
        unit-scale columns).
    c : ndarray of shape (p,)
        The fixed effects of the stored response (β̂ less the offset).
    sigma : float
        The residual standard deviation of the fit.
    n_boot : int
    rng : numpy.random.Generator

    Returns
    -------
    Draws
    """
    if cp.has_second_block:
        return _draw_dense(stats, cp, T, c, sigma, n_boot, rng)
    n, p = cp.n_obs, cp.n_fixed
    A = cp.A11  # (m, q, q)
    WX = cp.Z1tXY[:, :, :p]  # (m, q, p): Zᵢᵀ X
    XtX = cp.XYtXY[:p, :p]
    m, q = A.shape[0], A.shape[1]
    # The random effects b = T u, u ~ N(0, σ²).
    b = np.einsum("ab,bmk->amk", T[0], rng.standard_normal((q, m, n_boot)) * sigma)
    # Zᵢᵀε ~ N(0, σ²Aᵢ), independent across levels: Zᵢᵀε = Vᵢ Λᵢ^½ ξᵢ.
    root, inv_root, rank_levels = _whitening(A)
    xi = _keep_top(rng.standard_normal((q, m, n_boot)) * sigma, rank_levels, q)
    e_Z = np.einsum("mab,bmk->amk", root, xi)
    # Xᵀε given them: Σᵢ XᵢᵀZᵢAᵢ⁺Zᵢᵀε = Σᵢ Hᵢᵀξᵢ (Hᵢ = Λᵢ^-½VᵢᵀZᵢᵀXᵢ), plus an
    # independent N(0, σ²(XᵀX − Σᵢ HᵢᵀHᵢ)) remainder.
    H = np.einsum("mba,mbp->map", inv_root, WX)
    e_X = np.einsum("map,amk->pk", H, xi)
    S_res = XtX - np.einsum("map,maq->pq", H, H)
    root_X, _, rank_X = _whitening(0.5 * (S_res + S_res.T))
    xi_X = _keep_top(rng.standard_normal((p, 1, n_boot)) * sigma, np.array([rank_X]), p)[:, 0]
    e_X = e_X + root_X @ xi_X
    rank = int(rank_levels.sum() + rank_X)
    eps2 = _residual_norms(xi, xi_X, n, rank, sigma, rng)
    # y* = Xc + Zb + ε, on the stored response's scale (offset removed).
    Ab = np.einsum("mab,bmk->amk", A, b)
    Wc = np.einsum("map,p->am", WX, c)
    Z1ty = Wc[:, :, None] + Ab + e_Z
    Xty = (XtX @ c)[:, None] + np.einsum("map,amk->pk", WX, b) + e_X
    fit2 = float(c @ XtX @ c) + 2.0 * np.einsum("amk,am->k", b, Wc) + np.einsum("amk,amk->k", b, Ab)
    yty = fit2 + 2.0 * (c @ e_X + np.einsum("amk,amk->k", b, e_Z)) + eps2
    return Draws(Z1ty=Z1ty, Z2ty=None, Xty=Xty, yty=yty)


def _keep_top(xi, ranks, q):
    """Zero the coordinates of ``xi`` (q, m, B) beyond each block's rank (eigenvalues
    ascending: the kept directions are the last ``rank``)."""
    keep = np.arange(q)[:, None] >= (q - np.asarray(ranks))[None, :]
    return xi * keep[..., None]


def _residual_norms(xi, xi_X, n, rank, sigma, rng):
    """``εᵀε``: ``|Pε|²`` from the whitened coordinates, plus ``σ²χ²(n − rank)``."""
    B = xi.shape[-1]
    eps2 = (xi.reshape(-1, B) ** 2).sum(axis=0) + (xi_X.reshape(-1, B) ** 2).sum(axis=0)
    if n > rank:
        eps2 = eps2 + sigma**2 * rng.chisquare(n - rank, xi.shape[-1])
    return eps2


def _draw_dense(stats, cp, T, c, sigma, n_boot, rng):
    """The same draw with ``GᵀG`` formed densely (several grouping factors)."""
    n, p = cp.n_obs, cp.n_fixed
    m1, q1 = stats.n_levels[0], stats.q[0]
    Q1 = m1 * q1
    Q2 = stats.A22.shape[0]
    N = Q1 + Q2 + p
    C = np.zeros((N, N))
    for i in range(m1):
        C[i * q1 : (i + 1) * q1, i * q1 : (i + 1) * q1] = cp.A11[i]
    C[Q1 : Q1 + Q2, :Q1] = stats.Z2tZ1.toarray()
    C[Q1 : Q1 + Q2, Q1 : Q1 + Q2] = stats.A22.toarray()
    C[Q1 + Q2 :, :Q1] = cp.Z1tXY[:, :, :p].reshape(Q1, p).T
    C[Q1 + Q2 :, Q1 : Q1 + Q2] = cp.Z2tXY[:, :p].T
    C[Q1 + Q2 :, Q1 + Q2 :] = cp.XYtXY[:p, :p]
    C = np.tril(C) + np.tril(C, -1).T
    blocks = []
    for Tj, m, q in zip(T, stats.n_levels, stats.q):
        u = rng.standard_normal((m, q, n_boot)) * sigma
        blocks.append(np.einsum("ab,mbk->mak", Tj, u).reshape(m * q, n_boot))
    h = np.vstack(blocks + [np.repeat(c[:, None], n_boot, axis=1)])
    root, _, rank = _whitening(C)
    xi = _keep_top(rng.standard_normal((N, 1, n_boot)) * sigma, np.array([rank]), N)[:, 0]
    e = root @ xi
    Ch = C @ h
    Gy = Ch + e
    eps2 = _residual_norms(xi, np.zeros((0, n_boot)), n, int(rank), sigma, rng)
    yty = np.einsum("ik,ik->k", h, Ch) + 2.0 * np.einsum("ik,ik->k", h, e) + eps2
    Z1ty = Gy[:Q1].reshape(m1, q1, n_boot).transpose(1, 0, 2)
    return Draws(Z1ty=Z1ty, Z2ty=Gy[Q1 : Q1 + Q2], Xty=Gy[Q1 + Q2 :], yty=yty)
