"""The frozen result of a fit: every number lme4 reports, with names and structure.

:func:`build_result` makes a :class:`MixedLMResult` once, from the optimizer's fit (in
the statistics' block order) and the design's names; the estimators' fitted
attributes, the report, inference and prediction read it. It carries the model's
structure (terms in lme4's order with their names, levels, the formula) so nothing
downstream parses a name, and the fitted criterion so that inference and prediction
reuse the reduced data without another pass over the rows.

The types users receive are importable from here: :class:`MixedLMResult`,
:class:`Term`, :class:`~sklmixed._core.OptimizerRecord` and
:class:`~sklmixed._core.ConvergenceCheck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ._core import ConvergenceCheck, LMMFit, OptimizerRecord
from ._names import term_names

__all__ = ["MixedLMResult", "Term", "OptimizerRecord", "ConvergenceCheck", "build_result"]

# lme4's isSingular(): a θ entry bounded below by 0 that is smaller than this. It is
# applied to θ of unit-RMS columns, so that it does not depend on the data's units
# (identical to lme4's for intercepts).
SINGULAR_TOL = 1e-4


@dataclass(frozen=True)
class Term:
    """One lme4 random-effects term: a block of one grouping factor's columns.

    Attributes
    ----------
    name : str
        lme4's name of the term (``"school"``, ``"school.1"`` for a second term on
        the same factor).
    factor : str
        The grouping factor.
    column_names : tuple of str
        The term's columns.
    theta : ndarray
        Its entries of θ (column-wise lower triangle of its factor ``T``).
    """

    name: str
    factor: str
    column_names: tuple
    theta: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """``T Tᵀ``: the term's covariance relative to σ²."""
        q = len(self.column_names)
        T = np.zeros((q, q))
        rows, cols = _tril_column_wise(q)
        T[rows, cols] = self.theta
        return T @ T.T


@dataclass(frozen=True)
class MixedLMResult:
    """The named results of a fitted linear mixed model.

    The attributes are those of :class:`~sklmixed.MixedLMRegressor` without the
    trailing underscore (``fixed_effects`` is ``fixed_effects_``), plus:

    Attributes
    ----------
    method : {"REML", "ML"}
    formula : str
        The model as an lme4 formula.
    terms : tuple of Term
        The random-effects terms in lme4's order.
    levels : dict of str to pandas.Index
        Levels of each grouping factor.
    fitted, residuals, scaled_residuals : ndarray of shape (n_obs,) or None
        Fitted values (fixed plus random effects), response residuals, and residuals
        scaled by σ (and the square root of the prior weights). None for a fit from a
        Dask DataFrame, whose rows stay on the workers (``predict`` gives them lazily).
    weighted : bool
        Whether the fit had prior weights.
    fit : LMMFit
        The optimizer's fit in the statistics' block order, with the criterion it
        minimized (what inference and prediction reuse).
    theta_order : ndarray of int
        Position in the fit's θ (block order) of each entry of ``theta`` (lme4's order).
    theta_scale : ndarray
        Scale of each entry of the fit's θ: θ for unit-scale columns is ``θ · scale``.
    na_dropped : pandas.Index
        Rows left out for missing values (labels or positions); empty when none were.
    training_factors : tuple of RandomFactor
        The grouping factors of the training rows (level codes and random-effect
        columns), for ``simulate`` on the training data.
    prior_weights : ndarray of shape (n_obs,) or None
        The training rows' prior weights.
    added_groups : AddedGroups or None
        Levels added after the fit (``add_groups``), whose modes and conditional
        variances ``random_effects`` and ``random_effects_cond_var`` list after the
        fitted levels'.
    residual_quantiles : ndarray of shape (5,) or None
        Minimum, quartiles and maximum of the scaled residuals, for a fit whose
        residuals are not kept (a Dask fit; see ``docs/distributed.md``).
    """

    method: str
    n_obs: float
    fixed_effects: pd.Series
    fixed_effects_se: pd.Series
    fixed_effects_cov: pd.DataFrame
    variance_components: pd.DataFrame
    formula: str
    dropped_fixed: tuple
    random_effects: dict
    random_effects_cond_var: dict
    sigma: float
    theta: np.ndarray
    theta_names: tuple
    terms: tuple
    levels: dict
    n_groups: dict
    log_likelihood: float
    reml_criterion: float | None
    deviance: float
    df: int
    aic: float
    bic: float
    is_singular: bool
    optimizer: OptimizerRecord
    convergence_check: ConvergenceCheck | None
    fitted: np.ndarray
    residuals: np.ndarray
    scaled_residuals: np.ndarray
    weighted: bool
    fit: LMMFit
    theta_order: np.ndarray
    theta_scale: np.ndarray
    na_dropped: pd.Index = field(default_factory=lambda: pd.Index([], dtype=np.int64))
    training_factors: tuple = ()
    prior_weights: np.ndarray | None = None
    added_groups: object = None
    residual_quantiles: np.ndarray | None = None

    def internal_theta(self, theta) -> np.ndarray:
        """θ in lme4's order and the data's units, as the criterion takes it (block
        order, unit-scale columns)."""
        internal = np.empty(self.theta_order.size)
        internal[self.theta_order] = np.asarray(theta, dtype=float)
        return internal * self.theta_scale

    def criterion_at(self, theta) -> float:
        """The fitted criterion (REML or ML as fitted) at θ given in lme4's order."""
        return self.fit.criterion(self.internal_theta(theta))

    def solve_at(self, theta):
        """The :class:`~sklmixed._core.Solution` at θ given in lme4's order (β for the
        original response; modes in block order, for unit-scale columns)."""
        sol = self.fit.criterion.solve(self.internal_theta(theta))
        return replace(sol, beta=sol.beta + self.fit.criterion.stats.plan.offset)

    @property
    def unbounded(self) -> bool:
        """Whether the likelihood has no maximum (the random effects reproduce y)."""
        return self.fit.unbounded

    @property
    def converged(self) -> bool:
        """The optimizer stopped on its tolerance and the check at the optimum passed."""
        check_ok = self.convergence_check is None or self.convergence_check.ok
        return self.optimizer.converged and check_ok

    @property
    def n_iter(self) -> int:
        """Criterion evaluations."""
        return self.optimizer.n_evals


