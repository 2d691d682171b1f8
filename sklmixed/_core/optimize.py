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
    "ConvergenceCheck",
    "minimize_theta",
    "restart_on_boundary",
    "continue_search",
    "check_optimum",
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


@dataclass(frozen=True)
class ConvergenceCheck:
    """Finite-difference check of the optimum, on the scale of θ.

    lme4's ``checkConv`` compares a scaled gradient with a fixed tolerance, which
    misfires at boundary optima and on large data sets. Here the question asked is
    the one that matters: how much lower could the criterion go according to a local
    quadratic model, the boundary respected? The optimum is in doubt when that
    predicted improvement exceeds ``tol`` (criterion units, i.e. twice the
    log-likelihood) or when the curvature is clearly negative (a saddle).

    Attributes
    ----------
    gradient : ndarray of shape (k,)
        Central-difference gradient at θ.
    hessian : ndarray of shape (k, k)
        Central-difference Hessian at θ.
    predicted_decrease : float
        Decrease of the criterion the local model predicts for a feasible Newton step.
    min_curvature : float
        Smallest eigenvalue of the Hessian over the directions the step may take.
    newton_step : ndarray of shape (k,)
        The feasible Newton step of the local model (zeros when there is none).
    n_evals : int
        Criterion evaluations the check cost.
    ok : bool
        False when the optimum is in doubt.
    message : str
        Why, when not ok.
    """

    gradient: np.ndarray
    hessian: np.ndarray
    predicted_decrease: float
    min_curvature: float
    newton_step: np.ndarray
    n_evals: int
    ok: bool
    message: str


# Curvature below this fraction of the largest is taken as flat (no Newton step).
_FLAT = 1e-10


def check_optimum(
    fun, theta, fmin, lower, *, gradient=None, fun_batch=None, step=1e-4, tol=1e-3
) -> ConvergenceCheck:
    """Check a reported optimum by central differences (the deviance is smooth in θ,
    also across the bound: it depends on θ through ``T Tᵀ``).

    Parameters
    ----------
    fun : callable
        The criterion.
    theta : ndarray of shape (k,)
        The optimum found.
    fmin : float
        ``fun(theta)``.
    lower : ndarray of shape (k,)
        Lower bounds; entries on their bound may only move up.
    gradient : callable, optional
        The analytic gradient; the Hessian is then its central difference
        (``2k + 1`` gradients instead of ``k² + k`` criterion values).
    fun_batch : callable, optional
        ``fun_batch(points)``: ``fun`` at each row of ``points`` in one call.
    step : float
        Relative finite-difference step.
    tol : float
        Largest acceptable predicted decrease of the criterion.

    Returns
    -------
    ConvergenceCheck
    """
    k = theta.size
    if not np.isfinite(fmin):
        return ConvergenceCheck(
            np.full(k, np.nan),
            np.full((k, k), np.nan),
            np.nan,
            np.nan,
            np.zeros(k),
            0,
            False,
            "the criterion is not finite at the optimum",
        )
    h = step * np.maximum(1.0, np.abs(theta))
    if gradient is not None:
        g, H, n_evals = _gradient_and_hessian(gradient, theta, h)
    else:
        g, H, n_evals = _central_differences(fun, theta, fmin, h, fun_batch)
    if not (np.isfinite(g).all() and np.isfinite(H).all()):
        return ConvergenceCheck(
            g,
            H,
            np.nan,
            np.nan,
            np.zeros(k),
            n_evals,
            False,
            "the criterion is not finite next to the optimum",
        )
    return _judge(g, H, h, theta, lower, n_evals, tol)


def _gradient_and_hessian(gradient, theta, h):
    """The gradient at θ and the central difference of the gradient around it."""
    k = theta.size
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        H[:, i] = (gradient(theta + e) - gradient(theta - e)) / (2.0 * h[i])
    return gradient(theta), 0.5 * (H + H.T), 2 * k + 1


def _central_differences(fun, theta, fmin, h, fun_batch=None):
    """Gradient and Hessian of ``fun`` at θ from ``k² + k`` values around it.

    Off the diagonal, ``f(θ + hᵢ + hⱼ) + f(θ − hᵢ − hⱼ)`` differs from ``2 f(θ)`` by
    ``hᵢ² Hᵢᵢ + 2 hᵢhⱼ Hᵢⱼ + hⱼ² Hⱼⱼ`` up to fourth order, and the axis points already
    give the diagonal terms: two values per pair instead of four, as accurate.
    ``fun_batch(points)``, when given, evaluates all the points in one call.
    """
    k = theta.size
    steps = np.diag(h)
    pairs = [(i, j) for i in range(k) for j in range(i)]
    offsets = np.concatenate(
        [steps, -steps] + [np.array([steps[i] + steps[j], -steps[i] - steps[j]]) for i, j in pairs]
    ).reshape(-1, k)
    points = theta + offsets
    if fun_batch is not None and k > 1:
        values = np.asarray(fun_batch(points), dtype=float)
    else:
        values = np.array([fun(point) for point in points])
    f_plus, f_minus = values[:k], values[k : 2 * k]
    H = np.diag((f_plus - 2.0 * fmin + f_minus) / h**2)
    for n, (i, j) in enumerate(pairs):
        f_both = values[2 * k + 2 * n] + values[2 * k + 2 * n + 1]
        pure = H[i, i] * h[i] ** 2 + H[j, j] * h[j] ** 2
        H[i, j] = H[j, i] = (f_both - 2.0 * fmin - pure) / (2.0 * h[i] * h[j])
    return (f_plus - f_minus) / (2.0 * h), H, len(points)


