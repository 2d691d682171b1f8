"""The optimizer's road for a linear mixed model: start, search, restart, check, polish.

:func:`fit_lmm` minimizes a :class:`~sklmixed._core.criterion.Criterion` over θ and
solves at the optimum. θ is optimized for unit-scale random-effect columns (the
statistics' plan divided them by their root mean square) and mapped back at the end.
Nothing is retried silently: the record names every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache, partial

import numpy as np

from ..stats.span import residual_outside_span
from .check import ConvergenceCheck, check_optimum
from .criterion import Criterion
from .optimize import (
    OptimizerRecord,
    best_of_starts,
    continue_search,
    minimize_theta,
    polish,
    restart_on_boundary,
)
from .solution import Solution
from .terms import moment_theta_start, slopes_start, theta_scales

__all__ = ["LMMFit", "fit_lmm"]

# BOBYQA's initial trust-region radius: the moment start is usually within this of
# the optimum (NLopt's default radius wastes evaluations on wide first steps), the
# slopes start (per-level least squares) within a third of it.
_INITIAL_STEP = 0.1
_SLOPES_STEP = 0.03

# lme4's tolerances (absolute, on θ and on the criterion). The default search stops
# at 1e-6 and the check's Newton step finishes; where the step fails, BOBYQA carries
# on to these.
_LME4_TOL = 1e-8


@dataclass(frozen=True)
class LMMFit:
    """A fitted linear mixed model, in the statistics' block order.

    Attributes
    ----------
    record : OptimizerRecord
        θ here is for the original (unscaled) columns.
    check : ConvergenceCheck or None
        Finite-difference check of the optimum, when requested (on the scale of
        unit-RMS random-effect columns, where θ is optimized).
    solution : Solution
        β for the original response; modes and conditional covariances of the
        original columns, one entry per factor in block order.
    theta_scaled : ndarray
        The optimum θ for unit-RMS columns: scale-free, what the singularity
        threshold is applied to.
    criterion : Criterion
        The criterion that was minimized (for inference and prediction).
    unbounded : bool
        Whether the criterion was −inf somewhere: the random effects fit y exactly
        and the likelihood has no maximum.
    """

    record: OptimizerRecord
    check: ConvergenceCheck | None
    solution: Solution
    theta_scaled: np.ndarray
    criterion: Criterion
    unbounded: bool = False


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas():
    """BLAS limited to one thread while θ is optimized.

    Each evaluation works on small blocks (q × q per level, a dense block of a few
    thousand at most), where threads buy little; on a busy machine the spinning
    threads of a multi-threaded BLAS slow a dense Cholesky down tenfold.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


class _Watched:
    """A criterion that remembers whether it was ever −inf (an unbounded likelihood),
    and reports each evaluation to ``callback(n_evals, value)`` (a progress display)."""

    def __init__(self, criterion, callback=None):
        self.criterion = criterion
        self.unbounded = False
        self.callback = callback
        self.n_evals = 0

    def __call__(self, theta):
        value = self.criterion(theta)
        if value == -np.inf:
            self.unbounded = True
        self._report(np.array([value]))
        return value

    def batch(self, thetas):
        values = self.criterion.batch(thetas)
        if (values == -np.inf).any():
            self.unbounded = True
        self._report(values)
        return values

    def _report(self, values):
        self.n_evals += len(values)
        if self.callback is not None:
            self.callback(self.n_evals, float(np.min(values)))


