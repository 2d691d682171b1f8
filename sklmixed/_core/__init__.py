"""Numerical core: numpy/scipy arrays in, a fitted linear mixed model out.

No estimator, no pandas. :func:`fit_lmm` chains the small steps: reduce the data to
cross-products, minimize the profiled criterion over θ (with its analytic gradient
for one grouping factor), restart at boundary optima, check and polish the optimum,
solve there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from types import SimpleNamespace

import numpy as np

from .blocks import BlockedFactor, _schur_cholesky, cross_products
from .deviance import (
    Solution,
    deviance_from_factor,
    fixed_effects_from_factor,
    objective,
    solve,
)
from .gradient import objective_and_gradient
from .optimize import (
    ConvergenceCheck,
    OptimizerRecord,
    check_optimum,
    continue_search,
    minimize_theta,
    polish,
    restart_on_boundary,
)
from .schur_map import compact_objective, compact_objective_batch, schur_complement_map
from .terms import RandomTerm, moment_theta_start, slopes_start

__all__ = [
    "RandomTerm",
    "CoreFit",
    "fit_lmm",
    "least_squares_offset",
    "lme4_term_order",
    "rounding_noise",
]


@dataclass(frozen=True)
class CoreFit:
    """A fitted model in the terms' original order.

    Attributes
    ----------
    record : OptimizerRecord
        θ here is in lme4's order: terms sorted by decreasing number of levels.
    solution : Solution
        ``modes`` and ``cond_cov`` in the caller's term order; ``beta`` for the
        original response.
    term_order : tuple of int
        Positions of the caller's terms in lme4's order.
    theta_sizes : tuple of int
        Number of θ entries of each term, in the caller's order.
    theta_lower : ndarray
        Lower bounds of θ, in lme4's order.
    n_obs : int
        Number of observations.
    check : ConvergenceCheck or None
        Finite-difference check of the optimum, when requested (on the scale of
        unit-RMS random-effect columns, where θ is optimized).
    theta_scaled : ndarray
        The optimum θ for unit-RMS columns, lme4's order; scale-free, so it is what
        the singularity threshold is applied to.
    """

    record: OptimizerRecord
    solution: Solution
    term_order: tuple
    theta_sizes: tuple
    theta_lower: np.ndarray
    n_obs: int
    check: ConvergenceCheck | None = None
    theta_scaled: np.ndarray | None = None


# BOBYQA's initial trust-region radius: the moment start is usually within this of
# the optimum (NLopt's default radius wastes evaluations on wide first steps), the
# slopes start (per-level least squares) within a third of it.
_INITIAL_STEP = 0.1
_SLOPES_STEP = 0.03

# lme4's tolerances (absolute, on θ and on the criterion). BOBYQA spends about a third
# of its evaluations refining its quadratic model from 1e-6 to these; the check's
# gradient and Hessian, paid for anyway, do it in one Newton step. So the default
# search stops at 1e-6 and the Newton step finishes (θ then lies within about 1e-7
# of the optimum on the lme4 references, against 1e-7 to 1e-5 for BOBYQA alone at
# 1e-8); where the step fails, BOBYQA carries on to these.
_LME4_TOL = 1e-8


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _single_threaded_blas():
    """BLAS limited to one thread while θ is optimized.

    Each evaluation works on small blocks (q × q per level, a dense block of a few
    thousand at most), where threads buy little; on a busy machine the spinning
    threads of a multi-threaded BLAS slow a dense Cholesky down tenfold.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def lme4_term_order(terms) -> tuple:
    """lme4's order of random-effect terms: decreasing number of levels, stable."""
    return tuple(sorted(range(len(terms)), key=lambda i: -terms[i].n_levels))


