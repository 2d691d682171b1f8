"""Likelihood profiles of a linear mixed model, and lme4's profile intervals.

lme4's method (``profile.merMod``, Bates et al. 2015, section 5.1): the model is
refitted by maximum likelihood; for each parameter, in turn held at values stepping
away from its estimate, the deviance is minimized over the others, and

    ζ = sign(value − estimate) · sqrt(deviance(value) − deviance at the optimum).

The variance parameters are profiled on lme4's scale (standard deviations,
correlations and σ, the fixed effects profiled out); a fixed effect βⱼ held at ``b``
is the model for ``y − b xⱼ`` without column ``j``, whose cross-products are read from
the stored ones (``Xᵀy``, ``Zᵀy`` and ``yᵀy`` change, nothing else): no pass over the
rows. Steps follow lme4's rule (a step of ``cutoff / 8`` in ζ, extrapolated from the
last two points, until ``|ζ|`` passes ``sqrt(χ²₀.₉₉(number of parameters))`` or a bound),
and limits are read from lme4's inverse spline (:mod:`._splines`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import nlopt
import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from .._core import Criterion
from .._core.fit import fit_lmm, single_threaded_blas
from .._core.solution import fixed_effects_from_factor
from ..stats.plan import ReductionPlan
from ._parameters import ParameterMap, percent_labels
from ._splines import InverseSpline

__all__ = ["Profile", "profile", "zeta_at", "ml_refit"]

_LOG_2PI = math.log(2.0 * math.pi)
_MAX_POINTS = 100  # lme4's maxpts, on each side
_MAX_MULT = 10.0  # lme4's maxmult: a step at most ten times the last one
_ZETA_TOL = 1e-9  # lme4's devtol: a deviance difference below it is taken as zero


@dataclass(frozen=True)
class MLFit:
    """The maximum-likelihood fit a profile is centred on.

    Attributes
    ----------
    criterion : Criterion
        The ML deviance of θ (block order, unit-scale columns).
    theta : ndarray
        θ at the optimum in lme4's order and the data's units.
    sigma : float
    beta : ndarray
    deviance : float
    """

    criterion: Criterion
    theta: np.ndarray
    sigma: float
    beta: np.ndarray
    deviance: float


def ml_refit(result) -> MLFit:
    """The ML fit of a result: itself when fitted by ML, else refitted from its
    stored statistics (lme4's ``refitML``: no pass over the rows)."""
    fit = result.fit
    if result.method != "ML":
        with single_threaded_blas():
            fit = fit_lmm(Criterion(fit.criterion.stats, reml=False))
    theta = fit.record.theta[result.theta_order]
    sol = fit.solution
    return MLFit(fit.criterion, theta, sol.sigma, sol.beta, float(sol.ml_deviance))


def _minimize(fun, x0, lower, upper, step):
    """BOBYQA (lme4's default) from ``x0``: the minimum and where it is."""
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    if x0.size == 0:
        return float(fun(x0)), x0
    best = [np.inf, x0.copy()]

    def counted(x, grad):
        value = fun(x)
        value = value if math.isfinite(value) else np.inf
        if value < best[0]:
            best[0], best[1] = value, x.copy()
        return value

    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(counted)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_xtol_abs(1e-10)
    opt.set_ftol_abs(1e-10)
    opt.set_maxeval(10_000)
    room = np.minimum(upper - x0, x0 - lower)
    opt.set_initial_step(np.maximum(np.minimum(step, 0.5 * np.where(room > 0, room, step)), 1e-8))
    try:
        opt.optimize(x0.copy())
    except nlopt.RoundoffLimited:
        pass
    return best[0], best[1]


class _VarianceDeviance:
    """The ML deviance with β profiled out, on lme4's scale of the variance
    parameters: ``log|L|² − Σ log w + r²(θ)/σ² + n log(2πσ²)`` with θ from the
    standard deviations, correlations and σ."""

    def __init__(self, result, ml: MLFit, params: ParameterMap):
        self.result, self.params, self.criterion = result, params, ml.criterion
        cp = ml.criterion.cp
        self.n, self.slw = cp.n_obs, cp.sum_log_weights

    def __call__(self, sdcor) -> float:
        theta = self.params.to_theta(sdcor)
        if theta is None:
            return np.inf
        try:
            factor = self.criterion.factor(self.result.internal_theta(theta))
        except np.linalg.LinAlgError:
            return np.inf
        sigma2 = sdcor[-1] ** 2
        return (
            factor.logdet_L
            - self.slw
            + factor.pwrss / sigma2
            + self.n * (_LOG_2PI + math.log(sigma2))
        )


def _fixed_criterion(ml: MLFit, j, value) -> Criterion:
    """The ML criterion of the model with βⱼ held at ``value``: the response
    ``y − value·xⱼ`` on the other columns, from the stored cross-products."""
    stats = ml.criterion.stats
    p = stats.n_fixed
    keep = np.array([c for c in range(p) if c != j] + [p])
    offset = stats.plan.offset
    shift = value - offset[j]  # the stored response is y − X·offset

    def moved(block, axis):
        # The response column less shift·xⱼ, then the columns kept.
        block = np.moveaxis(block, axis, -1).copy()
        block[..., p] -= shift * block[..., j]
        return np.moveaxis(block[..., keep], -1, axis)

    XY = moved(stats.XYtXY, 1)
    XY = moved(XY, 0)  # the response row too: (y − s xⱼ)ᵀ(y − s xⱼ)
    new = replace(
        stats,
        plan=ReductionPlan(stats.plan.order, stats.plan.scales, offset[keep[:-1]]),
        Z1tXY=moved(stats.Z1tXY, 1),
        XYtXY=XY,
        Z2tXY=None if stats.Z2tXY is None else moved(stats.Z2tXY, 1),
    )
    return Criterion(new, reml=False)


@dataclass(frozen=True)
class Profile:
    """The likelihood profile of every parameter of a fit (lme4's ``profile``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per profile point: ``.zeta``, every parameter's value at that point
        and ``.par``, the parameter profiled (lme4's ``as.data.frame(profile(fit))``
        in the wide layout).
    estimates : pandas.Series
        The ML estimates the profile is centred on.
    lower, upper : pandas.Series
        Bounds of the variance parameters (a limit beyond the profile is the bound).
    """

    table: pd.DataFrame
    estimates: pd.Series
    lower: pd.Series
    upper: pd.Series

    @property
    def parameters(self) -> list:
        """The parameters profiled, in lme4's order."""
        return list(dict.fromkeys(self.table[".par"]))

    def zeta(self) -> pd.DataFrame:
        """The tidy profile: columns ``parameter``, ``value`` and ``zeta`` (lme4's
        ``as.data.frame(profile(fit))``: ``.par``, ``.focal``, ``.zeta``)."""
        rows = []
        for name in self.parameters:
            part = self.table[self.table[".par"] == name]
            columns = {"parameter": name, "value": part[name], "zeta": part[".zeta"]}
            rows.append(pd.DataFrame(columns))
        return pd.concat(rows, ignore_index=True)

    def confint(self, level=0.95) -> pd.DataFrame:
        """Profile intervals: the parameter where ζ is ``±z`` of ``level``
        (lme4's ``confint(profile(fit), level)``)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1; got {level!r}.")
        z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
        out = []
        for name in self.parameters:
            part = self.table[self.table[".par"] == name].sort_values(name)
            try:
                limits = InverseSpline(part[name].to_numpy(), part[".zeta"].to_numpy())(z)
            except ValueError:  # not monotone: read it piecewise linearly, as lme4 falls back
                limits = np.interp(z, part[".zeta"], part[name], left=np.nan, right=np.nan)
            bounds = (self.lower.get(name, np.nan), self.upper.get(name, np.nan))
            out.append([b if np.isnan(v) else v for v, b in zip(limits, bounds)])
        return pd.DataFrame(out, index=pd.Index(self.parameters), columns=percent_labels(level))


def profile(result, which=None) -> Profile:
    """The likelihood profile of a fit by lme4's method.

    Parameters
    ----------
    result : MixedLMResult
    which : sequence of str, optional
        Parameters to profile (lme4's names, e.g. ``".sig01"``, ``"Days"``); all by
        default.

    Returns
    -------
    Profile
    """
    problem = _Problem(result)
    names = list(problem.params.names)
    which = names if which is None else list(which)
    problem.check_names(which, "which")
    rows = []
    with single_threaded_blas():
        for name in which:
            rows += problem.profile_rows(names.index(name))
    table = pd.DataFrame(rows, columns=[".zeta", *names, ".par"])
    var_names = names[: problem.params.n_var]
    return Profile(
        table=table,
        estimates=pd.Series(problem.estimates, index=names),
        lower=pd.Series(problem.params.lower, index=var_names),
        upper=pd.Series(problem.params.upper, index=var_names),
    )


def zeta_at(result, parameter, values) -> np.ndarray:
    """ζ of one parameter at given values, each optimized from the ML estimates.

    Parameters
    ----------
    result : MixedLMResult
    parameter : str
        lme4's name of the parameter (``".sig01"``, ``".sigma"``, a fixed effect).
    values : array-like

    Returns
    -------
    ndarray
    """
    problem = _Problem(result)
    problem.check_names([parameter], "parameter")
    zeta = problem.zeta_function(list(problem.params.names).index(parameter))
    with single_threaded_blas():
        return np.array([zeta(float(v), None)[0] for v in np.atleast_1d(values)])


class _Problem:
    """What every profile of one fit shares: the ML fit, the parameters, the cutoff."""

    def __init__(self, result):
        self.result = result
        self.params = params = ParameterMap.of(result)
        self.ml = ml = ml_refit(result)
        self.estimates = np.concatenate([params.to_sdcor(ml.theta, ml.sigma), ml.beta])
        # lme4 walks each profile out to the 99% limit of all parameters jointly.
        self.cutoff = math.sqrt(chi2.ppf(0.99, len(params.names)))
        self.delta = self.cutoff / 8.0
        self.var_dev = _VarianceDeviance(result, ml, params)
        self.theta0 = result.internal_theta(ml.theta)
        self.sol0 = ml.criterion.solve(self.theta0)

    def check_names(self, names, argument):
        known = list(self.params.names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{argument}: no parameter {unknown}; the parameters are {known}.")

    def zeta_function(self, w):
        """``zeta_at(value, start) -> (ζ, where)`` for parameter ``w``."""
        if w < self.params.n_var:
            return self._variance_zeta(w)
        return self._fixed_zeta(w - self.params.n_var)

    def _variance_zeta(self, w):
        params, start = self.params, self.estimates[: self.params.n_var]
        others = [k for k in range(params.n_var) if k != w]
        lo, hi = params.lower[others], params.upper[others]
        # BOBYQA's first steps: 0.05 on a correlation, 5% of a standard deviation.
        step = np.where(hi == 1.0, 0.05, 0.05 * np.abs(start[others]) + 1e-3)
        est = self.estimates[w]

        def zeta(value, previous):
            full = start.copy()
            full[w] = value

            def fun(x):
                full[others] = x
                return self.var_dev(full)

            x0 = start[others] if previous is None else previous
            dev, x = _minimize(fun, x0, lo, hi, step)
            return _zeta(dev, self.ml.deviance, value, est), x

        return zeta

    def _fixed_zeta(self, j):
        est = self.estimates[self.params.n_var + j]
        lower = self.ml.criterion.lower

        def zeta(value, previous):
            crit = _fixed_criterion(self.ml, j, value)
            x0 = self.theta0 if previous is None else previous[0]
            dev, theta = _minimize(crit, x0, lower, np.full(lower.shape, np.inf), 0.05)
            return _zeta(dev, self.ml.deviance, value, est), (theta, crit)

        return zeta

    def profile_rows(self, w):
        """The profile of parameter ``w``: rows of ``.zeta``, every parameter, ``.par``."""
        params, est = self.params, self.estimates[w]
        zeta = self.zeta_function(w)
        if w < params.n_var:
            lower, upper = params.lower[w], params.upper[w]
            value = 1e-3 if est == 0 else est * 1.01  # lme4's first step
            center_where = self.estimates[[k for k in range(params.n_var) if k != w]]
        else:
            lower, upper = -np.inf, np.inf
            se = np.sqrt(self.sol0.beta_cov[w - params.n_var, w - params.n_var])
            value = est + self.delta * se
            center_where = (self.theta0, None)
        first, center = (value, *zeta(value, None)), (est, 0.0, center_where)
        bounds = (lower, upper, self.cutoff, self.delta)
        points = [center, first] + _walk(zeta, [center, first], *bounds)
        if est > lower:
            points += _walk(zeta, [first, center], *bounds)
        rows = []
        for v, z, where in sorted(points, key=lambda t: t[0]):
            values = self.estimates if where is center_where else self._values_at(w, v, where)
            rows.append([z, *values, params.names[w]])
        return rows

    def _values_at(self, w, value, where):
        """Every parameter at a profile point of parameter ``w``."""
        params = self.params
        if w < params.n_var:
            full = self.estimates[: params.n_var].copy()
            full[[k for k in range(params.n_var) if k != w]] = where
            full[w] = value
            return [*full, *_beta_at(self.var_dev, full, params)]
        j = w - params.n_var
        theta, crit = where
        sol = crit.solve(theta)
        result = self.result
        lme4_theta = (theta / result.theta_scale)[result.theta_order]
        # lme4 reports the ML σ there: sqrt(r² / n).
        sdcor = params.to_sdcor(lme4_theta, math.sqrt(sol.pwrss / crit.cp.n_obs))
        beta = np.insert(sol.beta + crit.stats.plan.offset, j, value)
        return [*sdcor, *beta]


def _walk(zeta_at, seed, lower, upper, cutoff, delta):
    """lme4's steps on from the two points ``seed`` (value, ζ, where), in their
    direction, until ``|ζ|`` passes the cutoff or a bound is reached; the new points."""
    points = list(seed)
    while len(points) < _MAX_POINTS:
        (v0, z0, _), (v1, z1, where) = points[-2], points[-1]
        if not (lower < v1 < upper) or not abs(z1) <= cutoff:
            break
        num, denom = v1 - v0, z1 - z0
        step = delta * num / denom if denom != 0 and np.isfinite(denom) else 1e-6
        if step < 0:
            step = 1e-6  # ζ fell: a minimal step on (lme4 warns here)
        elif len(points) > 2 and abs(step) > _MAX_MULT * abs(num):
            step = _MAX_MULT * abs(num)
        value = min(upper, max(lower, v1 + math.copysign(step, num)))
        points.append((value, *zeta_at(value, where)))
    return points[2:]


def _zeta(deviance, base, value, estimate):
    """lme4's ζ: the signed root of the deviance difference (a difference below
    lme4's ``devtol``, rounding at the optimum, counts as ``devtol``)."""
    diff = deviance - base
    if not diff > _ZETA_TOL:
        diff = _ZETA_TOL
    return math.copysign(math.sqrt(diff), value - estimate)


def _beta_at(var_dev, sdcor, params):
    """β at a profile point (the fixed effects profiled out at its θ)."""
    crit = var_dev.criterion
    factor = crit.factor(var_dev.result.internal_theta(params.to_theta(sdcor)))
    beta = fixed_effects_from_factor(factor, crit.cp.n_obs, crit.cp.n_fixed, False)[0]
    return beta + crit.stats.plan.offset