def fit_lmm(
    criterion: Criterion, *, tol=1e-6, max_evals=100_000, check_convergence=True, callback=None
) -> LMMFit:
    """Minimize the criterion over θ and solve at the optimum.

    Parameters
    ----------
    criterion : Criterion
    tol : float
        Absolute tolerance of BOBYQA on θ and on the criterion.
    max_evals : int
        Evaluation budget.
    check_convergence : bool
        Check the optimum by finite differences and polish it.
    callback : callable, optional
        Called as ``callback(n_evals, value)`` after each evaluation (or batch of
        evaluations) of the criterion: a progress display.

    Returns
    -------
    LMMFit
    """
    stats, terms = criterion.stats, criterion.terms
    watched = _Watched(criterion, callback)
    if not terms:
        record = OptimizerRecord(
            optimizer="none (no random effects)",
            theta_start=np.zeros(0),
            theta=np.zeros(0),
            fmin=criterion(np.zeros(0)),
            n_evals=1,  # the criterion, evaluated once at the closed-form optimum
            converged=True,
            message="no random effects: closed form",
            on_boundary=np.zeros(0, dtype=bool),
        )
        check = None
        sol = criterion.solve(record.theta)
    else:
        with single_threaded_blas():
            record, check = _optimize_theta(
                watched, criterion, *_theta_start(stats, terms, criterion), tol, max_evals,
                check_convergence,
            )  # fmt: skip
            sol = criterion.solve(record.theta)
    scales = stats.plan.scales
    theta = _theta_unscaled(record.theta, terms, scales)
    modes, cond_cov = [], []
    for j, scale in enumerate(scales):
        modes.append(sol.modes[j] / scale)
        cond_cov.append(None if sol.cond_cov is None else sol.cond_cov[j] / np.outer(scale, scale))
    sol = replace(
        sol,
        beta=sol.beta + stats.plan.offset,
        modes=modes,
        cond_cov=None if sol.cond_cov is None else cond_cov,
    )
    return LMMFit(
        record=replace(record, theta=theta),
        check=check,
        solution=sol,
        theta_scaled=record.theta,
        criterion=criterion,
        unbounded=bool(terms) and (watched.unbounded or reproduces_y(criterion, sol.pwrss)),
    )


# Where r² at the optimum is at least this fraction of yᵀy (σ̂ above a thousandth of
# y's residual scale), the fit is nowhere near an exact one and the span of [X Z] is
# not computed (a dense system when there are several factors).
_NEAR_EXACT = 1e-6


def reproduces_y(criterion, pwrss) -> bool:
    """Whether the columns of ``[X Z]`` span y, so the likelihood has no maximum.

    Asked of the data directly (the residual of y on all of ``[X Z]``, against the
    criterion's rounding floor, a rule scaled to yᵀy), not of how far an optimizer
    got before rounding stalled it; only where r² at the optimum is small enough for
    the question to arise.
    """
    scale = float(criterion.cp.XYtXY[-1, -1])
    if not pwrss < _NEAR_EXACT * scale:
        return False
    return residual_outside_span(criterion.cp) <= criterion.pwrss_floor


def _optimize_theta(fun, criterion, start, step, tol, max_evals, check_convergence):
    """Minimize ``fun`` from ``start`` with initial radii ``step`` (and from lme4's start
    where the criterion can have several minima), restart at boundary optima, then
    check and refine. Returns the record and the check (None when not asked)."""
    lower, terms = criterion.lower, criterion.terms
    options = dict(xtol_abs=tol, ftol_abs=tol, max_evals=max_evals)
    scales = criterion.stats.plan.scales
    record = minimize_theta(fun, start, lower, initial_step=step, **options)
    lme4_run = {
        "lme4's start, in lme4's units": partial(
            _run_in_lme4_units, fun, terms, scales, lower, options
        )
    }
    slopes = any(term.q > 1 for term in terms)
    if slopes:
        # With random slopes the profiled criterion can have two minima in θ, and the
        # moment start can lie in the other one's basin. lme4 starts at T = I of the
        # original columns and searches in their units, where BOBYQA's first steps
        # (NLopt's default radius) take another path: a second run does as lme4 does.
        record = best_of_starts(record, lme4_run, max_evals)
    # A boundary optimum may be a local one (separate minima on different faces of the
    # bound): BOBYQA restarts from lme4's start (unless it ran already), then from the
    # sign-flipped optimum.
    restarts = {} if slopes else dict(lme4_run)
    restarts["the optimum with its zero columns' signs flipped"] = partial(
        _run_flipped, fun, terms, lower, options
    )
    if not check_convergence:
        return restart_on_boundary(record, restarts, max_evals), None
    record, check = _refine(fun, criterion, record, tol, max_evals)
    # The refined optimum decides whether to restart: BOBYQA can stop short of a bound
    # that the Newton step then reaches.
    restarted = restart_on_boundary(record, restarts, max_evals)
    if restarted.fmin < record.fmin:
        return _refine(fun, criterion, restarted, tol, max_evals)
    return restarted, check


