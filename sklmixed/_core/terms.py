"""One grouping factor's share of θ, and the starting values of θ.

The relative covariance factor of a grouping factor with ``q`` columns is a lower
triangular ``q × q`` matrix ``T``; the factor's covariance is ``σ² T Tᵀ`` and the big
``Λ`` of lme4 is ``T`` repeated once per level. Columns may be split into independent
blocks (lme4's ``(1 | g) + (0 + x | g)`` or ``(1 + x || g)``): ``T`` is then block
diagonal and only the lower triangle of each block is free. θ holds the free entries
block by block, each block column-wise, which is lme4's ordering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TermLayout",
    "layouts_of",
    "moment_theta_start",
    "slopes_start",
    "split_theta",
    "theta_scales",
]


@dataclass(frozen=True)
class TermLayout:
    """Where a grouping factor's θ entries sit in its ``T``.

    Parameters
    ----------
    n_levels : int
        Number of levels of the factor.
    q : int
        Number of random-effect columns.
    blocks : tuple of tuple of int
        Partition of ``range(q)`` into correlated blocks; one block holding every
        column is an unstructured covariance, singletons a diagonal one.
    """

    n_levels: int
    q: int
    blocks: tuple
    # Row and column of T for each θ entry.
    theta_rows: np.ndarray = field(init=False, repr=False, compare=False)
    theta_cols: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        rows, cols = [], []
        for block in self.blocks:
            for j, col in enumerate(block):
                for row in block[j:]:
                    rows.append(row)
                    cols.append(col)
        object.__setattr__(self, "theta_rows", np.asarray(rows, dtype=np.intp))
        object.__setattr__(self, "theta_cols", np.asarray(cols, dtype=np.intp))

    @property
    def n_theta(self) -> int:
        """Number of free entries of ``T``."""
        return self.theta_rows.size

    @property
    def theta_on_diagonal(self) -> np.ndarray:
        """Boolean mask of the θ entries that are diagonal elements of ``T``."""
        return self.theta_rows == self.theta_cols

    def theta_start(self) -> np.ndarray:
        """lme4's starting value: ``T`` the identity."""
        return self.theta_on_diagonal.astype(float)

    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 on the diagonal of ``T``, unbounded elsewhere."""
        return np.where(self.theta_on_diagonal, 0.0, -np.inf)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """The ``q × q`` lower triangular relative covariance factor ``T``."""
        T = np.zeros((self.q, self.q))
        T[self.theta_rows, self.theta_cols] = theta
        return T

    def theta_of(self, T) -> np.ndarray:
        """The θ entries of a ``T`` with this layout."""
        return T[self.theta_rows, self.theta_cols]


def layouts_of(stats) -> tuple:
    """The :class:`TermLayout` of each factor of a :class:`~sklmixed.stats.SufficientStats`."""
    return tuple(TermLayout(m, q, b) for m, q, b in zip(stats.n_levels, stats.q, stats.blocks))


def split_theta(theta, terms):
    """Split the θ vector into the relative covariance factors ``T`` of each term."""
    T, start = [], 0
    for term in terms:
        T.append(term.factor(theta[start : start + term.n_theta]))
        start += term.n_theta
    return T


def theta_scales(terms, scales) -> np.ndarray:
    """The scale of each θ entry: θ for columns divided by their root mean square
    ``s`` is ``θ̃ = s θ`` row by row (``T̃ = diag(s) T``).

    Parameters
    ----------
    terms : sequence of TermLayout
    scales : sequence of ndarray
        Each factor's column scales (the statistics' plan).

    Returns
    -------
    ndarray
        One scale per θ entry, the terms' entries concatenated.
    """
    out = [np.asarray(scale, float)[term.theta_rows] for term, scale in zip(terms, scales)]
    return np.concatenate(out) if out else np.zeros(0)


def moment_theta_start(stats, terms) -> np.ndarray:
    """Starting θ from one-way ANOVA moment estimates on least-squares residuals.

    For each factor, the unbalanced one-way ANOVA estimator of the between-level
    variance of the residuals, relative to the within-level variance, gives a ratio
    ρ; each diagonal entry of ``T`` starts at ρ (columns are unit scale, so each is
    taken to contribute as much variance as an intercept), off-diagonal entries at 0.
    ρ is kept within [0.1, 10]: θ = 0 is a stationary point of the criterion for any
    data, so the start must stay clear of it. On large crossed designs this halves
    the optimizer's evaluations against lme4's start at ``T = I``, where the
    criterion is steep and far from its minimum.

    Parameters
    ----------
    stats : SufficientStats
        Level counts and residual sums per level (statistics of unit-scale columns).
    terms : sequence of TermLayout

    Returns
    -------
    ndarray
        Concatenated θ of the terms.
    """
    n = stats.n_obs
    mean = stats.resid_sum / n
    out = []
    for term, counts, sums in zip(terms, stats.level_counts, stats.level_resid_sums):
        means = sums / np.maximum(counts, 1)
        m = int((counts > 0).sum())
        # Σ (r − r̄ᵢ)² = Σ r² − Σ nᵢ r̄ᵢ²: no pass over the rows beyond the two sums.
        within = float(stats.resid_sumsq - sums @ means) / max(n - m, 1)
        between = float((counts * (means - mean) ** 2).sum()) / max(m - 1, 1)
        n0 = (n - (counts**2).sum() / n) / max(m - 1, 1)
        ratio = np.sqrt(max(between - within, 0.0) / n0 / within) if within > 0 else 1.0
        theta = np.zeros(term.n_theta)
        theta[term.theta_on_diagonal] = float(np.clip(ratio, 0.1, 10.0))
        out.append(theta)
    return np.concatenate(out) if out else np.zeros(0)


def slopes_start(term, A, Zr, rss, n):
    """θ of a term with correlated random slopes from per-level least squares, or None.

    :func:`moment_theta_start` gives every column the intercept's variance ratio and
    no correlation. For one correlated block, each level's least-squares coefficients
    ``bₗ = Aₗ⁻¹ zₗ`` of the residuals on its columns have ``E[bₗ bₗᵀ] = Σ + σ² Aₗ⁻¹``,
    so ``Σ`` is estimated by a weighted mean of ``bₗ bₗᵀ − σ² Aₗ⁻¹`` (weights
    ``1 / tr Aₗ⁻¹``: levels with few rows are noisy) and ``T`` is the Cholesky factor of
    ``Σ / σ²``.

    Parameters
    ----------
    term : TermLayout
    A : ndarray of shape (m, q, q)
        Per-level ``ZᵀZ`` of the term's (scaled, weighted) columns.
    Zr : ndarray of shape (m, q)
        Per-level ``Zᵀr`` of the least-squares residuals ``r``.
    rss : float
        ``rᵀr``.
    n : int
        Number of observations.

    Returns
    -------
    ndarray or None
        The term's θ; None when the term is not one correlated block with slopes or
        the estimate is not usable (too few levels, not positive definite, a
        variance near zero: θ = 0 is a stationary point, no place to start).
    """
    q = term.q
    if q < 2 or len(term.blocks) != 1:
        return None
    eig = np.linalg.eigvalsh(A)
    # Levels whose block is far from singular (1e-8 of its largest eigenvalue: a
    # margin rounding cannot cross); the others carry no slope information.
    usable = eig[:, 0] > 1e-8 * eig[:, -1]
    m = int(usable.sum())
    dof = n - m * q
    if m < q + 2 or dof <= 0:
        return None
    A_inv = np.linalg.inv(A[usable])
    b = (A_inv @ Zr[usable][:, :, None])[:, :, 0]
    sigma2 = (rss - float((Zr[usable] * b).sum())) / dof
    if not sigma2 > 0:
        return None
    weights = 1.0 / np.trace(A_inv, axis1=1, axis2=2)
    weights /= weights.sum()
    cov = np.einsum("l,la,lb->ab", weights, b, b) - sigma2 * np.einsum("l,lab->ab", weights, A_inv)
    if np.linalg.eigvalsh(cov)[0] <= 0:
        return None
    T = np.linalg.cholesky(cov / sigma2)
    if np.diag(T).min() < 1e-2:
        return None
    return term.theta_of(T)
