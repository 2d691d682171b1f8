"""Penalized iteratively reweighted least squares on the LMM's blocked factor.

For fixed θ (and β, unless β is updated too) the conditional modes ``u`` of a
generalized linear mixed model minimize the penalized deviance
``Σ dᵢ(yᵢ, μᵢ) + |u|²`` with ``μ = g⁻¹(Xβ + ZΛu + offset)``. Each Fisher-scoring step
is a weighted linear mixed model: with working weights ``Wᵢ = wᵢ (dμ/dη)² / V(μ)`` and
working response ``zᵢ = ηᵢ − offsetᵢ + (yᵢ − μᵢ)/(dμ/dη)``, the new ``u`` (and β) solve
``(ΛᵀZᵀWZΛ + I) u = ΛᵀZᵀW(z − Xβ)``: the very system the LMM factors. So a step is
the weighted cross-products of ``[Z X z]`` in the LMM's blocks (one pass over the
rows, batched per level: :class:`~sklmixed._core.working.WorkingLayout`, the
statistics of :func:`~sklmixed.stats.partial_stats` with their sparse patterns built
once), :func:`~sklmixed._core.factor.factorize` at θ, and a back-substitution: no
n × n matrix, no loop over rows or levels. Steps are halved
until the penalized deviance falls, as lme4's ``pwrssUpdate`` does.

Random-effect columns are those of the statistics' plan (unit root mean square), so
θ here is the scale-free θ the LMM optimizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..stats.plan import ReductionPlan, block_order, column_scales
from .factor import BlockedFactor, factorize
from .families import Family
from .solution import fixed_effects_from_factor, spherical_modes
from .terms import TermLayout, split_theta
from .working import WorkingLayout

__all__ = ["GLMMProblem", "PIRLSState", "make_problem", "pirls", "linear_predictor_of"]

# PIRLS stops after a step that moves no linear predictor by more than this (η is on
# the link scale, O(1)). With a canonical link (logit, log) Fisher scoring is Newton's
# method, so such a step leaves u within about its square of the mode, ~1e-12; other
# links converge linearly and take the stricter bound.
_ETA_TOL = {True: 1e-6, False: 1e-9}
# ... or when the penalized deviance changes by less than this fraction of itself.
_PDEV_TOL = 1e-13
_MAX_ITER = 40
_MAX_HALVINGS = 12


class PIRLSFailure(RuntimeError):
    """PIRLS did not reach the modes (the objective is +inf there)."""


@dataclass(frozen=True)
class GLMMProblem:
    """What PIRLS reads: the model arrays, the family and the reduction layout.

    Attributes
    ----------
    arrays : ModelArrays
        The training arrays (``y`` a proportion for binomial responses).
    family : Family
    prior : ndarray of shape (n,)
        Prior weights times frequency weights (ones without either).
    offset : ndarray of shape (n,)
        The known part of the linear predictor (zeros without one).
    plan : ReductionPlan
        Block order and column scales (no least-squares offset: β is solved for).
    terms : tuple of TermLayout
        Each factor's share of θ, in block order.
    columns, codes : tuple of ndarray
        Each factor's scaled random-effect columns and level codes, in block order.
    layout : WorkingLayout
        The sparse patterns of the working system's cross-products.
    saturated : ndarray of shape (n,)
        The family's kernel at ``μ = y`` (deviance residuals are the kernel less it).
    loglik_constant : float
        ``Σ`` of the family's constants (−2 log-likelihood is the kernel's sum plus it).
    """

    arrays: object
    family: Family
    prior: np.ndarray
    offset: np.ndarray
    plan: ReductionPlan
    terms: tuple
    columns: tuple
    codes: tuple
    layout: WorkingLayout
    saturated: np.ndarray
    loglik_constant: float

    @property
    def n_fixed(self) -> int:
        return self.arrays.X.shape[1]

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of θ."""
        if not self.terms:
            return np.zeros(0)
        return np.concatenate([t.theta_lower() for t in self.terms])


