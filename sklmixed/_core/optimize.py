"""Bounded minimization of the profiled criterion over θ.

The optimizer is NLopt's BOBYQA, lme4's default for linear mixed models (``nloptwrap``),
with lme4's absolute tolerances. After it stops, θ entries within ``boundary_tol`` of
their bound are moved onto it when that does not raise the criterion (lme4's
``check.boundary``), so a singular fit is reported exactly as lme4 reports it.
Nothing is retried silently: the record says what was run and how it ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nlopt
import numpy as np
import scipy.optimize

__all__ = [
    "OptimizerRecord",
    "minimize_theta",
    "best_of_starts",
    "restart_on_boundary",
    "continue_search",
    "polish",
]

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
    with_gradient=False,
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
        ``fun(theta) -> float``, the profiled deviance or REML criterion; with
        ``with_gradient``, ``fun(theta) -> (float, gradient)``.
    theta_start, lower : ndarray of shape (k,)
        Starting point and lower bounds (``-inf`` for unbounded entries).
    with_gradient : bool
        Use the analytic gradient: scipy's L-BFGS-B instead of BOBYQA.
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

    last = [None, None]  # scipy evaluates the start again: answer from memory

    def counted(theta):
        nonlocal n_evals
        if with_gradient and last[0] is not None and np.array_equal(theta, last[0]):
            return last[1]
        n_evals += 1
        out = fun(theta)
        value = out[0] if with_gradient else out
        if not math.isfinite(value):  # as +inf: the optimizer steps back
            value = np.inf
        if value < best[0]:
            best[0], best[1] = value, theta.copy()
        if not with_gradient:
            return value
        last[0], last[1] = theta.copy(), (value, out[1])
        return last[1]

    if with_gradient:
        optimizer = "scipy L-BFGS-B, analytic gradient"
        scale = max(1.0, abs(counted(theta_start)[0]))
        result = scipy.optimize.minimize(
            counted,
            theta_start,
            jac=True,
            method="L-BFGS-B",
            bounds=scipy.optimize.Bounds(lower, np.inf),
            # L-BFGS-B's ftol is relative to the criterion; lme4's is absolute.
            options={"maxfun": max_evals, "ftol": ftol_abs / scale, "gtol": 1e-6, "maxcor": 20},
        )
        # status 1: the evaluation budget ran out (worded as for BOBYQA).
        message = _STATUS[nlopt.MAXEVAL_REACHED] if result.status == 1 else str(result.message)
        converged = bool(result.success)
    else:
        optimizer = "nlopt LN_BOBYQA"
        opt = nlopt.opt(nlopt.LN_BOBYQA, theta_start.size)
        opt.set_min_objective(lambda x, grad: counted(x))
        opt.set_lower_bounds(lower)
        opt.set_xtol_abs(xtol_abs)
        opt.set_ftol_abs(ftol_abs)
        opt.set_maxeval(max_evals)
        if initial_step is not None:
            opt.set_initial_step(
                np.broadcast_to(np.asarray(initial_step, float), theta_start.shape)
            )
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
        f_trial = f_trial[0] if with_gradient else f_trial
        if f_trial <= fmin:
            theta, fmin = trial, f_trial
    return OptimizerRecord(
        optimizer=optimizer,
        theta_start=theta_start,
        theta=theta,
        fmin=float(fmin),
        n_evals=n_evals,
        converged=bool(converged),
        message=message,
        on_boundary=np.isfinite(lower) & (theta == lower),
    )


def best_of_starts(record: OptimizerRecord, runs, budget):
    """Run the optimizer from other starting points too and keep the lowest optimum.

    Parameters
    ----------
    record : OptimizerRecord
        The run from the first start.
    runs : dict of str to callable
        Named runs, each ``run(theta, max_evals) -> OptimizerRecord`` (``theta`` the
        best θ so far), given what is left of the budget.
    budget : int
        Evaluations for all runs together.

    Returns
    -------
    OptimizerRecord
        The best run, with every run's evaluations counted and named in its message.
    """
    return _best_of(record, runs, budget, lambda best: True, "also started from")


def restart_on_boundary(record: OptimizerRecord, runs, budget):
    """Run the optimizer again from other points while the optimum lies on the boundary.

    Boundary optima are where the criterion has separate local minima on different
    faces (a zero variance here or there); lme4 restarts too (``restart_edge``).

    Parameters
    ----------
    record : OptimizerRecord
        The optimum so far.
    runs : dict of str to callable
        As for :func:`best_of_starts`, tried in order while the best θ is on the
        boundary.
    budget : int
        Evaluations for all runs together (the record's included).

    Returns
    -------
    OptimizerRecord
        The best run, with every run's evaluations counted and named in its message.
    """
    return _best_of(
        record, runs, budget, lambda best: best.on_boundary.any(),
        "boundary optimum, restarted from",
    )  # fmt: skip


def _best_of(record, runs, budget, keep_going, wording):
    best, n_evals, kept, tried = record, record.n_evals, "the first start", []
    for name, run_from in runs.items():
        if n_evals >= budget or not record.converged or not keep_going(best):
            break
        run = run_from(best.theta, budget - n_evals)
        n_evals += run.n_evals
        tried.append(name)
        if run.fmin < best.fmin:
            best, kept = run, name
    if not tried:
        return record
    return OptimizerRecord(
        **{
            **best.__dict__,
            "theta_start": record.theta_start,
            "n_evals": n_evals,
            "message": f"{record.message}; {wording} {' and from '.join(tried)}; "
            f"kept the run from {kept}" + ("" if best is record else f" ({best.message})"),
        }
    )


def continue_search(fun, record: OptimizerRecord, lower, *, reason, **options):
    """Search again from where ``record`` stopped; evaluations add up, the better end is kept.

    Parameters
    ----------
    fun : callable
        As for :func:`minimize_theta` (with ``with_gradient`` in ``options``, L-BFGS-B
        runs; otherwise BOBYQA, with a fresh trust region).
    record : OptimizerRecord
        The search so far.
    lower : ndarray
        Lower bounds.
    reason : str
        Why the search goes on, for the record's message.
    **options
        Passed to :func:`minimize_theta`.

    Returns
    -------
    OptimizerRecord
    """
    run = minimize_theta(fun, record.theta, lower, **options)
    best = run if run.fmin < record.fmin else record
    optimizer = record.optimizer
    if run.optimizer != optimizer:
        optimizer = f"{optimizer}, then {run.optimizer}"
    return OptimizerRecord(
        **{
            **best.__dict__,
            "optimizer": optimizer,
            "theta_start": record.theta_start,
            "n_evals": record.n_evals + run.n_evals,
            "message": f"{record.message}; {reason} ({run.message}; kept the "
            f"{'continuation' if best is run else 'first optimum'})",
        }
    )


def polish(fun, record: OptimizerRecord, check, lower) -> OptimizerRecord:
    """Take the check's Newton step when it lowers the criterion.

    BOBYQA stops on an absolute change of 1e-8 in the criterion, and near a flat
    optimum that can leave θ (hence β) off in the fourth digit. The check has already
    paid for the gradient and Hessian; one more evaluation turns them into a
    quadratically convergent correction.
    """
    if not check.newton_step.any():
        return record
    theta = np.maximum(record.theta + check.newton_step, lower)
    value = fun(theta)
    # A step whose predicted gain is below the criterion's rounding (100 machine
    # epsilons of its value) is taken unless it raises the criterion beyond that
    # rounding: whether it "lowers" the criterion is decided by rounding, which differs
    # between BLAS kernels and summation orders (a Dask fit's partitions), so the same
    # data would land on θ a Newton step apart.
    floor = 100 * np.finfo(float).eps * abs(record.fmin)
    negligible = check.predicted_decrease <= floor and value <= record.fmin + floor
    if not (value < record.fmin or negligible):
        return OptimizerRecord(**{**record.__dict__, "n_evals": record.n_evals + 1})
    return OptimizerRecord(
        **{
            **record.__dict__,
            "theta": theta,
            "fmin": float(value),
            "n_evals": record.n_evals + 1,
            "message": record.message + "; polished by a Newton step",
            "on_boundary": np.isfinite(lower) & (theta == lower),
        }
    )
