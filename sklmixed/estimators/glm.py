"""MixedLogisticRegression and MixedPoissonRegressor: lme4's ``glmer`` as scikit-learn
estimators.

Both take :class:`MixedLMRegressor`'s design (columns, groups, formula, unseen-level
policy, missing values) and fit through the same road as :func:`sklmixed.glmer`:
design -> ``fit_glmm`` (PIRLS, Laplace or adaptive Gauss-Hermite) -> a frozen
``GLMMResult`` -> fitted attributes. What differs from the LMM is only the response
(binary labels, counts) and the scale of the predictions (the inverse link).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.special import log_expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._core.families import get_family
from ..design.formula import FormulaDesign
from ..design.response import warn_degenerate
from ..prediction import prediction_mean, select_factors
from ..result_glmm import fit_glmm_result
from ._base import DESIGN_CONSTRAINTS, MixedModelMixin
from ._labels import encode_binary_labels

__all__ = ["MixedLogisticRegression", "MixedPoissonRegressor"]

_RANDOM_EFFECTS = [None, str, list, tuple]

_GLMM_CONSTRAINTS: dict = {
    **DESIGN_CONSTRAINTS,
    "nAGQ": [Interval(Integral, 0, 25, closed="both")],
    "offset": [str, Integral, None],
    "exposure": [str, Integral, None],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "check_convergence": ["boolean"],
}

# The parameters both estimators document the same way (numpydoc, pasted below).
_SHARED_PARAMETERS = """
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

_SHARED_ATTRIBUTES = """
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


class _MixedGLM(MixedModelMixin, BaseEstimator):
    """The fit and the link-scale prediction shared by the GLMM estimators."""

    _family = None  # "binomial" or "poisson", set by each estimator
    _parameter_constraints: dict = _GLMM_CONSTRAINTS

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

    def _eta(self, X, groups, random_effects):
        """The linear predictor of new rows with the chosen random effects."""
        check_is_fitted(self, "result_")
        X = self._validate_X(X, groups, reset=False)
        arrays = self.design_.transform(X, groups)
        result = self.result_
        include = select_factors(random_effects, list(self.design_.levels_))
        modes = {name: table.to_numpy() for name, table in result.random_effects.items()}
        return prediction_mean(arrays, result.fixed_effects.to_numpy(), modes, include)

    def _inverse_link(self, eta):
        return get_family(self._family, self._link()).link.inverse(eta)

    def _mean(self, X, groups, random_effects):
        return self._inverse_link(self._eta(X, groups, random_effects))

    @validate_params({"random_effects": _RANDOM_EFFECTS}, prefer_skip_nested_validation=True)
    def linear_predictor(self, X, groups=None, random_effects=None):
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

        Returns
        -------
        ndarray of shape (n_samples,)
            lme4's ``predict(fit, newdata, type = "link")``.
        """
        return self._eta(X, groups, random_effects)

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