def make_problem(arrays, family: Family) -> GLMMProblem:
    """The :class:`GLMMProblem` of training arrays.

    Parameters
    ----------
    arrays : ModelArrays
        ``y`` holds proportions (binomial, the trials as ``weights``) or counts.
    family : Family

    Returns
    -------
    GLMMProblem
    """
    if not arrays.factors:
        raise ValueError(
            "A generalized linear mixed model needs a random-effects term such as "
            "(1 | g); without one it is a GLM (scikit-learn's LogisticRegression or "
            "PoissonRegressor)."
        )
    n, p = arrays.X.shape
    prior = np.ones(n) if arrays.weights is None else np.asarray(arrays.weights, float)
    if arrays.frequency is not None:
        prior = prior * arrays.frequency
    offset = np.zeros(n) if arrays.offset is None else np.asarray(arrays.offset, float)
    order = block_order([f.n_levels for f in arrays.factors])
    factors = [arrays.factors[i] for i in order]
    scales = tuple(column_scales(f.columns) for f in factors)
    layout = ReductionPlan(order, scales, np.zeros(p), False)
    terms = tuple(TermLayout(f.n_levels, f.q, f.blocks) for f in factors)
    columns = tuple(np.ascontiguousarray(f.columns / s) for f, s in zip(factors, scales))
    codes = tuple(f.codes for f in factors)
    return GLMMProblem(
        arrays=arrays.replace(frequency=None),
        family=family,
        prior=prior,
        offset=offset,
        plan=layout,
        terms=terms,
        columns=columns,
        codes=codes,
        layout=WorkingLayout(arrays.X, columns, codes, [f.n_levels for f in factors]),
        saturated=family.kernel(arrays.y, arrays.y, prior),
        loglik_constant=float(family.constant(arrays.y, prior).sum()),
    )


@dataclass(frozen=True)
class PIRLSState:
    """PIRLS at its fixed point for one θ (and β).

    Attributes
    ----------
    theta : ndarray
        θ (scaled columns, block order).
    beta : ndarray of shape (p,)
    u : list of ndarray of shape (n_levels, q)
        Spherical modes of each term, block order.
    eta : ndarray of shape (n,)
        Linear predictor, offset included.
    mu : ndarray of shape (n,)
        Fitted means.
    factor : BlockedFactor
        The factor of the working system at ``mu`` (its ``logdet_L`` is lme4's ldL2).
    cp : CrossProducts
        The working cross-products behind ``factor``.
    sum_sq_u : float
        ``|u|²``.
    deviance : float
        ``Σ dᵢ``, the deviance residuals' sum at ``mu``.
    n_iter : int
    converged : bool
    """

    theta: np.ndarray
    beta: np.ndarray
    u: list
    eta: np.ndarray
    mu: np.ndarray
    factor: BlockedFactor
    cp: object
    sum_sq_u: float
    deviance: float
    n_iter: int
    converged: bool

    @property
    def modes(self):
        """The conditional modes ``b = Λu`` of each term (scaled columns, block order)."""
        return [u @ Tj.T for u, Tj in zip(self.u, self.factor.T)]


def linear_predictor_of(problem: GLMMProblem, beta, modes) -> np.ndarray:
    """``Xβ + Σ Zₖbₖ + offset`` from modes of the scaled columns (block order)."""
    eta = problem.arrays.X @ beta + problem.offset
    for cols, codes, b in zip(problem.columns, problem.codes, modes):
        if cols.shape[1] == 1:
            eta += cols[:, 0] * b[codes, 0]
        else:
            eta += np.einsum("ij,ij->i", cols, b[codes])
    return eta


def _working_factor(problem, theta, eta, mu=None):
    """Working weights and response at η (``mu`` its means, when known), reduced and
    factored at θ."""
    y = problem.arrays.y
    mu, weights, resid = problem.family.working(y, eta, problem.prior, mu)
    z = eta - problem.offset + resid
    cp = problem.layout.cross_products(weights, z)
    return mu, cp, factorize(cp, problem.terms, theta)


def _penalized(problem, eta, u):
    mu = problem.family.link.inverse(eta)
    kernel = problem.family.kernel(problem.arrays.y, mu, problem.prior)
    dev = float(kernel.sum() - problem.saturated.sum())
    sq = float(sum(np.einsum("ij,ij->", v, v) for v in u))
    return mu, dev, sq