# The refinement goes on while the check predicts more than this fall of the criterion
# (a tenth of lme4's reporting precision of 1e-6 on the log-likelihood).
_FINISH = 1e-7
_MAX_ROUNDS = 6
_FINISH_FTOL = 1e-10


def _refine(fun, criterion, record, tol, max_evals):
    """Check the optimum and, while the check predicts the criterion can still fall,
    go after that fall: the check's Newton step, then BOBYQA with a fresh trust region
    at lme4's tolerances or finer, then (one grouping factor) L-BFGS-B with the
    gradient. Rounds end when the check passes, when nothing is gained, or when the
    evaluation budget is spent.

    The check warns only when what it predicts is within reach: a predicted fall that
    none of these searches from the optimum realizes is a failure of the local
    quadratic model (rounding, a criterion far from quadratic next to a bound), not a
    better point, and the check is passed with a note saying so.
    """
    lower = criterion.lower
    # One grouping factor has an analytic gradient. BOBYQA still drives the search:
    # L-BFGS-B needs a third of its evaluations on well-posed fits, but each gradient
    # costs three to four evaluations and near a zero variance it crawled. The
    # gradient continues a search the check finds in doubt, and gives the check its
    # Hessian where 2k + 1 gradients cost less than 2k² values (k ≥ 4 θ parameters).
    gradient = criterion.gradient if criterion.has_gradient else None
    check_gradient = gradient if gradient is not None and lower.size >= 4 else None
    checked = partial(_check, fun, lower, gradient=check_gradient, fun_batch=fun.batch)
    # The finishing searches stop on steps that gain less than 1e-10, or the rounding
    # of the criterion where that is coarser.
    ftol = max(min(tol, _FINISH_FTOL), 1e-14 * abs(record.fmin))
    finish = dict(xtol_abs=min(tol, _LME4_TOL), ftol_abs=ftol)
    check = checked(record)
    stalled = False
    for round_ in range(_MAX_ROUNDS):
        before = record
        # The Newton step costs one evaluation and finishes θ (hence β) to the
        # digits a tolerance of 1e-8 on the criterion leaves open near a flat optimum.
        record = polish(fun, record, check, lower)
        remaining = max_evals - record.n_evals
        if (check.ok and check.predicted_decrease <= _FINISH) or not record.converged:
            break
        if remaining <= 0:
            break
        if round_ >= 2 or not record.fmin < before.fmin - max(_FINISH, 0.5 * check.predicted_decrease):
            # The Newton step did not deliver half of what the check predicts, or
            # Newton steps creep (a coarse search, BOBYQA stalled in a flat valley next
            # to a zero variance, a curved valley where the quadratic model is poor).
            # Its trust region starts in proportion to θ: where θ is large (random
            # effects that nearly reproduce y) the criterion falls slowly over a long
            # way, and radii of 0.1 with steps of 1e-8 stop on the first stretch.
            record = continue_search(
                fun, record, lower,
                reason=f"searched on to tolerance {finish['ftol_abs']:g}",
                initial_step=_INITIAL_STEP * np.maximum(1.0, np.abs(record.theta)),
                max_evals=remaining, **finish,
            )  # fmt: skip
        if gradient is not None and not record.fmin < before.fmin - _FINISH:
            # L-BFGS-B's line searches follow the gradient where BOBYQA's model of a
            # nearly flat valley stalls.
            record = continue_search(
                criterion.value_and_gradient, record, lower,
                reason="optimum in doubt, continued with the gradient",
                with_gradient=True, ftol_abs=finish["ftol_abs"],
                max_evals=max(max_evals - record.n_evals, 1),
            )  # fmt: skip
        if not record.fmin < before.fmin:
            stalled = True
            break
        check = checked(record)
    if not check.ok and stalled and not np.isnan(check.predicted_decrease):
        check = replace(
            check,
            ok=True,
            message=f"the local quadratic model predicted a fall of "
            f"{check.predicted_decrease:.2g} that neither its Newton step nor a fresh "
            "search from the optimum realized",
        )
    return record, check


