"""The frozen result of one fit: every number lme4 reports, with names attached.

Built once, from the numerical core's output and the design's names, by
:func:`build_result`; the estimator copies it onto its fitted attributes and the
reporting module reads it. Nothing here computes a fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._core import CoreFit
from ._core.optimize import ConvergenceCheck, OptimizerRecord

__all__ = ["MixedLMResult", "build_result"]

# lme4's isSingular(): a θ entry bounded below by 0 that is smaller than this. It is
# applied to θ of unit-RMS columns, so that it does not depend on the data's units
# (identical to lme4's for intercepts).
SINGULAR_TOL = 1e-4

# Columns of variance_components, lme4's as.data.frame(VarCorr(fit)).
_VARCORR_COLUMNS = pd.Index(["group", "var1", "var2", "vcov", "sdcor"])


@dataclass(frozen=True)
class MixedLMResult:
    """Named results of a fitted linear mixed model (see MixedLMRegressor's attributes)."""

    method: str
    n_obs: int
    fixed_effects: pd.Series
    fixed_effects_se: pd.Series
    fixed_effects_cov: pd.DataFrame
    variance_components: pd.DataFrame
    random_effects: dict
    random_effects_cond_var: dict
    sigma: float
    theta: np.ndarray
    theta_names: tuple
    log_likelihood: float
    reml_criterion: float | None
    deviance: float
    df: int
    aic: float
    bic: float
    n_groups: dict
    is_singular: bool
    optimizer: OptimizerRecord
    convergence_check: ConvergenceCheck | None
    dropped_fixed: tuple

    @property
    def converged(self) -> bool:
        """The optimizer stopped on its tolerance and the check at the optimum passed."""
        check_ok = self.convergence_check is None or self.convergence_check.ok
        return self.optimizer.converged and check_ok

    @property
    def n_iter(self) -> int:
        return self.optimizer.n_evals


def _block_names(name, n_blocks):
    """lme4's names of several terms on one factor: ``g``, ``g.1``, ``g.2``."""
    return [name] + [f"{name}.{k}" for k in range(1, n_blocks)]


def build_result(core: CoreFit, factors, fixed_names, levels, method, dropped_fixed=()):
    """Attach names to the core's arrays.

    Parameters
    ----------
    core : CoreFit
    factors : sequence of FactorArrays
        In the order the core received them.
    fixed_names : sequence of str
        Names of the kept fixed-effect columns.
    levels : sequence of pandas.Index
        Levels of each factor, in the order of its integer codes.
    method : {"REML", "ML"}
    dropped_fixed : tuple of str
        Fixed-effect columns dropped as aliased.

    Returns
    -------
    MixedLMResult
    """
    sol, record = core.solution, core.record
    n_obs = core.n_obs
    sigma = sol.sigma
    # The names' dtype is inferred once; each pandas object gets its own (cheap) copy of
    # the index, so renaming one object's index leaves the others alone.
    names = pd.Index(list(fixed_names))
    fixed = pd.Series(sol.beta, index=names.copy(), name="Estimate")
    cov = pd.DataFrame(sol.beta_cov, index=names.copy(), columns=names.copy())
    se = pd.Series(np.sqrt(np.diag(sol.beta_cov)), index=names, name="Std. Error")

    rows, theta_names, start = [], [], 0
    for i in core.term_order:
        factor = factors[i]
        n_theta = core.theta_sizes[i]
        T = np.zeros((len(factor.column_names),) * 2)
        term_theta = record.theta[start : start + n_theta]
        start += n_theta
        k = 0
        for grp, block in zip(_block_names(factor.name, len(factor.blocks)), factor.blocks):
            names = [factor.column_names[c] for c in block]
            for j, col in enumerate(block):
                for row in block[j:]:
                    T[row, col] = term_theta[k]
                    suffix = names[block.index(row)]
                    if row != col:
                        suffix += "." + names[j]
                    theta_names.append(f"{factor.name}.{suffix}")
                    k += 1
            Tb = T[np.ix_(block, block)]
            V = sigma**2 * (Tb @ Tb.T)
            sd = np.sqrt(np.diag(V))
            for a, name in enumerate(names):
                rows.append((grp, name, None, V[a, a], sd[a]))
            for a in range(len(block)):
                for b in range(a + 1, len(block)):
                    corr = V[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan
                    rows.append((grp, names[a], names[b], V[a, b], corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    varcorr = pd.DataFrame(rows, columns=_VARCORR_COLUMNS.copy())

    random_effects, cond_var, n_groups = {}, {}, {}
    for i in core.term_order:
        factor = factors[i]
        random_effects[factor.name] = pd.DataFrame(
            sol.modes[i], index=levels[i], columns=list(factor.column_names)
        )
        if sol.cond_cov is not None:
            cond_var[factor.name] = sol.cond_cov[i]
        n_groups[factor.name] = len(levels[i])

    lower = core.theta_lower
    reml = method == "REML"
    n_params = len(fixed_names) + record.theta.size + 1
    crit = sol.deviance
    return MixedLMResult(
        method=method,
        n_obs=n_obs,
        fixed_effects=fixed,
        fixed_effects_se=se,
        fixed_effects_cov=cov,
        variance_components=varcorr,
        random_effects=random_effects,
        random_effects_cond_var=cond_var,
        sigma=sigma,
        theta=record.theta.copy(),
        theta_names=tuple(theta_names),
        log_likelihood=-crit / 2.0,
        reml_criterion=crit if reml else None,
        deviance=sol.ml_deviance,
        df=n_params,
        aic=crit + 2.0 * n_params,
        bic=crit + np.log(n_obs) * n_params,
        n_groups=n_groups,
        is_singular=bool(np.any(core.theta_scaled[lower == 0] < SINGULAR_TOL)),
        optimizer=record,
        convergence_check=core.check,
        dropped_fixed=tuple(dropped_fixed),
    )