def pirls(problem: GLMMProblem, theta, beta, u=None, *, update_beta=False, eta=None):
    """The conditional modes at θ (and β, or the β that goes with them).

    Parameters
    ----------
    problem : GLMMProblem
    theta : ndarray
        θ for the scaled columns, block order.
    beta : ndarray of shape (p,)
        The fixed effects (the start when ``update_beta``).
    u : list of ndarray, optional
        Starting spherical modes (zeros when None).
    update_beta : bool
        Update β with ``u`` (lme4's nAGQ = 0 and its first stage) rather than hold it.
    eta : ndarray, optional
        A linear predictor to take the first step from instead of ``(β, u)`` (R's
        ``mustart``); the first step is then accepted as it is.

    Returns
    -------
    PIRLSState

    Raises
    ------
    PIRLSFailure
        When the working system is not positive definite or the penalized deviance
        is not finite.
    """
    theta = np.asarray(theta, float)
    terms = problem.terms
    T = split_theta(theta, terms)
    if u is None:
        u = [np.zeros((t.n_levels, t.q)) for t in terms]
    beta = np.asarray(beta, float)
    p = problem.n_fixed
    first_free = eta is not None
    if eta is None:
        eta = linear_predictor_of(problem, beta, [v @ Tj.T for v, Tj in zip(u, T)])
    mu, dev, sq = _penalized(problem, eta, u)
    pdev = dev + sq
    eta_tol = _ETA_TOL[problem.family.canonical]
    converged = False
    n_iter = 0
    for n_iter in range(1, _MAX_ITER + 1):
        try:
            _, cp, factor = _working_factor(problem, theta, eta, mu)
            if update_beta and p:
                beta_new = fixed_effects_from_factor(factor, cp.n_obs, p, False)[0]
            else:
                beta_new = beta
            u_new = spherical_modes(factor, cp, terms, beta_new)
        except np.linalg.LinAlgError as exc:
            raise PIRLSFailure(str(exc)) from None
        step = 1.0
        for _ in range(_MAX_HALVINGS):
            u_try = [a + step * (b - a) for a, b in zip(u, u_new)]
            beta_try = beta + step * (beta_new - beta)
            eta_try = linear_predictor_of(problem, beta_try, [v @ Tj.T for v, Tj in zip(u_try, T)])
            mu_try, dev_try, sq_try = _penalized(problem, eta_try, u_try)
            if first_free or dev_try + sq_try <= pdev:
                break
            step *= 0.5
        else:
            # No halving lowers the penalized deviance: rounding at the mode.
            converged = True
            break
        first_free = False
        moved = float(np.max(np.abs(eta_try - eta), initial=0.0))
        change = pdev - (dev_try + sq_try)
        u, beta, eta, mu, dev, sq = u_try, beta_try, eta_try, mu_try, dev_try, sq_try
        pdev = dev + sq
        if not np.isfinite(pdev):
            raise PIRLSFailure("the penalized deviance is not finite")
        if moved < eta_tol or abs(change) <= _PDEV_TOL * max(pdev, 1.0):
            converged = True
            break
    try:
        mu, cp, factor = _working_factor(problem, theta, eta, mu)
    except np.linalg.LinAlgError as exc:
        raise PIRLSFailure(str(exc)) from None
    return PIRLSState(theta, beta, u, eta, mu, factor, cp, sq, dev, n_iter, converged)


def laplace_deviance(problem: GLMMProblem, state: PIRLSState) -> float:
    """lme4's Laplace approximation to −2 log-likelihood at a PIRLS fixed point:
    ``log|L|² + |u|² − 2 Σ log p(yᵢ | μᵢ)``."""
    # −2 Σ log p(y | μ): the deviance plus the saturated kernel plus the constants.
    aic = state.deviance + float(problem.saturated.sum()) + problem.loglik_constant
    return state.factor.logdet_L + state.sum_sq_u + aic


def start_eta(problem: GLMMProblem) -> np.ndarray:
    """R's starting linear predictor, ``g(mustart)`` (offset included)."""
    family = problem.family
    return family.link.link(family.start_mu(problem.arrays.y, problem.prior))


def with_theta(state: PIRLSState, theta) -> PIRLSState:
    """``state`` relabelled with θ (for bookkeeping of unscaled θ)."""
    return replace(state, theta=np.asarray(theta, float))