def lme4_term_order(n_levels) -> list:
    """lme4's order of terms (``mkReTrms``): when some term has more levels than the
    one before it, ``rev(order(nlevels))`` (decreasing, ties reversed); else as given."""
    n_levels = list(n_levels)
    if not any(b > a for a, b in zip(n_levels, n_levels[1:])):
        return list(range(len(n_levels)))
    ascending = sorted(range(len(n_levels)), key=lambda i: n_levels[i])  # stable, as R's order
    return ascending[::-1]


def _tril_column_wise(q):
    """Rows and columns of a ``q × q`` lower triangle, column by column (θ's order)."""
    rows, cols = [], []
    for col in range(q):
        for row in range(col, q):
            rows.append(row)
            cols.append(col)
    return np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)


def lme4_structure(layouts, theta, factors, plan):
    """The terms in lme4's order, and where their θ sits in a fit's θ.

    Parameters
    ----------
    layouts : sequence of TermLayout
        The fit's factors in block order.
    theta : ndarray
        The fit's θ (block order), in the original columns' units.
    factors : sequence of RandomFactor
        The design's factors (design order).
    plan : ReductionPlan
        Block order and column scales.

    Returns
    -------
    terms : tuple of Term
    theta_order : ndarray of int
        Position in the fit's θ of each entry of lme4's θ.
    theta_scale : ndarray
        Scale of each entry of the fit's θ (θ for unit-scale columns is ``θ · scale``).
    by_name : dict of str to (int, RandomFactor)
        Each factor's block position and the factor.
    factor_names : list of str
        The factors in lme4's order of their first term.
    """
    order = plan.order  # block position -> design factor
    # Every term (one block of one factor) with its θ entries, in block order.
    blocks, start = [], 0
    for b, layout in enumerate(layouts):
        factor = factors[order[b]]
        for block, position in zip(factor.blocks, factor.term_positions):
            n_theta = len(block) * (len(block) + 1) // 2
            names = tuple(factor.column_names[c] for c in block)
            blocks.append((position, factor, names, np.arange(start, start + n_theta)))
            start += n_theta
    blocks.sort(key=lambda item: item[0])  # the formula's order
    lme4 = [blocks[i] for i in lme4_term_order([item[1].n_levels for item in blocks])]
    names = term_names([item[1].name for item in lme4])
    terms = tuple(
        Term(name, factor.name, cols, theta[entries])
        for name, (_, factor, cols, entries) in zip(names, lme4)
    )
    theta_order = np.concatenate([item[3] for item in lme4]).astype(np.intp) if lme4 else (
        np.zeros(0, dtype=np.intp)
    )
    theta_scale = np.concatenate(
        [scale[t.theta_rows] for t, scale in zip(layouts, plan.scales)]
    ) if lme4 else np.zeros(0)
    factor_names = list(dict.fromkeys(term.factor for term in terms))
    by_name = {f.name: (b, f) for b, f in ((b, factors[i]) for b, i in enumerate(order))}
    return terms, theta_order, theta_scale, by_name, factor_names