def least_squares_offset(X, y, XtX=None):
    """Coefficients of a least-squares fit of ``y`` on ``X``, refined once.

    Removing this fit before forming cross-products keeps ``yᵀy`` from swamping the
    penalized residual sum of squares (a response around 1e6 would otherwise lose
    every significant digit of it). Any offset is valid: it only shifts β.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    XtX : ndarray of shape (p, p), optional
        ``X.T @ X``, when the caller has it.

    Returns
    -------
    coef : ndarray of shape (p,)
    resid : ndarray of shape (n,)
        ``y - X @ coef``.
    """
    if X.shape[1] == 0:
        return np.zeros(0), y
    if XtX is None:
        XtX = X.T @ X
    gamma = np.linalg.lstsq(XtX, X.T @ y, rcond=None)[0]
    resid = y - X @ gamma
    correction = np.linalg.lstsq(XtX, X.T @ resid, rcond=None)[0]
    return gamma + correction, resid - X @ correction


def fit_lmm(
    X,
    y,
    terms,
    *,
    weights=None,
    reml=True,
    xtol_abs=1e-6,
    ftol_abs=1e-6,
    max_evals=100_000,
    check_convergence=True,
    least_squares=None,
) -> CoreFit:
    """Fit a linear mixed model by minimizing lme4's profiled criterion.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix of full column rank.
    y : ndarray of shape (n,)
        Response.
    terms : sequence of RandomTerm
        One per grouping factor, in any order.
    weights : ndarray of shape (n,), optional
        Prior weights: observation ``i`` has residual variance ``σ²/wᵢ``.
    reml : bool
        REML criterion (True) or ML deviance (False).
    xtol_abs, ftol_abs, max_evals
        Optimizer settings, see :func:`minimize_theta`.
    check_convergence : bool
        Check the optimum by finite differences (:func:`check_optimum`).
    least_squares : tuple of ndarray, optional
        ``least_squares_offset(X, y)``, when the caller has computed it already.

    Returns
    -------
    CoreFit
    """
    order = lme4_term_order(terms)
    # θ is optimized for unit-scale columns and mapped back at the end.
    ordered = [terms[i].unit_scaled() for i in order]
    offset, resid = least_squares if least_squares is not None else least_squares_offset(X, y)
    sqrt_weights = None if weights is None else np.sqrt(weights)
    if not terms:
        return _fit_fixed_only(X, resid, offset, sqrt_weights, reml)
    cp = cross_products(X, resid, ordered, sqrt_weights)
    lower = np.concatenate([t.theta_lower() for t in ordered])
    criterion, criterion_batch = _criterion(cp, ordered, reml, rounding_noise(resid, y))
    with _single_threaded_blas():
        record, check = _optimize_theta(
            criterion,
            criterion_batch,
            cp,
            ordered,
            reml,
            *_theta_start(ordered, cp, resid),
            lower,
            dict(xtol_abs=xtol_abs, ftol_abs=ftol_abs, max_evals=max_evals),
            check_convergence,
        )
        sol = solve(record.theta, cp, ordered, reml)
    theta_scaled = record.theta
    record = OptimizerRecord(**{**record.__dict__, "theta": _theta_unscaled(theta_scaled, ordered)})
    sol = _in_callers_terms(sol, ordered, np.argsort(order), offset)
    return CoreFit(
        record=record,
        solution=sol,
        term_order=order,
        theta_sizes=tuple(t.n_theta for t in terms),
        theta_lower=lower,
        n_obs=X.shape[0],
        check=check,
        theta_scaled=theta_scaled,
    )


