"""Bounded minimization of the profiled criterion over θ.

The optimizer is NLopt's BOBYQA, lme4's default for linear mixed models (``nloptwrap``),
with lme4's absolute tolerances. After it stops, θ entries within ``boundary_tol`` of
their bound are moved onto it when that does not raise the criterion (lme4's
``check.boundary``), so a singular fit is reported exactly as lme4 reports it.
Nothing is retried silently: the record says what was run and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import nlopt
import numpy as np

__all__ = ["OptimizerRecord", "minimize_theta"]

_STATUS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
}


@dataclass(frozen=True)
class OptimizerRecord:
    """What the optimizer did.

    Attributes
    ----------
    optimizer : str
        Algorithm name.
    theta_start, theta : ndarray
        Starting point and optimum.
    fmin : float
        The criterion at ``theta``.
    n_evals : int
        Criterion evaluations, the boundary check included.
    converged : bool
        True when the optimizer stopped on a tolerance rather than a budget.
    message : str
        The optimizer's stopping reason.
    on_boundary : ndarray of bool
        θ entries that lie on their lower bound.
    """

    optimizer: str
    theta_start: np.ndarray
    theta: np.ndarray
    fmin: float
    n_evals: int
    converged: bool
    message: str
    on_boundary: np.ndarray


def minimize_theta(
    fun,
    theta_start,
    lower,
    *,
    xtol_abs=1e-8,
    ftol_abs=1e-8,
    max_evals=100_000,
    initial_step=None,
    boundary_tol=1e-5,
) -> OptimizerRecord:
    """Minimize ``fun(theta)`` subject to ``theta >= lower``.

    Parameters
    ----------
    fun : callable
        ``fun(theta) -> float``, the profiled deviance or REML criterion.
    theta_start, lower : ndarray of shape (k,)
        Starting point and lower bounds (``-inf`` for unbounded entries).
    xtol_abs, ftol_abs : float
        Absolute tolerances on θ and on the criterion (lme4: 1e-8 both).
    max_evals : int
        Evaluation budget.
    initial_step : float or ndarray, optional
        BOBYQA's initial trust-region radius; NLopt's default when None.
    boundary_tol : float
        θ entries this close to their bound are tried on the bound.

    Returns
    -------
    OptimizerRecord
    """
    theta_start = np.asarray(theta_start, dtype=float)
    lower = np.asarray(lower, dtype=float)
    n_evals = 0
    best = [np.inf, theta_start.copy()]

    def counted(theta):
        nonlocal n_evals
        n_evals += 1
        value = fun(theta)
        value = value if np.isfinite(value) else np.inf
        if value < best[0]:
            best[0], best[1] = value, np.array(theta, dtype=float)
        return value

    opt = nlopt.opt(nlopt.LN_BOBYQA, theta_start.size)
    opt.set_min_objective(lambda x, grad: counted(x))
    opt.set_lower_bounds(lower)
    opt.set_xtol_abs(xtol_abs)
    opt.set_ftol_abs(ftol_abs)
    opt.set_maxeval(max_evals)
    if initial_step is not None:
        opt.set_initial_step(np.broadcast_to(np.asarray(initial_step, float), theta_start.shape))
    try:
        opt.optimize(theta_start.copy())
        status = opt.last_optimize_result()
        message = _STATUS.get(status, f"nlopt status {status}")
        converged = status in (nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.XTOL_REACHED)
    except nlopt.RoundoffLimited:
        # The trust region shrank below rounding: the best point stands, and the
        # convergence check at the optimum judges it.
        message, converged = "roundoff limited", True
    fmin, theta = best

    # lme4's check.boundary: snap near-bound entries onto the bound when no worse.
    near = np.isfinite(lower) & (theta - lower < boundary_tol) & (theta != lower)
    for i in np.flatnonzero(near):
        trial = theta.copy()
        trial[i] = lower[i]
        f_trial = counted(trial)
        if f_trial <= fmin:
            theta, fmin = trial, f_trial
    return OptimizerRecord(
        optimizer="nlopt LN_BOBYQA",
        theta_start=theta_start,
        theta=theta,
        fmin=float(fmin),
        n_evals=n_evals,
        converged=bool(converged),
        message=message,
        on_boundary=np.isfinite(lower) & (theta == lower),
    )
