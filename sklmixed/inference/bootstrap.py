"""The parametric bootstrap of a linear mixed model (lme4's ``bootMer``), from the
stored statistics.

Each replicate simulates ``y* = Xβ̂ + ZΛ̂u* + ε*`` (lme4's ``use.u = FALSE``) and
refits the model by the fit's method. Neither step passes over the rows: the
replicate's ``Zᵀy*``, ``Xᵀy*`` and ``y*ᵀy*`` are drawn exactly in distribution from
the stored blocks (:mod:`._draws`), and for one grouping factor all replicates are
refitted together (:mod:`._batch_fit`); with several factors each is refitted by the
fit's optimizer on its statistics, in ``n_jobs`` threads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import norm

from .._core import Criterion
from .._core.fit import fit_lmm, single_threaded_blas
from .._core.terms import split_theta
from ._batch_fit import BatchCriterion, newton_search
from ._draws import draw_responses
from ._parameters import ParameterMap, percent_labels
from .wald import check_level

__all__ = ["BootstrapResult", "bootstrap"]

_KINDS = ("perc", "norm", "basic")


@dataclass(frozen=True)
class BootstrapResult:
    """Parametric bootstrap replicates of every parameter lme4's ``confint`` lists.

    Attributes
    ----------
    replicates : pandas.DataFrame
        One row per replicate; columns ``.sig01``, ..., ``.sigma`` and the fixed
        effects (lme4's ``bootMer(...)$t`` with ``confint``'s names).
    estimates : pandas.Series
        The fit's own values (lme4's ``t0``).
    n_refit_alone : int
        Replicates the batched search left to the fit's optimizer.
    """

    replicates: pd.DataFrame
    estimates: pd.Series
    n_refit_alone: int = 0

    def confint(self, level=0.95, kind="perc") -> pd.DataFrame:
        """Bootstrap intervals (``boot::boot.ci`` types).

        Parameters
        ----------
        level : float, default=0.95
        kind : {"perc", "norm", "basic"}, default="perc"
            Percentile (lme4's default), normal (the estimate less the bootstrap
            bias, plus or minus ``z`` bootstrap standard deviations) or basic
            (``2 t0`` less the percentiles, reversed).

        Returns
        -------
        pandas.DataFrame
            One row per parameter, R's column names (``"2.5 %"``, ``"97.5 %"``).
        """
        check_level(level)
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}.")
        alpha = np.array([(1 - level) / 2, (1 + level) / 2])
        t, t0 = self.replicates, self.estimates
        if kind == "norm":
            bias = t.mean() - t0
            sd = t.std(ddof=1)
            z = norm.ppf(alpha)
            values = np.column_stack([t0 - bias + z[0] * sd, t0 - bias + z[1] * sd])
        else:
            q = t.quantile(alpha).to_numpy().T
            values = q if kind == "perc" else np.column_stack([2 * t0 - q[:, 1], 2 * t0 - q[:, 0]])
        return pd.DataFrame(values, index=t.columns, columns=percent_labels(level))


def bootstrap(result, n_boot=1000, random_state=None, n_jobs=None) -> BootstrapResult:
    """Parametric bootstrap of a fit (lme4's ``bootMer(fit, FUN, nsim, use.u = FALSE)``).

    Parameters
    ----------
    result : MixedLMResult
    n_boot : int, default=1000
        Number of replicates.
    random_state : int, numpy.random.Generator or None
        Seed of the simulation.
    n_jobs : int or None
        Threads for the replicates refitted one at a time (several grouping factors).

    Returns
    -------
    BootstrapResult
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}.")
    rng = random_state if isinstance(random_state, np.random.Generator) else (
        np.random.default_rng(random_state)
    )
    fit = result.fit
    crit = fit.criterion
    stats, cp, terms = crit.stats, crit.cp, crit.terms
    params = ParameterMap.of(result)
    theta_int = fit.theta_scaled
    offset = stats.plan.offset
    c = result.fixed_effects.to_numpy() - offset
    T = split_theta(theta_int, terms)
    with single_threaded_blas():
        draws = draw_responses(stats, cp, T, c, result.sigma, int(n_boot), rng)
        reml = result.method == "REML"
        n, p = cp.n_obs, cp.n_fixed
        if len(terms) == 1:
            batch = BatchCriterion(cp, terms[0], draws.Z1ty, draws.Xty, draws.yty, reml)
            theta, _, settled = newton_search(batch, theta_int, crit.lower, int(n_boot))
            beta, pwrss = batch.solution(theta, np.arange(int(n_boot)))
            theta, beta = theta.T, beta
            alone = np.flatnonzero(~settled)
        else:
            theta = np.empty((int(n_boot), theta_int.size))
            beta, pwrss = np.empty((int(n_boot), p)), np.empty(int(n_boot))
            alone = np.arange(int(n_boot))
        refits = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_refit_one)(stats, draws, b, reml) for b in alone
        )
    for b, (th, be, pw) in zip(alone, refits):
        theta[b], beta[b], pwrss[b] = th, be, pw
    sigma = np.sqrt(pwrss / (n - p if reml else n))
    lme4_theta = (theta / result.theta_scale)[:, result.theta_order]
    values = np.column_stack([params.to_sdcor(lme4_theta, sigma), beta + offset])
    estimates = np.concatenate(
        [params.to_sdcor(result.theta, result.sigma), result.fixed_effects.to_numpy()]
    )
    names = pd.Index(params.names)
    return BootstrapResult(
        replicates=pd.DataFrame(values, columns=names),
        estimates=pd.Series(estimates, index=names),
        n_refit_alone=int(len(alone)) if len(terms) == 1 else 0,
    )


def _refit_one(stats, draws, b, reml):
    """Replicate ``b`` refitted alone by the fit's optimizer: θ (block order, unit
    scale), β of the stored response and r²."""
    p = stats.n_fixed
    Z1tXY = stats.Z1tXY.copy()
    Z1tXY[:, p, :] = draws.Z1ty[:, :, b]
    XYtXY = stats.XYtXY.copy()
    XYtXY[:p, p] = XYtXY[p, :p] = draws.Xty[:, b]
    XYtXY[p, p] = draws.yty[b]
    Z2tXY = None
    if stats.Z2tXY is not None:
        Z2tXY = stats.Z2tXY.copy()
        Z2tXY[:, p] = draws.Z2ty[:, b]
    new = replace(stats, Z1tXY=Z1tXY, XYtXY=XYtXY, Z2tXY=Z2tXY)
    fit = fit_lmm(Criterion(new, reml=reml), check_convergence=False)
    sol = fit.solution
    return fit.theta_scaled, sol.beta - stats.plan.offset, sol.pwrss
