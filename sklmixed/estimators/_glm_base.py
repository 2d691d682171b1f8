"""What the GLMM estimators share: parameters and their documentation, the fit (the
road of :func:`sklmixed.glmer`: design -> ``fit_glmm_result`` -> fitted attributes), and
predictions on the link scale with their standard errors."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._core.families import get_family
from .._core.fit import single_threaded_blas
from .._core.terms import split_theta
from ..design.formula import FormulaDesign
from ..design.response import warn_degenerate
from ..prediction import (
    FactorState,
    JointCovariance,
    PredictionState,
    prediction_mean,
    prediction_variance,
    response_interval,
    select_factors,
)
from ..result_glmm import fit_glmm_result
from ._base import DESIGN_CONSTRAINTS, MixedModelMixin

__all__ = [
    "MixedGLM",
    "GLMM_CONSTRAINTS",
    "SHARED_PARAMETERS",
    "SHARED_ATTRIBUTES",
    "counts",
    "glmm_prediction_state",
]

_RANDOM_EFFECTS = [None, str, list, tuple]

GLMM_CONSTRAINTS: dict = {
    **DESIGN_CONSTRAINTS,
    "nAGQ": [Interval(Integral, 0, 25, closed="both")],
    "offset": [str, Integral, None],
    "exposure": [str, Integral, None],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "check_convergence": ["boolean"],
}

# The parameters both estimators document the same way (numpydoc, pasted below).
SHARED_PARAMETERS = """
    formula : str, default=None
        An lme4 formula such as ``"use ~ age + urban + (1 + urban | district)"``; X must
        then be a DataFrame holding its variables (a left side names the response
        column used when ``fit`` gets ``y=None``), and ``group``, ``random_effects``,
        ``fixed_effects``, ``offset`` and ``exposure`` must be left unset (write
        ``offset(log(exposure))`` in the formula).
    group : str, int or list, default=None
        Column(s) of X holding group labels (names for DataFrames, positions for
        arrays); None: labels come from ``fit(..., groups=...)``.
    random_effects : list or dict, default=None
        Columns of X whose slopes vary by group, besides the random intercept (a
        dict ``{group: [columns]}`` chooses per factor).
    random_intercept : bool, default=True
        Whether each grouping factor has a random intercept.
    fit_intercept : bool, default=True
        Whether the fixed part has an intercept, ``"(Intercept)"``.
    covariance : {"unstructured", "diagonal"}, default="unstructured"
        Correlated random effects of a factor (``(1 + x | g)``) or independent ones
        (``(1 + x || g)``).
    fixed_effects : list, default=None
        Columns of X that are fixed features; None: every column but the group,
        weight, offset and exposure columns.
    weights : str or int, default=None
        The column of X holding lme4's prior weights (``glmer(weights = w)``); not a
        feature. Frequency weights are ``fit(..., sample_weight=...)``.
    nested : bool, default=False
        Whether the ``group`` columns are nested, outermost first (lme4's
        ``(1 | a/b)``).
    unseen_levels : {"population", "warn", "error"}, default="population"
        What ``predict`` does with a group level never seen in fit: no random effect
        (the population-level prediction), the same with a warning, or an error.
    na_action : {"raise", "omit"}, default="raise"
        Refuse rows missing a value the model uses, naming the column, or leave them
        out (R's ``na.omit``; the rows are ``na_dropped_``).
    nAGQ : int, default=1
        lme4's ``nAGQ``: 1 the Laplace approximation, 2 to 25 adaptive Gauss-Hermite
        quadrature with that many nodes (one scalar random-effect term, as lme4), 0
        the fast mode that estimates β inside PIRLS.
    offset : str or int, default=None
        A column of X holding a known part of the linear predictor, on the link scale
        (lme4's ``offset``). Not a feature; new data must hold it too.
    exposure : str or int, default=None
        A column of X holding each row's exposure (time at risk, area, population):
        ``log(exposure)`` is added as an offset, so the model is of the rate per unit
        of exposure and ``predict`` returns expected values for the rows' own
        exposures. Strictly positive; new data must hold it too.
    tol : float, default=1e-6
        Tolerance of the search over the covariance parameters.
    max_iter : int, default=100000
        Maximum number of evaluations of the Laplace (or quadrature) deviance.
    check_convergence : bool, default=True
        Check the optimum with a finite-difference gradient and Hessian (lme4's
        check) and warn (``ConvergenceWarning``) when it is in doubt."""

SHARED_ATTRIBUTES = """
    fixed_effects_ : pandas.Series
        Fixed-effect estimates β on the link scale, ``"(Intercept)"`` first (lme4's
        ``fixef``).
    fixed_effects_se_ : pandas.Series
        Their standard errors (lme4's ``vcov``).
    fixed_effects_cov_ : pandas.DataFrame
        Their covariance matrix.
    coef_ : ndarray of shape (n_fixed,)
        Fixed-effect coefficients without the intercept.
    intercept_ : float
        The fixed intercept (0.0 without one).
    variance_components_ : pandas.DataFrame
        ``group, var1, var2, vcov, sdcor`` (lme4's ``as.data.frame(VarCorr(fit))``),
        no residual row.
    random_effects_ : dict of str to pandas.DataFrame
        Conditional modes per grouping factor, one row per level (lme4's ``ranef``).
    random_effects_cond_var_ : dict of str to ndarray
        Conditional covariance of each level's modes (lme4's ``condVar``).
    theta_ : ndarray
        Relative covariance factor parameters, in lme4's order.
    log_likelihood_ : float
        lme4's ``logLik`` (Laplace or quadrature approximation).
    deviance_ : float
        lme4's ``deviance``: the sum of squared deviance residuals at the modes.
    aic_, bic_ : float
        As lme4 reports them.
    n_groups_ : dict of str to int
        Number of levels of each grouping factor.
    levels_ : dict of str to pandas.Index
        Levels of each grouping factor, in R's order.
    is_singular_ : bool
        Whether the fit is on the boundary (lme4's ``isSingular``).
    converged_ : bool
        Whether the optimizer stopped on its tolerance and the check passed.
    n_iter_ : int
        Number of deviance evaluations.
    optimizer_record_ : OptimizerRecord
        What the optimizer did.
    convergence_check_ : ConvergenceCheck or None
        Gradient and Hessian at the optimum.
    fitted_ : ndarray of shape (n_samples,)
        Fitted means on the response scale, every random effect included (lme4's
        ``fitted``).
    linear_predictor_ : ndarray of shape (n_samples,)
        The same on the link scale (lme4's ``predict(fit, type = "link")``).
    residuals_ : ndarray of shape (n_samples,)
        Response residuals ``y - fitted_``.
    na_dropped_ : pandas.Index
        Rows left out for missing values (``na_action="omit"``).
    result_ : GLMMResult
        All of the above in one frozen object (what ``summary()`` reads).
    design_ : Design
        The fitted design that ``predict`` applies to new data.
    n_features_in_ : int
        Number of columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Column names of X, when X is a DataFrame."""


class MixedGLM(MixedModelMixin, BaseEstimator):
    """The fit and the link-scale prediction shared by the GLMM estimators."""

    _family = None  # "binomial" or "poisson", set by each estimator
    _parameter_constraints: dict = GLMM_CONSTRAINTS

    def _link(self):
        return "log"

    def _make_design(self):
        design = super()._make_design()
        design.response_family = self._family  # the response is read as glmer reads it
        design.offset = self.offset
        if isinstance(design, FormulaDesign):
            if self.exposure is not None:
                raise ValueError(
                    "formula is set, so exposure must be None: write the offset in the "
                    "formula, e.g. 'y ~ x + offset(log(exposure)) + (1 | g)'."
                )
        else:
            design.exposure = self.exposure
        return design

    def _fit(self, X, y, groups, sample_weight):
        X = self._validate_X(X, groups, reset=True)
        if X.shape[0] < 2:
            raise ValueError(
                f"Found n_samples={X.shape[0]}: a mixed model needs several rows per group."
            )
        self.design_ = self._make_design()
        arrays = self.design_.fit_transform(X, y, groups, sample_weight)
        self._check_has_groups(arrays)
        warn_degenerate(arrays, self._family)
        result = fit_glmm_result(
            arrays,
            self.design_,
            family=self._family,
            link=self._link(),
            n_agq=self.nAGQ,
            tol=self.tol,
            max_evals=self.max_iter,
            check_convergence=self.check_convergence,
        )
        self._set_fitted_attributes(result)
        self.linear_predictor_ = result.linear_predictor
        from .r_api import warn_about_glmm  # r_api imports this module

        warn_about_glmm(result)
        return self

    def _eta(self, X, groups, random_effects, with_std=False):
        """The linear predictor of new rows with the chosen random effects, and its
        standard error if asked (else None)."""
        check_is_fitted(self, "result_")
        X = self._validate_X(X, groups, reset=False)
        arrays = self.design_.transform(X, groups)
        result = self.result_
        include = select_factors(random_effects, list(self.design_.levels_))
        modes = {name: table.to_numpy() for name, table in result.random_effects.items()}
        eta = prediction_mean(arrays, result.fixed_effects.to_numpy(), modes, include)
        if not with_std:
            return eta, None
        state = glmm_prediction_state(result, list(self.design_.levels_))
        _ = state.covariance  # built with the BLAS's own threads
        with single_threaded_blas():  # row-wise products: threads only add contention
            variance = prediction_variance(state, arrays, include)
        return eta, np.sqrt(variance)

    def _inverse_link(self, eta):
        return get_family(self._family, self._link()).link.inverse(eta)

    def _mean(self, X, groups, random_effects):
        return self._inverse_link(self._eta(X, groups, random_effects)[0])

    @validate_params(
        {"random_effects": _RANDOM_EFFECTS, "return_std": ["boolean"]},
        prefer_skip_nested_validation=True,
    )
    def linear_predictor(self, X, groups=None, random_effects=None, return_std=False):
        """The linear predictor ``Xβ + Zb`` (+ offset), on the link scale.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like, default=None
            Group labels, when the model was fitted with ``groups=``.
        random_effects : None, "all", "none" or list of str, default=None
            Which grouping factors' random effects enter (lme4's ``re.form``): None
            or ``"all"`` every one, ``"none"`` or ``[]`` none (the population level),
            or a list of factor names. A level never seen in fit contributes nothing
            (see ``unseen_levels``).
        return_std : bool, default=False
            Also return each value's standard error, ``sqrt(aᵀ C⁻¹ a)`` with ``C`` the
            penalized weighted least-squares system of the last PIRLS step at the fitted
            θ (the GLMM's analogue of the LMM's joint covariance of modes and β;
            ``σ = 1``) and ``a = [(ZΛ)ᵢ, Xᵢ]`` over the included factors' known levels;
            an included factor's unseen level adds its prior variance ``zᵀ Σ z``. The
            uncertainty of θ is not included, and β's share is its PIRLS covariance
            (lme4's ``vcov(fit, use.hessian = FALSE)``).

        Returns
        -------
        eta : ndarray of shape (n_samples,)
            lme4's ``predict(fit, newdata, type = "link")``.
        eta_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        eta, std = self._eta(X, groups, random_effects, with_std=return_std)
        return (eta, std) if return_std else eta

    @validate_params(
        {"random_effects": _RANDOM_EFFECTS, "level": [Interval(Real, 0, 1, closed="neither")]},
        prefer_skip_nested_validation=True,
    )
    def predict_interval(self, X, groups=None, *, random_effects=None, level=0.95):
        """Intervals for the conditional mean, on the response scale.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like, default=None
        random_effects : None, "all", "none" or list of str, default=None
            As in :meth:`linear_predictor`.
        level : float, default=0.95
            Coverage probability.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            ``η ± z se(η)`` on the link scale (``z`` the normal quantile of
            ``(1 + level) / 2``, ``se`` from :meth:`linear_predictor`), mapped through
            the inverse link: an interval for a probability or an expected count.
        """
        eta, std = self._eta(X, groups, random_effects, with_std=True)
        return response_interval(eta, std, level, self._inverse_link)

    def summary(self, data_name=None):
        """lme4's ``summary()`` of the fit (glmer's layout), tables as DataFrames.

        Parameters
        ----------
        data_name : str, default=None
            Printed as lme4's ``Data:`` line when given.

        Returns
        -------
        Summary
        """
        from ..report.summary_glmm import GLMMSummary

        check_is_fitted(self, "result_")
        return GLMMSummary(self.result_, data_name=data_name)

    def __sklearn_tags__(self):
        return self._more_tags_for_groups(super().__sklearn_tags__())


def counts(y):
    """A count response as one column: a column vector is raveled (with scikit-learn's
    warning) and numbers held as objects become floats; anything else is left for the
    response reader to refuse by name."""
    if y is None or isinstance(y, (pd.Series, pd.Categorical)):
        return y
    values = np.asarray(y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = column_or_1d(values, warn=True)
    if values.dtype == object:
        try:
            return values.astype(float)
        except (TypeError, ValueError):
            return values
    return values


def glmm_prediction_state(result, factor_names) -> PredictionState:
    """The :class:`~sklmixed.prediction.PredictionState` of a GLMM fit, on the link scale.

    β and the modes of the result; per factor (in the fit's block order) its relative
    covariance factor and column scales; ``σ = 1``; and the joint covariance of the
    penalized weighted least-squares system of PIRLS at the optimum (its blocked
    factor and working cross-products), so :mod:`sklmixed.prediction` gives variances of
    the linear predictor.

    Parameters
    ----------
    result : GLMMResult
    factor_names : sequence of str
        The design's grouping factors, in the design's order.

    Returns
    -------
    PredictionState
    """
    fit = result.fit
    problem, pirls_state = fit.problem, fit.state
    plan = problem.plan
    names = [list(factor_names)[i] for i in plan.order]
    T = split_theta(fit.theta_scaled, problem.terms)
    factors = tuple(
        FactorState(name, b, result.random_effects[name].to_numpy(dtype=float), term.n_levels,
                    Tb, scale)  # fmt: skip
        for b, (name, term, Tb, scale) in enumerate(zip(names, problem.terms, T, plan.scales))
    )

    def covariance():
        return JointCovariance(pirls_state.factor, pirls_state.cp, problem.terms)

    return PredictionState(
        beta=result.fixed_effects.to_numpy(dtype=float),
        sigma=1.0,
        factors=factors,
        covariance_factory=covariance,
    )
