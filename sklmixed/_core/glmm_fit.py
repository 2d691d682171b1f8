"""The optimizer's road for a generalized linear mixed model, as lme4's ``glmer``.

:func:`fit_glmm` runs lme4's two stages on the objectives of :mod:`.laplace`:

1. θ by BOBYQA on the Laplace deviance with β inside PIRLS (``nAGQ = 0``: the fit
   ends here, and β's covariance is ``(R_XᵀR_X)⁻¹`` of the final PIRLS step, as
   lme4's);
2. (θ, β) by BOBYQA on the Laplace deviance (``nAGQ = 1``) or the adaptive
   Gauss–Hermite one (``nAGQ > 1``), PIRLS updating the modes only; the check of
   :mod:`.check` (central differences) judges the optimum, its Newton step polishes
   it, and its Hessian gives β's covariance ``2 H⁻¹`` (lme4's ``vcov``, from a
   finite-difference Hessian too).

Nothing is retried silently: each stage's :class:`~.optimize.OptimizerRecord` says
what ran. θ is optimized for unit-RMS random-effect columns and mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .agq import check_agq, saturated_constant
from .check import ConvergenceCheck, check_optimum
from .fit import _theta_unscaled, single_threaded_blas
from .laplace import StageOneObjective, StageTwoObjective
from .optimize import OptimizerRecord, continue_search, minimize_theta, polish
from .pirls import GLMMProblem, PIRLSState, laplace_deviance
from .solution import _conditional_covariances

__all__ = ["GLMMFit", "fit_glmm"]

# Initial trust-region radii: θ for unit-RMS columns (lme4 starts at T = I); δ in
# standard errors of β. On the references, these need 20-30% fewer evaluations than
# radii twice as large, for the same optimum (benchmarks/ times them).
_THETA_STEP = 0.1
_DELTA_STEP = 0.2
# Relative finite-difference step of the check in the second stage (δ is in standard
# errors of β): the objective is a PIRLS fixed point whose rounding (sums over rows,
# log-determinants) is ~1e-10 of the deviance, which a step of 1e-3 magnifies to a
# few percent of the Hessian; 5e-3 keeps it below 1e-4 while the truncation error
# (h² times third derivatives) stays below 1e-5 on every reference.
_HESSIAN_STEP = 5e-3


@dataclass(frozen=True)
class GLMMFit:
    """A fitted generalized linear mixed model, in the statistics' block order.

    Attributes
    ----------
    problem : GLMMProblem
    n_agq : int
    record : OptimizerRecord
        The last stage (θ in the original columns' units, and β after it for the
        second stage: ``record.theta`` holds θ only).
    stage_one : OptimizerRecord
        The first stage (θ with β inside PIRLS), scaled columns.
    check : ConvergenceCheck or None
        The check of the last stage's optimum (in ``(θ, δ)``, or θ for nAGQ = 0).
    theta_scaled : ndarray
        The optimum θ for unit-RMS columns.
    beta : ndarray of shape (p,)
    beta_cov : ndarray of shape (p, p)
        lme4's ``vcov``.
    beta_cov_from : {"hessian", "RX"}
        Where ``beta_cov`` comes from: the Hessian of the deviance in (θ, β), or
        ``(R_XᵀR_X)⁻¹`` given θ (nAGQ = 0, or a Hessian that is not positive definite).
    state : PIRLSState
        PIRLS at the optimum.
    modes : list of ndarray
        Conditional modes of the original columns, one per factor in block order.
    cond_cov : list of ndarray or None
        Their conditional covariances (lme4's ``condVar``).
    minus_twice_loglik : float
        −2 log-likelihood: the Laplace approximation, or the quadrature value with
        the saturated constant lme4 leaves out put back.
    objective : float
        What was minimized, on lme4's scale (for nAGQ > 1 lme4's ``-2 logLik``).
    deviance : float
        ``Σ dᵢ`` at the modes (lme4's ``deviance()`` of a GLMM).
    n_evals : int
        Objective evaluations over both stages and the check.
    pirls_failures : int
        Evaluations where PIRLS failed (the objective was +inf there).
    """

    problem: GLMMProblem
    n_agq: int
    record: OptimizerRecord
    stage_one: OptimizerRecord
    check: ConvergenceCheck | None
    theta_scaled: np.ndarray
    beta: np.ndarray
    beta_cov: np.ndarray
    beta_cov_from: str
    state: PIRLSState
    modes: list
    cond_cov: list | None
    minus_twice_loglik: float
    objective: float
    deviance: float
    n_evals: int
    pirls_failures: int

    @property
    def converged(self) -> bool:
        """Both stages stopped on a tolerance, PIRLS converged and the check passed."""
        check_ok = self.check is None or self.check.ok
        return (
            self.stage_one.converged and self.record.converged and check_ok
            and self.state.converged and np.isfinite(self.objective)
        )  # fmt: skip


def _rx_inverse(state: PIRLSState, p):
    """``R_X⁻¹`` (``R_X`` lower, ``R_X R_Xᵀ`` the fixed-effects Schur complement)."""
    if p == 0:
        return np.zeros((0, 0))
    RX = state.factor.L33[:p, :p]
    return scipy.linalg.solve_triangular(RX, np.eye(p), lower=True, check_finite=False)


def fit_glmm(
    problem: GLMMProblem, *, n_agq=1, tol=1e-6, max_evals=100_000, check_convergence=True
) -> GLMMFit:
    """Fit a GLMM as lme4's ``glmer`` (θ, then θ and β).

    Parameters
    ----------
    problem : GLMMProblem
        At least one grouping factor.
    n_agq : int
        0 (β in PIRLS only), 1 (Laplace, the default of lme4) or up to 25 (adaptive
        Gauss–Hermite quadrature, one scalar random-effects term).
    tol : float
        Absolute tolerance of BOBYQA on the parameters and the deviance.
    max_evals : int
        Evaluation budget of each stage.
    check_convergence : bool
        Check the optimum by finite differences (and polish it). The second stage's
        standard errors come from this check's Hessian; without it they are
        ``(R_XᵀR_X)⁻¹`` given θ.

    Returns
    -------
    GLMMFit
    """
    check_agq(problem, n_agq)
    if not problem.terms:
        raise ValueError("A generalized linear mixed model needs a grouping factor.")
    p = problem.n_fixed
    lower = problem.lower
    start = np.concatenate([t.theta_start() for t in problem.terms])
    options = dict(xtol_abs=tol, ftol_abs=tol, max_evals=max_evals)
    with single_threaded_blas():
        one = StageOneObjective(problem)
        stage_one = minimize_theta(one, start, lower, initial_step=_THETA_STEP, **options)
        check = None
        if n_agq == 0:
            record = stage_one
            if check_convergence:
                check = _fixed_anchor_check(one, one.state(record.theta), record, lower, 1e-4)
                record = polish(one, record, check, lower)
            record = _snap_to_boundary(one, record, lower)
            state = one.state(record.theta)
            n_evals = one.n_evals
            theta_scaled = record.theta
            M = _rx_inverse(state, p)
            beta, beta_cov, source = state.beta, M.T @ M, "RX"
            objective = laplace_deviance(problem, state)
            failures = one.pirls_failures
        else:
            state1 = one.state(stage_one.theta)
            M0 = _rx_inverse(state1, p).T  # β = β₀ + R_X⁻ᵀ δ: M₀M₀ᵀ = (R_X R_Xᵀ)⁻¹
            two = StageTwoObjective(problem, state1.beta, M0, n_agq)
            two.anchor = state1
            x0 = np.concatenate([stage_one.theta, np.zeros(p)])
            steps = np.concatenate([np.full(lower.size, _THETA_STEP), np.full(p, _DELTA_STEP)])
            record = minimize_theta(two, x0, two.lower, initial_step=steps, **options)
            if check_convergence:
                record, check = _checked(two, record, two.lower, steps, tol, max_evals)
            record = _snap_to_boundary(two, record, two.lower)
            x = record.theta
            state = two.state(x)
            objective = two.value_of(state) if state is not None else np.inf
            theta_scaled = x[: lower.size]
            beta = two.beta_of(x)
            beta_cov, source = _covariance_from_check(check, M0, lower.size)
            if beta_cov is None:
                Minv = _rx_inverse(state, p)
                beta_cov, source = Minv.T @ Minv, "RX"
            n_evals = one.n_evals + two.n_evals
            failures = one.pirls_failures + two.pirls_failures
    terms, scales = problem.terms, problem.plan.scales
    cond_cov = _conditional_covariances(state.factor, state.cp, terms, 1.0)
    modes = [b / s for b, s in zip(state.modes, scales)]
    if cond_cov is not None:
        cond_cov = [c / np.outer(s, s) for c, s in zip(cond_cov, scales)]
    minus2ll = objective + saturated_constant(problem) if n_agq > 1 else objective
    theta = _theta_unscaled(theta_scaled, terms, scales)
    record = OptimizerRecord(**{**record.__dict__, "theta": theta, "n_evals": n_evals})
    return GLMMFit(
        problem=problem,
        n_agq=n_agq,
        record=record,
        stage_one=stage_one,
        check=check,
        theta_scaled=theta_scaled,
        beta=beta,
        beta_cov=beta_cov,
        beta_cov_from=source,
        state=state,
        modes=modes,
        cond_cov=cond_cov,
        minus_twice_loglik=float(minus2ll),
        objective=float(objective),
        deviance=float(state.deviance),
        n_evals=n_evals,
        pirls_failures=failures,
    )


# Rounds of repair when the check doubts the optimum: a Newton step, else BOBYQA
# again from there at lme4's tolerances with a fresh (smaller) trust region.
_REPAIRS = 2
_LME4_TOL = 1e-8


def _checked(objective, record, lower, steps, tol, max_evals):
    """Check the optimum; where in doubt, polish or search on, and check again.

    Returns the final record and the check of its point (what the standard errors
    and ``converged`` are read from), so that nothing reported rests on a check of
    another point.
    """
    check = _fixed_anchor_check(objective, objective.state(record.theta), record, lower)
    for _ in range(_REPAIRS):
        if check.ok:
            break
        polished = polish(objective, record, check, lower)
        if polished.fmin < record.fmin:
            record = polished
        else:
            record = continue_search(
                objective, record, lower, reason="optimum in doubt, searched on",
                initial_step=0.1 * steps, xtol_abs=min(tol, _LME4_TOL),
                ftol_abs=min(tol, _LME4_TOL), max_evals=max_evals,
            )  # fmt: skip
        check = _fixed_anchor_check(objective, objective.state(record.theta), record, lower)
    if check.ok:
        # The check has paid for the Newton step: take it when it lowers the deviance
        # (a step within the check's predicted decrease, below its tolerance).
        record = polish(objective, record, check, lower)
    return record, check


# θ entries within this of their bound are tried on it (lme4's check.boundary).
_BOUNDARY_TOL = 1e-5
# ... and kept there when the deviance rises by no more than rounding: near a zero
# variance the deviance is even in θ, so it changes by O(θ²) ≈ 1e-10 at most, below
# the rounding of a sum over rows; 1e-10 of the deviance is far above that rounding
# and far below any difference an estimate could rest on.
_ROUNDING = 1e-10


def _snap_to_boundary(objective, record, lower):
    """Put θ entries that sit next to their bound onto it when that costs only
    rounding, so that a singular fit reports θ = 0 exactly, as lme4 does."""
    x = record.theta.copy()
    near = np.isfinite(lower) & (x - lower < _BOUNDARY_TOL) & (x != lower)
    if not near.any():
        return record
    trial = x.copy()
    trial[near] = lower[near]
    value = objective(trial)
    if not value <= record.fmin + _ROUNDING * max(1.0, abs(record.fmin)):
        return record
    fmin = min(value, record.fmin)
    return OptimizerRecord(
        **{
            **record.__dict__,
            "theta": trial,
            "fmin": float(fmin),
            "n_evals": record.n_evals + 1,
            "on_boundary": np.isfinite(lower) & (trial == lower),
        }
    )


def _fixed_anchor_check(objective, anchor, record, lower, step=_HESSIAN_STEP):
    """:func:`check_optimum` with every PIRLS run started from the optimum's modes."""
    if anchor is None:
        return check_optimum(objective, record.theta, np.inf, lower)
    objective.anchor, objective.fixed_anchor = anchor, True
    try:
        return check_optimum(objective, record.theta, record.fmin, lower, step=step)
    finally:
        objective.fixed_anchor = False


def _covariance_from_check(check, M0, k):
    """β's covariance ``2 (H⁻¹)_ββ`` from the check's Hessian in ``(θ, δ)``, or None
    when there is none or it is not positive definite."""
    if check is None or not np.isfinite(check.hessian).all():
        return None, None
    H = 0.5 * (check.hessian + check.hessian.T)
    try:
        scipy.linalg.cholesky(H, lower=True)
    except np.linalg.LinAlgError:
        return None, None
    cov_delta = 2.0 * np.linalg.inv(H)[k:, k:]
    return M0 @ cov_delta @ M0.T, "hessian"
