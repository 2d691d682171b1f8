"""The frozen result of a generalized linear mixed model fit (lme4's ``glmerMod``).

:func:`fit_glmm_result` is the road after the design for a GLMM: model arrays →
:func:`~sklmixed._core.pirls.make_problem` → :func:`~sklmixed._core.glmm_fit.fit_glmm`
→ :class:`GLMMResult`. The result shares :class:`~sklmixed.result.Term`, lme4's term
order and names with :class:`~sklmixed.result.MixedLMResult` (one definition, in
``result.py``); the variance components have no residual row (σ = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._core import ConvergenceCheck, OptimizerRecord
from ._core.families import get_family
from ._core.glmm_fit import GLMMFit, fit_glmm
from ._core.pirls import make_problem
from .result import SINGULAR_TOL, Term, _variance_components, lme4_structure, named_tables

__all__ = ["GLMMResult", "fit_glmm_result", "Term"]


@dataclass(frozen=True)
class GLMMResult:
    """The named results of a fitted generalized linear mixed model.

    Attributes
    ----------
    family, link : str
        R's names (``"binomial"``, ``"logit"``).
    n_agq : int
        Quadrature nodes: 0 (β inside PIRLS), 1 (Laplace) or more (adaptive
        Gauss–Hermite).
    formula : str
        The model as an lme4 formula.
    n_obs : int
        Rows fitted.
    fixed_effects, fixed_effects_se : pandas.Series
        β and its standard errors (lme4's ``fixef`` and the square roots of the
        diagonal of its ``vcov``).
    fixed_effects_cov : pandas.DataFrame
        lme4's ``vcov``: ``2 H⁻¹`` of the deviance's Hessian in (θ, β) for nAGQ ≥ 1,
        ``(R_XᵀR_X)⁻¹`` for nAGQ = 0 (see ``fixed_effects_cov_from``).
    fixed_effects_cov_from : {"hessian", "RX"}
    dropped_fixed : tuple of str
        Fixed-effect columns dropped as linear combinations of earlier ones.
    variance_components : pandas.DataFrame
        ``group, var1, var2, vcov, sdcor`` (lme4's ``as.data.frame(VarCorr(fit))``),
        no residual row.
    random_effects : dict of str to pandas.DataFrame
        Conditional modes per grouping factor (lme4's ``ranef``).
    random_effects_cond_var : dict of str to ndarray of shape (n_levels, q, q)
        Their conditional covariances (``ranef(condVar = TRUE)``).
    theta : ndarray
        lme4's θ (its order; relative covariance factors, σ = 1).
    theta_names : tuple of str
    terms : tuple of Term
        The random-effects terms in lme4's order.
    levels : dict of str to pandas.Index
    n_groups : dict of str to int
    log_likelihood : float
        The Laplace approximation (nAGQ ≤ 1) or the quadrature value (nAGQ > 1,
        with the constant ``Σ −2 log p(yᵢ | μᵢ = yᵢ)`` that lme4's AGQ ``logLik``
        leaves out put back: comparable with the Laplace value).
    lme4_log_likelihood : float
        lme4's ``logLik``: equal to ``log_likelihood`` for nAGQ ≤ 1.
    deviance : float
        lme4's ``deviance()`` of a GLMM: the sum of squared deviance residuals at
        the conditional modes (not −2 log-likelihood).
    df : int
        Parameters: fixed effects and θ.
    df_resid : int
        ``n_obs − df``.
    aic, bic : float
    is_singular : bool
        lme4's ``isSingular``.
    optimizer : OptimizerRecord
        The last stage's record; its ``theta`` is θ in block order and the original
        columns' units (β is ``fixed_effects``), ``n_evals`` counts every stage.
    stage_one : OptimizerRecord
        The first stage (θ with β inside PIRLS).
    convergence_check : ConvergenceCheck or None
    fitted : ndarray of shape (n_obs,)
        Fitted means on the response scale (probabilities, expected counts).
    linear_predictor : ndarray of shape (n_obs,)
        ``η = Xβ + Zb + offset``.
    residuals : ndarray of shape (n_obs,)
        Response residuals ``y − μ`` (``y`` the proportion of a binomial response).
    pearson_residuals : ndarray of shape (n_obs,)
        ``(y − μ) √w / √V(μ)``: what the summary's "Scaled residuals" are.
    y : ndarray of shape (n_obs,)
    prior_weights : ndarray of shape (n_obs,) or None
        Trials of a binomial proportion, or prior weights.
    offset : ndarray of shape (n_obs,) or None
    response_levels : tuple or None
        ``(failure, success)`` of a two-level response.
    fit : GLMMFit
        The optimizer's fit in block order (the PIRLS state at the optimum, the
        problem): what prediction and inference read.
    theta_order, theta_scale : ndarray
        As :class:`~sklmixed.result.MixedLMResult`'s.
    training_factors : tuple of RandomFactor
    na_dropped : pandas.Index
    """

    family: str
    link: str
    n_agq: int
    formula: str
    n_obs: int
    fixed_effects: pd.Series
    fixed_effects_se: pd.Series
    fixed_effects_cov: pd.DataFrame
    fixed_effects_cov_from: str
    dropped_fixed: tuple
    variance_components: pd.DataFrame
    random_effects: dict
    random_effects_cond_var: dict
    theta: np.ndarray
    theta_names: tuple
    terms: tuple
    levels: dict
    n_groups: dict
    log_likelihood: float
    lme4_log_likelihood: float
    deviance: float
    df: int
    df_resid: int
    aic: float
    bic: float
    is_singular: bool
    optimizer: OptimizerRecord
    stage_one: OptimizerRecord
    convergence_check: ConvergenceCheck | None
    fitted: np.ndarray
    linear_predictor: np.ndarray
    residuals: np.ndarray
    pearson_residuals: np.ndarray
    y: np.ndarray
    prior_weights: np.ndarray | None
    offset: np.ndarray | None
    response_levels: tuple | None
    fit: GLMMFit
    theta_order: np.ndarray
    theta_scale: np.ndarray
    training_factors: tuple = ()
    na_dropped: pd.Index = field(default_factory=lambda: pd.Index([], dtype=np.int64))

    @property
    def converged(self) -> bool:
        """Both optimizer stages stopped on a tolerance, PIRLS converged at the
        optimum and the check of the optimum passed."""
        return self.fit.converged

    @property
    def n_iter(self) -> int:
        """Objective evaluations (both stages and the check)."""
        return self.optimizer.n_evals

    @property
    def scaled_residuals(self) -> np.ndarray:
        """The Pearson residuals (the summary's "Scaled residuals")."""
        return self.pearson_residuals

    @property
    def method(self) -> str:
        """lme4's title of the approximation."""
        if self.n_agq > 1:
            return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.n_agq}"
        return "Laplace Approximation"


def fit_glmm_result(
    arrays, design, *, family="binomial", link=None, n_agq=1, tol=1e-6, max_evals=100_000,
    check_convergence=True,
) -> GLMMResult:  # fmt: skip
    """Fit a GLMM to model arrays and name its numbers.

    Parameters
    ----------
    arrays : ModelArrays
        From a design with ``response_family`` set (``y`` proportions or counts,
        binomial trials as ``weights``).
    design : Design
        The fitted design (names, levels, formula, ``response_``).
    family : str or Family
    link : str, optional
    n_agq : int
    tol, max_evals, check_convergence
        As :func:`~sklmixed._core.glmm_fit.fit_glmm`.

    Returns
    -------
    GLMMResult
    """
    fam = get_family(family, link)
    problem = make_problem(arrays, fam)
    fit = fit_glmm(
        problem, n_agq=n_agq, tol=tol, max_evals=max_evals, check_convergence=check_convergence
    )
    return build_glmm_result(fit, arrays, design)


def build_glmm_result(fit: GLMMFit, arrays, design) -> GLMMResult:
    """Attach names and structure to a :class:`GLMMFit`.

    Parameters
    ----------
    fit : GLMMFit
    arrays : ModelArrays
        The training arrays.
    design : Design
        The fitted design.

    Returns
    -------
    GLMMResult
    """
    problem, state = fit.problem, fit.state
    family = problem.family
    factors = arrays.factors
    terms, theta_order, theta_scale, by_name, factor_names = lme4_structure(
        problem.terms, fit.record.theta, factors, problem.plan
    )
    fixed_names = pd.Index(list(arrays.fixed_names), dtype=object)
    n_obs = arrays.n_counted
    n_obs = int(n_obs) if float(n_obs).is_integer() else n_obs
    n_params = len(fixed_names) + fit.record.theta.size
    m2ll = fit.minus_twice_loglik
    mu, y, w = state.mu, problem.arrays.y, problem.prior
    resid = y - mu
    response = getattr(design, "response_", None)
    singular = bool((fit.theta_scaled[problem.lower == 0] < SINGULAR_TOL).any())
    return GLMMResult(
        family=family.name,
        link=family.link.name,
        n_agq=fit.n_agq,
        formula=design.formula_text(),
        n_obs=n_obs,
        **named_tables(
            fit.beta, fit.beta_cov, fit.modes, fit.cond_cov, fixed_names, terms, by_name,
            factor_names,
        ),
        fixed_effects_cov_from=fit.beta_cov_from,
        dropped_fixed=tuple(design.dropped_fixed_),
        variance_components=_variance_components(terms, 1.0, residual=False),
        log_likelihood=-m2ll / 2.0,
        lme4_log_likelihood=-fit.objective / 2.0,
        deviance=fit.deviance,
        df=n_params,
        df_resid=int(round(n_obs - n_params)),
        aic=m2ll + 2.0 * n_params,
        bic=m2ll + np.log(n_obs) * n_params,
        is_singular=singular,
        optimizer=fit.record,
        stage_one=fit.stage_one,
        convergence_check=fit.check,
        fitted=mu,
        linear_predictor=state.eta,
        residuals=resid,
        pearson_residuals=resid * np.sqrt(w) / np.sqrt(family.variance(mu)),
        y=y,
        prior_weights=arrays.weights,
        offset=arrays.offset,
        response_levels=None if response is None else response.levels,
        fit=fit,
        theta_order=theta_order,
        theta_scale=theta_scale,
        training_factors=tuple(arrays.factors),
        na_dropped=getattr(design, "na_dropped_", pd.Index([], dtype=np.int64)),
    )