class MixedLogisticRegression(ClassifierMixin, _MixedGLM):
    __doc__ = f"""Binary outcome with random effects: lme4's ``glmer(family = binomial)``.

    The model is ``P(y = classes_[1]) = g⁻¹(Xβ + Zb)``, ``b ~ N(0, Σ)`` per level of
    each grouping factor, with the logit, probit or complementary log-log link ``g``.
    Estimates maximize lme4's Laplace (or adaptive Gauss-Hermite) approximation of the
    marginal likelihood, the conditional modes found by penalized iteratively
    reweighted least squares (Bates, Mächler, Bolker and Walker 2015).

    Parameters
    ----------{_SHARED_PARAMETERS}
    link : {{"logit", "probit", "cloglog"}}, default="logit"
        The link function.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels, failure first (R's first factor level): a pandas
        Categorical's order of categories, sorted order otherwise (so ``0, 1``,
        ``False, True``, ``"N", "Y"``). ``predict_proba``'s columns follow it.{_SHARED_ATTRIBUTES}

    Notes
    -----
    ``decision_function`` returns the log-odds of ``classes_[1]``: the linear
    predictor itself with the logit link, ``logit(g⁻¹(η))`` with the others, so that
    its sign always agrees with ``predict`` (scikit-learn's contract). The linear
    predictor on any link's scale is :meth:`linear_predictor`.

    Groups, weights and scikit-learn's tools work as for
    :class:`~sklmixed.MixedLMRegressor` (docs/sklearn.md): a group column of X works
    everywhere; ``groups=`` outside X needs metadata routing. Named scorers such as
    ``"roc_auc"`` and ``"neg_log_loss"`` call ``predict_proba(X)`` only, so they see the
    groups only when X holds them.

    Examples
    --------
    >>> from sklmixed import MixedLogisticRegression
    >>> from sklmixed.datasets import load_contraception
    >>> data = load_contraception().frame
    >>> model = MixedLogisticRegression(formula="use ~ age + urban + (1 + urban | district)")
    >>> model = model.fit(data)
    >>> model.classes_.tolist()
    ['N', 'Y']
    >>> model.fixed_effects_.round(3).to_dict()
    {{'(Intercept)': -0.695, 'age': -0.014, 'urbanY': 0.737}}
    """

    _parameter_constraints: dict = {
        **_GLMM_CONSTRAINTS,
        "link": [StrOptions({"logit", "probit", "cloglog"})],
    }
    _family = "binomial"

    def __init__(
        self,
        *,
        formula=None,
        group=None,
        random_effects=None,
        random_intercept=True,
        fit_intercept=True,
        covariance="unstructured",
        link="logit",
        nAGQ=1,  # noqa: N803 - lme4's name
        fixed_effects=None,
        weights=None,
        offset=None,
        exposure=None,
        nested=False,
        unseen_levels="population",
        na_action="raise",
        tol=1e-6,
        max_iter=100_000,
        check_convergence=True,
    ):
        self.formula = formula
        self.group = group
        self.random_effects = random_effects
        self.random_intercept = random_intercept
        self.fit_intercept = fit_intercept
        self.covariance = covariance
        self.link = link
        self.nAGQ = nAGQ
        self.fixed_effects = fixed_effects
        self.weights = weights
        self.offset = offset
        self.exposure = exposure
        self.nested = nested
        self.unseen_levels = unseen_levels
        self.na_action = na_action
        self.tol = tol
        self.max_iter = max_iter
        self.check_convergence = check_convergence

    def _link(self):
        return self.link

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Features and group columns (or, with ``formula``, its variables).
        y : array-like of shape (n_samples,), default=None
            Two distinct labels of any type. None only with a ``formula`` whose left
            side names a column of X.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Group labels when they are not a column of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: a weight of ``k`` counts the row ``k`` times.

        Returns
        -------
        self : MixedLogisticRegression
        """
        if y is None:
            # The formula's left side, read as glmer reads it (a two-level factor,
            # logical, 0/1, a proportion with weights, cbind(successes, failures)).
            self._fit(X, None, groups, sample_weight)
            levels = self.design_.response_.levels
            self.classes_ = np.asarray(levels if levels is not None else (0, 1))
            return self
        self.classes_, codes = encode_binary_labels(y)
        return self._fit(X, codes, groups, sample_weight)

    def predict_proba(self, X, groups=None, random_effects=None):
        """Probabilities of ``classes_[0]`` and ``classes_[1]``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like, default=None
        random_effects : None, "all", "none" or list of str, default=None
            As in :meth:`linear_predictor`.

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        mu = self._mean(X, groups, random_effects)
        return np.column_stack([1.0 - mu, mu])

    def predict_log_proba(self, X, groups=None, random_effects=None):
        """Log-probabilities of ``classes_[0]`` and ``classes_[1]``.

        Parameters
        ----------
        X, groups, random_effects
            As in :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        log_odds = self.decision_function(X, groups, random_effects)
        return np.column_stack([log_expit(-log_odds), log_expit(log_odds)])

    def decision_function(self, X, groups=None, random_effects=None):
        """Log-odds of ``classes_[1]``; positive where ``predict`` says ``classes_[1]``.

        Parameters
        ----------
        X, groups, random_effects
            As in :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples,)
            The linear predictor with the logit link; ``logit(g⁻¹(η))`` otherwise.
        """
        eta = self._eta(X, groups, random_effects)
        if self.link == "logit":
            return eta
        mu = self._inverse_link(eta)
        with np.errstate(divide="ignore"):
            return np.log(mu) - np.log1p(-mu)

    def predict(self, X, groups=None, random_effects=None):
        """The more probable label of each row.

        Parameters
        ----------
        X, groups, random_effects
            As in :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        positive = self.decision_function(X, groups, random_effects) > 0
        return self.classes_[positive.astype(int)]

    def score(self, X, y, groups=None, sample_weight=None):
        """Accuracy of ``predict(X, groups)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


class MixedPoissonRegressor(RegressorMixin, _MixedGLM):
    __doc__ = f"""Counts with random effects: lme4's ``glmer(family = poisson)``.

    The model is ``y ~ Poisson(μ)``, ``log μ = Xβ + Zb`` (+ offset), ``b ~ N(0, Σ)``
    per level of each grouping factor, fitted as :class:`MixedLogisticRegression`
    (Laplace or adaptive Gauss-Hermite approximation, PIRLS for the modes).

    Parameters
    ----------{_SHARED_PARAMETERS}

    Attributes
    ----------{_SHARED_ATTRIBUTES}

    Notes
    -----
    ``score`` is D², the fraction of Poisson deviance explained, as scikit-learn's
    ``PoissonRegressor``. ``sample_weight`` counts rows (a weight of 2 is the row
    twice). Rates: give the exposure column (``exposure="years"``) and ``predict``
    returns each row's expected count for its exposure; divide by it for the rate.

    Examples
    --------
    >>> from sklmixed import MixedPoissonRegressor
    >>> from sklmixed.datasets import load_grouseticks
    >>> ticks = load_grouseticks().frame
    >>> model = MixedPoissonRegressor(formula="TICKS ~ YEAR + cHEIGHT + (1 | BROOD)")
    >>> model = model.fit(ticks)
    >>> round(model.log_likelihood_, 2)
    -989.04
    """

    _family = "poisson"

    def __init__(
        self,
        *,
        formula=None,
        group=None,
        random_effects=None,
        random_intercept=True,
        fit_intercept=True,
        covariance="unstructured",
        nAGQ=1,  # noqa: N803 - lme4's name
        fixed_effects=None,
        weights=None,
        offset=None,
        exposure=None,
        nested=False,
        unseen_levels="population",
        na_action="raise",
        tol=1e-6,
        max_iter=100_000,
        check_convergence=True,
    ):
        self.formula = formula
        self.group = group
        self.random_effects = random_effects
        self.random_intercept = random_intercept
        self.fit_intercept = fit_intercept
        self.covariance = covariance
        self.nAGQ = nAGQ
        self.fixed_effects = fixed_effects
        self.weights = weights
        self.offset = offset
        self.exposure = exposure
        self.nested = nested
        self.unseen_levels = unseen_levels
        self.na_action = na_action
        self.tol = tol
        self.max_iter = max_iter
        self.check_convergence = check_convergence

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Features, group, offset and exposure columns (or the formula's variables).
        y : array-like of shape (n_samples,), default=None
            Non-negative counts. None only with a ``formula`` whose left side names a
            column of X.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Group labels when they are not a column of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: a weight of ``k`` counts the row ``k`` times.

        Returns
        -------
        self : MixedPoissonRegressor
        """
        return self._fit(X, _counts(y), groups, sample_weight)

    def predict(self, X, groups=None, random_effects=None):
        """Expected counts ``exp(Xβ + Zb + offset)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like, default=None
        random_effects : None, "all", "none" or list of str, default=None
            As in :meth:`linear_predictor`.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._mean(X, groups, random_effects)

    def score(self, X, y, groups=None, sample_weight=None):
        """D², the fraction of Poisson deviance explained (``d2_tweedie_score``, power 1).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        from sklearn.metrics import d2_tweedie_score

        return d2_tweedie_score(
            y, self.predict(X, groups=groups), sample_weight=sample_weight, power=1
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


def _counts(y):
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
