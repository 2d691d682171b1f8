"""The frozen result of one fit: every number lme4 reports, with names attached.

Built once, from the numerical core's output and the design's names, by
:func:`build_result`; the estimator's fitted attributes and the reporting module read
it. Nothing here computes a fit.

The pandas tables (fixed effects, their covariance, variance components, conditional
modes) are built on first access: on a small model, building them in fit would cost
more than everything else outside the optimizer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ._core import CoreFit
from ._core.optimize import ConvergenceCheck, OptimizerRecord

__all__ = ["Deferred", "MixedLMResult", "build_result"]

# lme4's isSingular(): a θ entry bounded below by 0 that is smaller than this. It is
# applied to θ of unit-RMS columns, so that it does not depend on the data's units
# (identical to lme4's for intercepts).
SINGULAR_TOL = 1e-4


class Deferred(functools.partial):
    """The value of a :class:`MixedLMResult` table, built by this call on first access."""


class _BuiltOnAccess:
    """A field of :class:`MixedLMResult` that may be given as a :class:`Deferred`.

    The first read runs it and keeps the value, so every later read returns the same
    object. As the default of a dataclass field, it gives no default value.
    """

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, result, owner=None):
        if result is None:
            raise AttributeError(self.name)
        value = result.__dict__[self.name]
        if isinstance(value, Deferred):
            value = result.__dict__[self.name] = value()
        return value

    def __set__(self, result, value):
        result.__dict__[self.name] = value


@dataclass(frozen=True)
class MixedLMResult:
    """Named results of a fitted linear mixed model (see MixedLMRegressor's attributes).

    The tables ``fixed_effects``, ``fixed_effects_se``, ``fixed_effects_cov``,
    ``variance_components`` and ``random_effects`` may be given as :class:`Deferred`
    calls, run on first access.
    """

    method: str
    n_obs: int
    fixed_effects: pd.Series = _BuiltOnAccess()
    fixed_effects_se: pd.Series = _BuiltOnAccess()
    fixed_effects_cov: pd.DataFrame = _BuiltOnAccess()
    variance_components: pd.DataFrame = _BuiltOnAccess()
    random_effects: dict = _BuiltOnAccess()
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

    def __getstate__(self):
        # A pickle holds the tables, not the calls that build them.
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _block_names(name, n_blocks):
    """lme4's names of several terms on one factor: ``g``, ``g.1``, ``g.2``."""
    return [name] + [f"{name}.{k}" for k in range(1, n_blocks)]


def _theta_positions(block):
    """``(row, col)`` of the θ entries of one block of ``T``: column by column, lower part."""
    return [(row, col) for j, col in enumerate(block) for row in block[j:]]


def _theta_names(name, column_names, blocks):
    """lme4's names of a term's θ entries (``g.x`` on the diagonal of T, ``g.x.w`` below)."""
    names = []
    for block in blocks:
        for row, col in _theta_positions(block):
            suffix = column_names[row]
            if row != col:
                suffix += "." + column_names[col]
            names.append(f"{name}.{suffix}")
    return names


def _variance_components(terms, sigma):
    """lme4's ``as.data.frame(VarCorr(fit))``: one row per variance and covariance."""
    rows = []
    for name, column_names, blocks, theta in terms:
        T = np.zeros((len(column_names),) * 2)
        k = 0
        for grp, block in zip(_block_names(name, len(blocks)), blocks):
            names = [column_names[c] for c in block]
            for row, col in _theta_positions(block):
                T[row, col] = theta[k]
                k += 1
            Tb = T[np.ix_(block, block)]
            V = sigma**2 * (Tb @ Tb.T)
            sd = np.sqrt(np.diag(V))
            for a, var in enumerate(names):
                rows.append((grp, var, None, V[a, a], sd[a]))
            for a in range(len(block)):
                for b in range(a + 1, len(block)):
                    corr = V[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan
                    rows.append((grp, names[a], names[b], V[a, b], corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


def _modes_tables(modes):
    """Conditional modes of each factor as a DataFrame, one row per level."""
    return {
        name: pd.DataFrame(values, index=levels, columns=columns)
        for name, values, levels, columns in modes
    }


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
    fixed_names = list(fixed_names)

    # Per term, in lme4's order: (factor name, column names, blocks, θ) for the variance
    # components, and (factor name, modes, levels, column names) for the modes' tables.
    # θ is copied: the record's array is public (optimizer_record_.theta), and the
    # variance components are computed from it later.
    all_theta = record.theta.copy()
    terms, modes, cond_var, n_groups, start = [], [], {}, {}, 0
    for i in core.term_order:
        factor, n_theta = factors[i], core.theta_sizes[i]
        theta = all_theta[start : start + n_theta]
        start += n_theta
        terms.append((factor.name, factor.column_names, factor.blocks, theta))
        modes.append((factor.name, sol.modes[i], levels[i], list(factor.column_names)))
        if sol.cond_cov is not None:
            cond_var[factor.name] = sol.cond_cov[i]
        n_groups[factor.name] = len(levels[i])
    theta_names = [name for term in terms for name in _theta_names(*term[:3])]

    lower = core.theta_lower
    reml = method == "REML"
    n_params = len(fixed_names) + record.theta.size + 1
    crit = sol.deviance
    return MixedLMResult(
        method=method,
        n_obs=n_obs,
        fixed_effects=Deferred(pd.Series, sol.beta, index=fixed_names, name="Estimate"),
        fixed_effects_se=Deferred(
            pd.Series, np.sqrt(np.diag(sol.beta_cov)), index=fixed_names, name="Std. Error"
        ),
        fixed_effects_cov=Deferred(
            pd.DataFrame, sol.beta_cov, index=fixed_names, columns=fixed_names
        ),
        variance_components=Deferred(_variance_components, terms, sigma),
        random_effects=Deferred(_modes_tables, modes),
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
        is_singular=bool((core.theta_scaled[lower == 0] < SINGULAR_TOL).any()),
        optimizer=record,
        convergence_check=core.check,
        dropped_fixed=tuple(dropped_fixed),
    )