def _check(fun, lower, record, **options):
    """:func:`check_optimum` at the optimum of ``record``."""
    return check_optimum(fun, record.theta, record.fmin, lower, **options)


def _theta_start(stats, terms, criterion):
    """Moment estimates of θ, with the first term's correlated slopes from its levels,
    and BOBYQA's initial radius for each entry."""
    cp = criterion.cp
    slopes = slopes_start(terms[0], cp.A11, cp.Z1tXY[:, :, -1], float(cp.XYtXY[-1, -1]), cp.n_obs)
    moments = moment_theta_start(stats, terms)
    if slopes is None:
        return moments, np.full(moments.size, _INITIAL_STEP)
    rest = moments[terms[0].n_theta :]
    step = np.concatenate([np.full(slopes.size, _SLOPES_STEP), np.full(rest.size, _INITIAL_STEP)])
    return np.concatenate([slopes, rest]), step


def _theta_unscaled(theta_scaled, terms, scales):
    """θ of the original columns from θ of the unit-RMS ones (``T = D⁻¹ T̃``), term by term."""
    out, start = [], 0
    for term, scale in zip(terms, scales):
        out.append(theta_scaled[start : start + term.n_theta] / scale[term.theta_rows])
        start += term.n_theta
    return np.concatenate(out) if out else np.zeros(0)


def _run_flipped(fun, terms, lower, options, theta, max_evals):
    """BOBYQA from θ with its zero columns' signs flipped (:func:`_flip_zero_columns`)."""
    start = _flip_zero_columns(theta, terms)
    return minimize_theta(fun, start, lower, **{**options, "max_evals": max_evals})


def _run_in_lme4_units(fun, terms, scales, lower, options, theta, max_evals):
    """BOBYQA from lme4's start in lme4's units (``T = I`` of the original columns), as
    the record of a run in the criterion's units (unit-RMS columns). ``theta``, the
    best θ so far, is not used: the start is lme4's."""
    scale = theta_scales(terms, scales)
    start = np.concatenate([t.theta_start() for t in terms])
    run = minimize_theta(
        lambda phi: fun(scale * phi), start, lower, **{**options, "max_evals": max_evals}
    )
    theta = scale * run.theta
    return replace(
        run,
        theta_start=scale * start,
        theta=theta,
        on_boundary=np.isfinite(lower) & (theta == lower),
    )


def _flip_zero_columns(theta, terms):
    """θ with the entries below each zero diagonal element of ``T`` negated.

    Negating a column of ``T`` leaves ``T Tᵀ`` and the criterion unchanged, but where
    the column's diagonal element is 0 the two points sit on different faces of the
    bound: from one, raising that element can lower the criterion when from the other
    it cannot.
    """
    flipped, start = np.array(theta, dtype=float), 0
    for term in terms:
        rows, cols = term.theta_rows, term.theta_cols
        local = flipped[start : start + term.n_theta]
        for j in np.flatnonzero((rows == cols) & (local == 0.0)):
            local[(cols == cols[j]) & (rows > rows[j])] *= -1.0
        start += term.n_theta
    return flipped