def _optimize_theta(
    criterion, criterion_batch, cp, ordered, reml, start, step, lower, options, check_convergence
):
    """Minimize the criterion over θ from ``start`` with initial radii ``step``,
    restart at boundary optima, check and polish (``criterion_batch``, or None: the
    criterion at several θ in one call, for the check).

    Returns the optimizer record and the check at the optimum (None when not asked).
    """
    # One grouping factor has an analytic gradient. BOBYQA still drives the search:
    # L-BFGS-B needs a third of its evaluations on well-posed fits, but each gradient
    # costs three to four evaluations and near a zero variance it crawled (over 800
    # evaluations on a 1M-row fit). The gradient continues a search the check finds
    # in doubt, and gives the check its Hessian where 2k + 1 gradients cost less than
    # 2k² values (k ≥ 4 θ parameters).
    gradient = check_gradient = None
    if len(ordered) == 1:
        gradient = partial(_gradient_only, cp=cp, terms=ordered, reml=reml)
        check_gradient = gradient if lower.size >= 4 else None
    checked = partial(
        _check_record, criterion, lower, gradient=check_gradient, fun_batch=criterion_batch
    )
    record = minimize_theta(criterion, start, lower, initial_step=step, **options)
    # A boundary optimum may be a local one: the moment start's small first steps can
    # settle on the wrong face of the bound. BOBYQA restarts from lme4's start with
    # NLopt's default radius, then from the sign-flipped optimum.
    identity = np.concatenate([t.theta_start() for t in ordered])
    record = restart_on_boundary(
        criterion,
        record,
        {
            "lme4's start": lambda theta: identity,
            "the optimum with its zero columns' signs flipped": partial(
                _flip_zero_columns, terms=ordered
            ),
        },
        lower,
        **options,
    )
    if not check_convergence:
        return record, None
    check = checked(record)
    polished = polish(criterion, record, check, lower)
    if polished.fmin == record.fmin and check.predicted_decrease > _LME4_TOL:
        # The Newton step did not deliver what the search left (a coarse search, or
        # BOBYQA stalled in a flat valley next to a zero variance): BOBYQA carries on
        # from there with a fresh trust region, at lme4's tolerances or finer.
        finish = {
            **options,
            "xtol_abs": min(options["xtol_abs"], _LME4_TOL),
            "ftol_abs": min(options["ftol_abs"], _LME4_TOL),
        }
        record = continue_search(
            criterion,
            polished,
            lower,
            reason=f"searched on to tolerance {finish['ftol_abs']:g}",
            initial_step=_INITIAL_STEP,
            **finish,
        )
        check = checked(record)
        polished = polish(criterion, record, check, lower)
    record = polished
    if not check.ok and gradient is not None and record.converged:
        # BOBYQA stopped where the criterion still falls (near a zero variance its
        # model of a nearly flat valley can stall): L-BFGS-B, whose line searches
        # follow the gradient, carries on from there.
        record = continue_search(
            partial(objective_and_gradient, cp=cp, terms=ordered, reml=reml),
            record,
            lower,
            reason="optimum in doubt, continued with the gradient",
            with_gradient=True,
            ftol_abs=options["ftol_abs"],
            max_evals=max(options["max_evals"] - record.n_evals, 1),
        )
        check = checked(record)
        record = polish(criterion, record, check, lower)
    return record, check


def _criterion(cp, ordered, reml, noise_only=False):
    """The criterion as a function of θ, and of several θ at once (or None).

    Through the Schur-complement map where one grouping factor has one or two
    columns (40-50% of the cost), else the blocked factor. Where the fixed effects fit the
    response exactly (``noise_only``), r² is made of rounding errors, which the two
    paths round differently: the blocked factor, whose Schur complement subtracts a
    Gram product, is used there as it is everywhere else.
    """
    smap = schur_complement_map(cp, ordered[0]) if len(ordered) == 1 and not noise_only else None
    if smap is None:
        return partial(objective, cp=cp, terms=ordered, reml=reml), None
    kwargs = {"smap": smap, "term": ordered[0], "cp": cp, "reml": reml}
    return partial(compact_objective, **kwargs), partial(compact_objective_batch, **kwargs)


def _check_record(criterion, lower, record, **options):
    """:func:`check_optimum` at the optimum of ``record``."""
    return check_optimum(criterion, record.theta, record.fmin, lower, **options)


def rounding_noise(resid, y) -> bool:
    """Whether the least-squares residuals ``resid`` of ``y`` are rounding errors of ``y``
    (an exact fit: root mean square within 1e3 machine epsilons of ``max |y|``)."""
    scale = float(np.abs(y).max()) if y.size else 0.0
    return float(np.sqrt(np.mean(resid**2))) <= 1e3 * np.finfo(float).eps * scale


