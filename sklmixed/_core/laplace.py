"""The GLMM's objectives: the Laplace (or quadrature) deviance of θ, or of (θ, β).

lme4 optimizes a GLMM in two stages. First θ alone, with β updated inside PIRLS
together with the modes (the objective of ``nAGQ = 0``); then θ and β together, PIRLS
updating the modes only, on the Laplace approximation (``nAGQ = 1``) or the adaptive
Gauss–Hermite deviance (``nAGQ > 1``). :class:`StageOneObjective` and
:class:`StageTwoObjective` are those two functions, each a callable for
:func:`~sklmixed._core.optimize.minimize_theta` and
:func:`~sklmixed._core.check.check_optimum`.

In the second stage β is written ``β = β₀ + M δ`` with ``M = R_X⁻¹`` from the first
stage (``M Mᵀ`` is β's covariance conditional on θ): δ is in standard-error units,
so one trust-region radius suits every coefficient whatever the scale of its column,
and the Hessian in δ is close to ``2 I``.

Each evaluation starts PIRLS from the modes of an anchor (the last point evaluated,
or a fixed point such as the optimum while a Hessian is taken) and runs it to its
fixed point, so that values differ from an exact function of the parameters only by
rounding.
"""

from __future__ import annotations

import numpy as np

from .agq import agq_deviance
from .pirls import PIRLSFailure, laplace_deviance, pirls, start_eta

__all__ = ["StageOneObjective", "StageTwoObjective"]


class _Objective:
    """Shared bookkeeping: the anchor PIRLS starts from, and the evaluations made."""

    def __init__(self, problem):
        self.problem = problem
        self.anchor = None  # PIRLSState PIRLS starts from; None: R's mustart
        self.fixed_anchor = False  # True: never move the anchor (while a Hessian is taken)
        self.n_evals = 0
        self.pirls_iterations = 0
        self.pirls_failures = 0

    def _run(self, theta, beta, update_beta):
        self.n_evals += 1
        anchor = self.anchor
        try:
            if anchor is None:
                state = pirls(
                    self.problem, theta, beta, update_beta=update_beta,
                    eta=start_eta(self.problem),
                )  # fmt: skip
            else:
                start_beta = anchor.beta if update_beta else beta
                state = pirls(self.problem, theta, start_beta, anchor.u, update_beta=update_beta)
        except PIRLSFailure:
            self.pirls_failures += 1
            return None
        self.pirls_iterations += state.n_iter
        if not self.fixed_anchor:
            self.anchor = state
        return state


class StageOneObjective(_Objective):
    """The Laplace deviance of θ with β updated inside PIRLS (lme4's ``nAGQ = 0``).

    Parameters
    ----------
    problem : GLMMProblem
    """

    def state(self, theta):
        """The PIRLS fixed point at θ (β and modes), or None where PIRLS fails."""
        beta = np.zeros(self.problem.n_fixed)
        return self._run(np.asarray(theta, float), beta, update_beta=True)

    def __call__(self, theta) -> float:
        state = self.state(theta)
        if state is None:
            return np.inf
        value = laplace_deviance(self.problem, state)
        return value if np.isfinite(value) else np.inf


class StageTwoObjective(_Objective):
    """The Laplace (``n_agq = 1``) or quadrature deviance of ``x = (θ, δ)``.

    Parameters
    ----------
    problem : GLMMProblem
    beta0 : ndarray of shape (p,)
        β at ``δ = 0`` (the first stage's).
    M : ndarray of shape (p, p)
        ``β = β₀ + M δ``.
    n_agq : int
        1 for the Laplace approximation, more for adaptive Gauss–Hermite quadrature
        (lme4's scale, without the saturated constant).
    """

    def __init__(self, problem, beta0, M, n_agq=1):
        super().__init__(problem)
        self.beta0 = np.asarray(beta0, float)
        self.M = np.asarray(M, float)
        self.n_agq = n_agq
        self.k = problem.lower.size

    def beta_of(self, x) -> np.ndarray:
        """β at ``x = (θ, δ)``."""
        return self.beta0 + self.M @ np.asarray(x, float)[self.k :]

    def state(self, x):
        """The PIRLS fixed point at ``x`` (modes only), or None where PIRLS fails."""
        x = np.asarray(x, float)
        return self._run(x[: self.k], self.beta_of(x), update_beta=False)

    def value_of(self, state) -> float:
        """The objective at a PIRLS fixed point."""
        if self.n_agq > 1:
            value = agq_deviance(self.problem, state, self.n_agq)
        else:
            value = laplace_deviance(self.problem, state)
        return value if np.isfinite(value) else np.inf

    def __call__(self, x) -> float:
        state = self.state(x)
        return np.inf if state is None else self.value_of(state)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of ``x``: θ's, and none on δ."""
        return np.concatenate([self.problem.lower, np.full(self.beta0.size, -np.inf)])