def _judge(g, H, h, theta, lower, n_evals, tol) -> ConvergenceCheck:
    """How much lower a local quadratic model, bounds respected, puts the criterion."""
    k = theta.size
    # Newton step on the free set; an entry on its bound joins it only when moving up
    # looks downhill (negative slope or negative curvature).
    at_bound = np.isfinite(lower) & (theta <= lower)
    free = ~at_bound | (g < 0) | (np.diag(H) < 0)
    step_dir = np.zeros(k)
    extremes_of = None  # (free set, extreme eigenvalues of H on it), reused below
    for _ in range(k + 1):
        idx = np.flatnonzero(free)
        if idx.size == 0:
            break
        Hf = H[idx][:, idx]
        lo, hi = _extreme_eigenvalues(Hf)
        extremes_of = (idx, lo, hi)
        if lo <= _FLAT * max(hi, 0.0):
            break
        step_dir[:] = 0.0
        try:
            step_dir[idx] = -np.linalg.solve(Hf, g[idx])
        except np.linalg.LinAlgError:  # singular up to rounding: treat as flat
            step_dir[:] = 0.0
            break
        wrong_way = at_bound & free & (step_dir < 0)
        if not wrong_way.any():
            break
        free &= ~wrong_way
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return ConvergenceCheck(g, H, 0.0, np.inf, np.zeros(k), n_evals, True, "")
    if extremes_of is not None and np.array_equal(extremes_of[0], idx):
        lo, hi = extremes_of[1:]
    else:
        lo, hi = _extreme_eigenvalues(H[idx][:, idx])
    scale = max(abs(lo), abs(hi), 1.0)
    if lo < -1e-3 * scale:
        return ConvergenceCheck(
            g,
            H,
            np.inf,
            lo,
            np.zeros(k),
            n_evals,
            False,
            "the Hessian of the criterion has a negative eigenvalue: a saddle point, not a minimum",
        )
    if lo <= _FLAT * hi or not step_dir.any():
        # Flat but not negative: no Newton step; judge by the gradient along free directions.
        step_dir[:] = 0.0
        decrease = float(np.abs(g[idx]).max() * h.max())
    else:
        decrease = float(-(g @ step_dir + 0.5 * step_dir @ H @ step_dir))
    ok = decrease <= tol
    message = (
        ""
        if ok
        else (
            f"a quadratic model of the criterion at the optimum predicts it can still fall by "
            f"{decrease:.2g} (gradient {np.array2string(g, precision=3)})"
        )
    )
    return ConvergenceCheck(g, H, decrease, lo, step_dir, n_evals, ok, message)


def _extreme_eigenvalues(H):
    """Smallest and largest eigenvalue of a small symmetric matrix, as floats."""
    if H.shape[0] == 1:
        return float(H[0, 0]), float(H[0, 0])
    eig = np.linalg.eigvalsh(H)  # ascending
    return float(eig[0]), float(eig[-1])


def restart_on_boundary(fun, record: OptimizerRecord, restarts, lower, **options):
    """Run BOBYQA again from other points when the optimum lies on the boundary.

    Boundary optima are where the criterion has separate local minima on different
    faces (a zero variance here or there); lme4 restarts too (``restart_edge``).

    Parameters
    ----------
    fun : callable
        The criterion.
    record : OptimizerRecord
        The first run.
    restarts : dict of str to callable
        Named starting points, each a function of the best θ found so far, tried in
        order while that θ is on the boundary.
    lower : ndarray
        Lower bounds.
    **options
        Passed to :func:`minimize_theta`.

    Returns
    -------
    OptimizerRecord
        The best run, with every run's evaluations counted and named in its message.
    """
    if not record.on_boundary.any():
        return record
    best, n_evals, kept, tried = record, record.n_evals, "the first start", []
    for name, start in restarts.items():
        if not best.on_boundary.any():
            break
        run = minimize_theta(fun, start(best.theta), lower, **options)
        n_evals += run.n_evals
        tried.append(name)
        if run.fmin < best.fmin:
            best, kept = run, name
    return OptimizerRecord(
        **{
            **best.__dict__,
            "theta_start": record.theta_start,
            "n_evals": n_evals,
            "message": f"{best.message}; boundary optimum, restarted from "
            f"{' and from '.join(tried)}; kept the run from {kept}",
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


def polish(fun, record: OptimizerRecord, check: ConvergenceCheck, lower) -> OptimizerRecord:
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
    if not value < record.fmin:
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
