"""The one door to lme4's criterion: the profiled deviance (ML) or REML criterion of θ.

The formula is in ``deviance``. :class:`Criterion` is built once from the sufficient
statistics and evaluated at θ; behind it, one dispatcher chooses how: the Schur-complement map for one grouping factor with one or
two columns (``schur_map``), else the blocked Cholesky factor (``factor``). Both give
the same numbers up to rounding; the blocked factor also gives the gradient (one
factor), the solution and everything inference and prediction read.
"""

from __future__ import annotations

import numpy as np

from ..stats import SufficientStats
from .deviance import criterion_from_parts
from .factor import BlockedFactor, factorize
from .gradient import gradient_from_factor
from .schur_map import compact_batch, schur_complement_map
from .solution import Solution, solution_from_factor
from .terms import layouts_of

__all__ = ["Criterion"]

# r² at or below this fraction of the response's own sum of squares (after the
# least-squares offset) is rounding noise: the random effects reproduce y and the
# likelihood is unbounded. The Schur complement that gives r² subtracts sums as large
# as yᵀy, so its rounding is a few machine epsilons of yᵀy under any BLAS kernel; 100
# epsilons is well above that, and an r² below it has too few correct digits for a
# log-likelihood anyway. Unbounded data drive r² through it as θ grows, so the same
# data are flagged on every machine.
_EXACT_FIT = 100 * np.finfo(float).eps


class Criterion:
    """lme4's profiled criterion of a linear mixed model, as a function of θ.

    Parameters
    ----------
    stats : SufficientStats
        The reduced data.
    reml : bool
        REML criterion (True) or ML deviance (False).

    Attributes
    ----------
    cp : CrossProducts
        The statistics in blocks.
    terms : tuple of TermLayout
        Each factor's share of θ, in block order.
    lower : ndarray
        Lower bounds of θ.
    pwrss_floor : float
        r² at or below which the fit is exact and the criterion −inf.

    Notes
    -----
    ``criterion(θ)`` returns +inf where rounding makes the penalized system lose
    positive definiteness (θ so large that the random effects absorb a fixed-effect
    column), so that an optimizer steps back, and −inf where the random effects fit
    y exactly (the likelihood is unbounded: there is no maximum-likelihood estimate).
    """

    def __init__(self, stats: SufficientStats, reml: bool):
        self.stats = stats
        self.reml = reml
        self.cp = stats.finalize()
        self.terms = layouts_of(stats)
        self.lower = (
            np.concatenate([t.theta_lower() for t in self.terms]) if self.terms else np.zeros(0)
        )
        self.pwrss_floor = _EXACT_FIT * float(self.cp.XYtXY[-1, -1])
        # (n, p, Σ log w, reml, r² floor): what the criterion adds to a factor's parts.
        cp = self.cp
        self._parts = (cp.n_obs, cp.n_fixed, cp.sum_log_weights, reml, self.pwrss_floor)
        # Where the fixed effects fit y exactly, r² is made of rounding errors, which
        # the two paths round differently: the blocked factor decides there.
        one_small_factor = len(self.terms) == 1 and not stats.plan.exact_fit
        self._map = schur_complement_map(self.cp, self.terms[0]) if one_small_factor else None

    # -- evaluation ---------------------------------------------------------------------
    def __call__(self, theta) -> float:
        """The criterion at θ."""
        if self._map is not None:
            value = compact_batch(np.asarray(theta, float)[None], self._map, self._parts)[0]
            if not np.isnan(value):
                return float(value)
        try:
            factor = factorize(self.cp, self.terms, theta)
        except np.linalg.LinAlgError:
            return np.inf
        return self.from_factor(factor)

    def batch(self, thetas) -> np.ndarray:
        """The criterion at each row of ``thetas``, bit for bit as one at a time."""
        thetas = np.asarray(thetas, dtype=float)
        if self._map is None:
            return np.array([self(theta) for theta in thetas])
        values = compact_batch(thetas, self._map, self._parts)
        for j in np.flatnonzero(np.isnan(values)):  # left to the blocked factor
            values[j] = self(thetas[j])
        return values

    @property
    def has_gradient(self) -> bool:
        """Whether :meth:`value_and_gradient` is available (one grouping factor)."""
        return len(self.terms) == 1

    def value_and_gradient(self, theta):
        """The criterion and its analytic gradient at θ (one grouping factor).

        Returns
        -------
        value : float
        gradient : ndarray of the shape of ``theta``
        """
        try:
            factor = factorize(self.cp, self.terms, theta)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        value = self.from_factor(factor)
        if not np.isfinite(value):
            return value, np.zeros_like(theta)
        return value, gradient_from_factor(factor, self.cp, self.terms[0], self.reml)

    def gradient(self, theta) -> np.ndarray:
        """The analytic gradient at θ (one grouping factor)."""
        return self.value_and_gradient(theta)[1]

    # -- from a factor --------------------------------------------------------------------
    def factor(self, theta) -> BlockedFactor:
        """The blocked Cholesky factor at θ."""
        return factorize(self.cp, self.terms, theta)

    def from_factor(self, factor: BlockedFactor, reml=None) -> float:
        """The criterion (REML or ML as fitted, or as ``reml`` says) from a factor."""
        reml = self.reml if reml is None else reml
        pwrss = factor.pwrss
        if pwrss <= self.pwrss_floor:
            return -np.inf
        logdet_RX = factor.logdet_RX if reml else 0.0
        return criterion_from_parts(factor.logdet_L, logdet_RX, pwrss, *self._parts[:3], reml)

    def solve(self, theta) -> Solution:
        """β, σ, the conditional modes and their covariances at θ."""
        factor = self.factor(theta)
        return solution_from_factor(
            factor,
            self.cp,
            self.terms,
            self.reml,
            self.from_factor(factor),
            self.from_factor(factor, reml=False),
        )
