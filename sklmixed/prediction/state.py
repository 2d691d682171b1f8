"""What prediction reads of a fitted model, in the criterion's own coordinates.

:class:`PredictionState` gathers β, σ, each grouping factor's conditional modes and
relative covariance factor, and (built on first use, then kept for the fit) the
:class:`~sklmixed.prediction.joint.JointCovariance` of its blocked factor at θ. The
criterion works on unit-scale random-effect columns in block order (the factor with
most levels first): a row's columns ``z`` enter as ``z / scale`` and its spherical
coefficients as ``(z / scale) T`` (``T`` for unit-scale columns).

A model family other than the LMM (the GLMMs) plugs in by building a
:class:`PredictionState` from its own fit: β, the modes, ``T`` and the scales of each
factor, the dispersion as ``sigma`` (1 for the binomial and Poisson families) and a
function returning the ``JointCovariance`` of its blocked factor at the PIRLS weights
of the optimum. Everything in :mod:`sklmixed.prediction` then works on the link scale.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from .._core.terms import split_theta
from .joint import JointCovariance

__all__ = ["FactorState", "PredictionState", "prediction_state"]


@dataclass(frozen=True)
class FactorState:
    """One grouping factor as prediction sees it.

    Attributes
    ----------
    name : str
    block : int
        Its position in the criterion's block order.
    modes : ndarray of shape (n_levels, q)
        Conditional modes (the data's units) of the fitted levels, then of any levels
        added by :func:`~sklmixed.prediction.new_groups.add_groups`.
    n_fit_levels : int
        Levels of the fit (the rows of the joint system).
    T : ndarray of shape (q, q)
        Relative covariance factor for unit-scale columns: the prior covariance of a
        level's effects on those columns is ``σ² T Tᵀ``.
    scale : ndarray of shape (q,)
        Scale of each random-effect column.
    """

    name: str
    block: int
    modes: np.ndarray
    n_fit_levels: int
    T: np.ndarray
    scale: np.ndarray

    def coefficients(self, columns):
        """``(z / scale) T``: each row's coefficients on a level's spherical effects."""
        # einsum, not matmul: a BLAS call on q columns gains nothing and can spin threads.
        return np.einsum("na,ab->nb", columns, self.T / self.scale[:, None])


@dataclass(frozen=True)
class PredictionState:
    """β, σ, the factors (in block order) and the joint covariance of a fit.

    Attributes
    ----------
    beta : ndarray of shape (p,)
    sigma : float
        Residual standard deviation (the dispersion's square root for a GLMM).
    factors : tuple of FactorState
        In block order.
    covariance_factory : callable
        Returns the :class:`JointCovariance` at θ (called once, when first needed).
    added : AddedGroups or None
        Levels added after the fit, conditioned on their own rows.
    """

    beta: np.ndarray
    sigma: float
    factors: tuple
    covariance_factory: object = field(repr=False, compare=False)
    added: object = None

    @property
    def modes(self) -> dict:
        """Each factor's table of conditional modes, by name."""
        return {f.name: f.modes for f in self.factors}

    @property
    def covariance(self) -> JointCovariance:
        """The joint covariance of (u, β) at θ, relative to σ²."""
        return self.covariance_factory()

    def factor(self, name) -> FactorState:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)


# The joint covariance at a fit's optimum, kept while the fit's criterion lives (a
# predict call with return_std=True after the first reuses it).
_AT_OPTIMUM: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prediction_state(result, factor_names, theta=None) -> PredictionState:
    """The :class:`PredictionState` of a :class:`~sklmixed.result.MixedLMResult`.

    Parameters
    ----------
    result : MixedLMResult
    factor_names : sequence of str
        The design's grouping factors, in the design's order (the fitted design's
        ``levels_`` keys).
    theta : ndarray, optional
        θ in lme4's order; default the fitted θ. At another θ, β, σ and the modes are
        those of that θ (for comparisons with a reference at its own θ).

    Returns
    -------
    PredictionState
    """
    fit = result.fit
    criterion = fit.criterion
    plan = criterion.stats.plan
    names = [list(factor_names)[i] for i in plan.order]
    if theta is None:
        internal = fit.theta_scaled
        beta = result.fixed_effects.to_numpy()
        sigma = float(result.sigma)
        modes = [result.random_effects[name].to_numpy() for name in names]

        def covariance():
            cached = _AT_OPTIMUM.get(criterion)
            if cached is None:
                cached = JointCovariance(criterion.factor(internal), criterion.cp, criterion.terms)
                _AT_OPTIMUM[criterion] = cached
            return cached

    else:
        internal = result.internal_theta(theta)
        solution = result.solve_at(theta)
        beta, sigma = solution.beta, float(solution.sigma)
        modes = [m / s for m, s in zip(solution.modes, plan.scales)]

        def covariance():
            return JointCovariance(criterion.factor(internal), criterion.cp, criterion.terms)

    T = split_theta(internal, criterion.terms)
    factors = tuple(
        FactorState(name, b, np.asarray(m, dtype=float), term.n_levels, Tb, scale)
        for b, (name, m, term, Tb, scale) in enumerate(
            zip(names, modes, criterion.terms, T, plan.scales)
        )
    )
    return PredictionState(
        beta=np.asarray(beta, dtype=float),
        sigma=sigma,
        factors=factors,
        covariance_factory=covariance,
        added=getattr(result, "added_groups", None),
    )