def _theta_start(ordered, cp, resid):
    """Moment estimates of θ, with the first term's correlated slopes from its levels,
    and BOBYQA's initial radius for each entry."""
    first = ordered[0]
    slopes = slopes_start(first, cp.A11, cp.Z1tXY[:, :, -1], float(cp.XYtXY[-1, -1]), cp.n_obs)
    if slopes is None:
        start = moment_theta_start(ordered, resid)
        return start, np.full(start.size, _INITIAL_STEP)
    rest = moment_theta_start(ordered[1:], resid) if len(ordered) > 1 else np.zeros(0)
    step = np.concatenate([np.full(slopes.size, _SLOPES_STEP), np.full(rest.size, _INITIAL_STEP)])
    return np.concatenate([slopes, rest]), step


def _theta_unscaled(theta_scaled, ordered):
    """θ of the original columns from θ of the unit-RMS ones, term by term."""
    return np.concatenate(
        [t.theta_unscaled(th) for t, th in zip(ordered, _split(theta_scaled, ordered))]
    )


def _in_callers_terms(sol, ordered, unsort, offset):
    """The solution with modes in the caller's term order and units, β un-offset."""
    modes, cond_cov = [], []
    for i in unsort:
        b, c = ordered[i].modes_unscaled(
            sol.modes[i], None if sol.cond_cov is None else sol.cond_cov[i]
        )
        modes.append(b)
        cond_cov.append(c)
    return Solution(
        **{
            **sol.__dict__,
            "beta": sol.beta + offset,
            "modes": modes,
            "cond_cov": None if sol.cond_cov is None else cond_cov,
        }
    )


def _gradient_only(theta, cp, terms, reml):
    return objective_and_gradient(theta, cp, terms, reml)[1]


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


def _split(theta, terms):
    """θ of each term (views of ``theta``)."""
    parts, start = [], 0
    for term in terms:
        parts.append(theta[start : start + term.n_theta])
        start += term.n_theta
    return parts


def _fit_fixed_only(X, resid, offset, sqrt_weights, reml) -> CoreFit:
    """No grouping factor: weighted least squares, reported like a mixed model."""
    XY = np.column_stack([X, resid])
    sum_log_weights = 0.0
    if sqrt_weights is not None:
        XY *= sqrt_weights[:, None]
        sum_log_weights = float(2.0 * np.log(sqrt_weights).sum())
    n, p = X.shape
    L33 = _schur_cholesky(XY.T @ XY)
    factor = BlockedFactor(
        (), np.zeros((1, 1, 0)), np.zeros((1, 0, p + 1)), None, None, None, L33, 0.0
    )
    cp = SimpleNamespace(n_obs=n, n_fixed=p, sum_log_weights=sum_log_weights)
    crit = deviance_from_factor(factor, cp, reml)
    ml_dev = deviance_from_factor(factor, cp, False)
    beta, beta_cov, sigma2 = fixed_effects_from_factor(factor, n, p, reml)
    record = OptimizerRecord(
        optimizer="none (no random effects)",
        theta_start=np.zeros(0),
        theta=np.zeros(0),
        fmin=crit,
        n_evals=1,  # the criterion, evaluated once at the closed-form optimum
        converged=True,
        message="no random effects: closed form",
        on_boundary=np.zeros(0, dtype=bool),
    )
    sol = Solution(
        beta=beta + offset,
        beta_cov=beta_cov,
        sigma=float(np.sqrt(sigma2)),
        modes=[],
        cond_cov=[],
        deviance=crit,
        ml_deviance=ml_dev,
        pwrss=factor.pwrss,
        logdet_L=0.0,
        logdet_RX=factor.logdet_RX,
    )
    return CoreFit(record, sol, (), (), np.zeros(0), n, None, np.zeros(0))