def build_result(fit: LMMFit, arrays, design, method, fitted) -> MixedLMResult:
    """Attach names and structure to the optimizer's fit.

    Parameters
    ----------
    fit : LMMFit
    arrays : ModelArrays
        The training arrays the fit was reduced from.
    design : Design
        The fitted design (names, levels, formula).
    method : {"REML", "ML"}
    fitted : ndarray of shape (n,) or None
        Fitted values at the solution; None when the rows are not at hand (a Dask
        fit: ``arrays`` then holds the structure only, no rows).

    Returns
    -------
    MixedLMResult
    """
    sol, record = fit.solution, fit.record
    plan = fit.criterion.stats.plan
    factors = arrays.factors
    structure = lme4_structure(fit.criterion.terms, record.theta, factors, plan)
    terms, theta_order, theta_scale, by_name, factor_names = structure
    sigma = sol.sigma

    fixed_names = pd.Index(list(arrays.fixed_names), dtype=object)
    # Rows, or the sum of the frequency weights (from the statistics without the rows).
    n_obs = arrays.n_counted if fitted is not None else fit.criterion.stats.n_obs
    n_obs = int(n_obs) if float(n_obs).is_integer() else n_obs
    n_params = len(fixed_names) + record.theta.size + 1
    # Where the random effects reproduce y the likelihood has no maximum: its supremum
    # (+inf) is reported, not the value where the optimizer stopped.
    crit = -np.inf if fit.unbounded else sol.deviance
    reml = method == "REML"
    residuals = scaled = None
    if fitted is not None:
        residuals = arrays.y - fitted
        scaled = residuals if arrays.weights is None else residuals * np.sqrt(arrays.weights)
    return MixedLMResult(
        method=method,
        formula=design.formula_text(),
        n_obs=n_obs,
        **named_tables(
            sol.beta, sol.beta_cov, sol.modes, sol.cond_cov, fixed_names, terms, by_name,
            factor_names,
        ),
        dropped_fixed=tuple(design.dropped_fixed_),
        variance_components=_variance_components(terms, sigma),
        sigma=sigma,
        log_likelihood=-crit / 2.0,
        reml_criterion=crit if reml else None,
        deviance=-np.inf if fit.unbounded else sol.ml_deviance,
        df=n_params,
        aic=crit + 2.0 * n_params,
        bic=crit + np.log(n_obs) * n_params,
        is_singular=bool((fit.theta_scaled[fit.criterion.lower == 0] < SINGULAR_TOL).any()),
        optimizer=record,
        convergence_check=fit.check,
        fitted=fitted,
        residuals=residuals,
        scaled_residuals=None if scaled is None else scaled / sigma,
        weighted=arrays.weights is not None,
        fit=fit,
        theta_order=theta_order,
        theta_scale=theta_scale,
        na_dropped=getattr(design, "na_dropped_", pd.Index([], dtype=np.int64)),
        training_factors=tuple(arrays.factors),
        prior_weights=arrays.weights,
    )


def named_tables(beta, beta_cov, modes, cond_cov, fixed_names, terms, by_name, factor_names):
    """The result fields every mixed model names the same way (LMM and GLMM alike).

    Parameters
    ----------
    beta, beta_cov : ndarray
        Fixed effects and their covariance.
    modes : list of ndarray
        Conditional modes per block; ``cond_cov`` their covariances (or None).
    fixed_names : pandas.Index
    terms, by_name, factor_names
        As returned by :func:`lme4_structure`.

    Returns
    -------
    dict
        Keyword arguments of the result types.
    """
    return dict(
        fixed_effects=pd.Series(beta, index=fixed_names, name="Estimate"),
        fixed_effects_se=pd.Series(
            np.sqrt(np.diag(beta_cov)), index=fixed_names, name="Std. Error"
        ),
        fixed_effects_cov=pd.DataFrame(
            beta_cov, index=fixed_names, columns=fixed_names, copy=False
        ),
        random_effects={
            name: pd.DataFrame(
                modes[by_name[name][0]],
                index=by_name[name][1].levels,
                columns=pd.Index(list(by_name[name][1].column_names), dtype=object),
                copy=False,
            )
            for name in factor_names
        },
        random_effects_cond_var=(
            {} if cond_cov is None else {name: cond_cov[by_name[name][0]] for name in factor_names}
        ),
        theta=np.concatenate([term.theta for term in terms]) if terms else np.zeros(0),
        theta_names=tuple(_theta_names(terms)),
        terms=terms,
        levels={name: by_name[name][1].levels for name in factor_names},
        n_groups={name: by_name[name][1].n_levels for name in factor_names},
    )


def _theta_names(terms):
    """lme4's names of θ: ``g.x`` on the diagonal of a term's T, ``g.x.w`` below."""
    names = []
    for term in terms:
        rows, cols = _tril_column_wise(len(term.column_names))
        for row, col in zip(rows, cols):
            suffix = term.column_names[row]
            if row != col:
                suffix += "." + term.column_names[col]
            names.append(f"{term.factor}.{suffix}")
    return names


def _variance_components(terms, sigma, residual=True):
    """lme4's ``as.data.frame(VarCorr(fit))``: one row per variance and covariance
    (and the residual's, unless ``residual`` is False: a GLMM has none)."""
    columns = {"group": [], "var1": [], "var2": [], "vcov": [], "sdcor": []}

    def row(*values):
        for key, value in zip(columns, values):
            columns[key].append(value)

    for term in terms:
        V = sigma**2 * term.covariance
        sd = np.sqrt(np.diag(V))
        names = term.column_names
        for a, var in enumerate(names):
            row(term.name, var, None, V[a, a], sd[a])
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                corr = V[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan
                row(term.name, names[a], names[b], V[a, b], corr)
    if residual:
        row("Residual", None, None, sigma**2, sigma)
    return pd.DataFrame(
        {
            key: np.array(values, dtype=object if key in ("group", "var1", "var2") else float)
            for key, values in columns.items()
        }
    )
