"""MixedLMRegressor: lme4's ``lmer`` as a scikit-learn regressor."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .. import exceptions
from ..exceptions import UnboundedLikelihoodWarning
from .._core import Criterion, fit_lmm
from .._core.progress import Progress
from ..design.checks import check_residual_variation
from ..distributed import is_dask_collection
from ..prediction import linear_predictor
from ..result import build_result
from ..stats import reduce
from ._base import DESIGN_CONSTRAINTS, MixedModelMixin
from ._inference import InferenceMixin
from ._prediction import PredictionMixin

__all__ = ["MixedLMRegressor"]


class MixedLMRegressor(
    InferenceMixin, PredictionMixin, MixedModelMixin, RegressorMixin, BaseEstimator
):
    """Linear mixed-effects model fitted by REML or ML, as lme4's ``lmer``.

    The model is ``y = Xβ + Zb + ε`` with random effects ``b ~ N(0, Σ)`` per level of
    each grouping factor and ``ε ~ N(0, σ²/w)``. Estimates minimize lme4's profiled
    deviance (ML) or REML criterion over the relative covariance factor θ, with β and σ
    profiled out (Bates, Mächler, Bolker and Walker 2015).

    Parameters
    ----------
    formula : str, default=None
        An lme4 formula such as ``"standLRT * schavg + (1 + standLRT | school)"``
        (a left side ``normexam ~ ...`` is allowed: it names the response column of X
        used when ``fit`` gets ``y=None``; a ``y`` passed to ``fit`` always wins).
        X must then be a DataFrame holding every variable the formula names, and
        ``group``, ``random_effects`` and ``fixed_effects`` must be left unset.
    group : str, int or list, default=None
        Column(s) of X holding group labels: names for DataFrames, integer
        positions for arrays; a list for several grouping factors (crossed factors,
        or nested ones with ``nested=True``). None: labels come from
        ``fit(..., groups=...)``.
    random_effects : list or dict, default=None
        Columns of X whose slopes vary by group, besides the random intercept. A
        list applies to every grouping factor; a dict ``{group: [columns]}`` chooses
        per factor. None: random intercepts only.
    random_intercept : bool, default=True
        Whether each grouping factor has a random intercept.
    fit_intercept : bool, default=True
        Whether the fixed part has an intercept, ``"(Intercept)"``.
    covariance : {"unstructured", "diagonal"}, default="unstructured"
        Covariance of a factor's random effects: correlated intercept and slopes
        (lme4's ``(1 + x | g)``) or independent ones (``(1 + x || g)``).
    method : {"REML", "ML"}, default="REML"
        Restricted or full maximum likelihood.
    fixed_effects : list, default=None
        Columns of X that are fixed features; None: every column but the group
        columns (random-effect columns are fixed features too, as in ``x + (x | g)``).
    weights : str or int, default=None
        The column of X holding lme4's prior weights (``lmer(weights = w)``): row ``i``
        has residual variance ``σ²/wᵢ``. It is not a feature. For scikit-learn's
        frequency weights use ``fit(..., sample_weight=...)``.
    nested : bool, default=False
        Whether the ``group`` columns (or the columns of ``groups=``) are nested,
        outermost first: ``group=["community", "household"], nested=True`` is lme4's
        ``(1 | community/household)``, so household ids reused in different
        communities are different households. False: crossed factors.
    unseen_levels : {"population", "warn", "error"}, default="population"
        What ``predict`` does with a group level never seen in fit: the
        population-level prediction (no random effect, what ``GroupKFold`` needs),
        the same with a warning, or an error.
    na_action : {"raise", "omit"}, default="raise"
        What ``fit`` does with a row missing a value (NaN, None, NA) of a variable the
        model uses (a feature, a group label, the weights, the response): refuse it,
        naming the column, or leave the row out as R's ``na.omit`` (``lmer``'s
        default); the rows left out are ``na_dropped_``. Columns the model does not
        use never count. ``predict`` always refuses missing values.
    tol : float, default=1e-6
        Absolute tolerance on θ and on the criterion for BOBYQA's search (lme4 uses
        1e-8). With ``check_convergence``, the check's Newton step then takes θ
        closer to the optimum than BOBYQA at 1e-8 does alone; if that step fails,
        the search carries on at 1e-8.
    max_iter : int, default=100000
        Maximum number of evaluations of the criterion.
    check_convergence : bool, default=True
        Check the optimum with a finite-difference gradient and Hessian of the
        criterion and warn (``ConvergenceWarning``) when a local quadratic model
        predicts it can still fall noticeably. Costs about ``2 k²`` evaluations for
        ``k`` θ parameters.
    verbose : int, default=0
        Progress of long fits on stderr: 1 prints the evaluations so far, the lowest
        criterion value and the elapsed time at most once a second and at the end;
        2 prints a line per evaluation. A fit from a Dask DataFrame also shows Dask's
        own progress bar for each pass over the data.

    Attributes
    ----------
    fixed_effects_ : pandas.Series
        Fixed-effect estimates β, ``"(Intercept)"`` first (lme4's ``fixef``).
    fixed_effects_se_ : pandas.Series
        Their standard errors.
    fixed_effects_cov_ : pandas.DataFrame
        Their covariance matrix (lme4's ``vcov``).
    coef_ : ndarray of shape (n_fixed,)
        Fixed-effect coefficients without the intercept, in ``fixed_effects_`` order.
    intercept_ : float
        The fixed intercept (0.0 when ``fit_intercept=False``).
    variance_components_ : pandas.DataFrame
        Columns ``group, var1, var2, vcov, sdcor``: one row per variance and per
        covariance, last row ``Residual`` (lme4's ``as.data.frame(VarCorr(fit))``).
    random_effects_ : dict of str to pandas.DataFrame
        Conditional modes (BLUPs) per grouping factor, one row per level (lme4's
        ``ranef``).
    random_effects_cond_var_ : dict of str to ndarray of shape (n_levels, q, q)
        Conditional covariance of each level's modes (lme4's ``condVar``).
    sigma_ : float
        Residual standard deviation.
    theta_ : ndarray
        Relative covariance factor parameters, in lme4's order.
    log_likelihood_ : float
        REML or ML log-likelihood as fitted (lme4's ``logLik``).
    reml_criterion_ : float or None
        −2 × REML log-likelihood (REML fits).
    deviance_ : float
        −2 × ML log-likelihood at the fitted parameters (lme4's
        ``deviance(fit, REML = FALSE)``).
    aic_, bic_ : float
        As lme4 reports them.
    n_groups_ : dict of str to int
        Number of levels of each grouping factor.
    levels_ : dict of str to pandas.Index
        The levels of each grouping factor, in R's order.
    is_singular_ : bool
        Whether the fit is on the boundary (lme4's ``isSingular``).
    converged_ : bool
        Whether the optimizer stopped on its tolerance and the check passed.
    n_iter_ : int
        Number of criterion evaluations.
    optimizer_record_ : OptimizerRecord
        What the optimizer did: start, optimum, evaluations, boundary parameters.
    convergence_check_ : ConvergenceCheck or None
        Gradient, Hessian and predicted decrease of the criterion at the optimum.
    fitted_ : ndarray of shape (n_samples,)
        Fitted values with every random effect (lme4's ``fitted``).
    residuals_ : ndarray of shape (n_samples,)
        Response residuals ``y - fitted_`` (lme4's ``residuals(type = "response")``).
    scaled_residuals_ : ndarray of shape (n_samples,)
        Residuals times the square root of the prior weights, divided by σ (what
        lme4's summary shows).
    na_dropped_ : pandas.Index
        The rows left out for missing values (``na_action="omit"``): their labels in
        the DataFrame's index, or their positions for arrays (R's ``na.action``);
        empty when none were. ``fitted_`` and the residuals are those of the rows kept.
    result_ : MixedLMResult
        All of the above in one frozen object, with the model's structure (what
        ``summary()``, inference and prediction read).
    design_ : Design
        The fitted design that ``predict`` applies to new data.
    n_features_in_ : int
        Number of columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Column names of X, when X is a DataFrame.

    Notes
    -----
    Groups: labels seen in ``fit`` get their conditional modes added in ``predict``;
    a label never seen contributes zero, the population-level prediction (see
    ``unseen_levels``). A model needs at least one grouping factor: without one
    (``group=None`` and no ``groups=``) ``fit`` raises a ``ValueError`` that says how
    to give the groups, rather than quietly fitting ordinary least squares (what
    ``cross_val_score(model, X, y, groups=g)`` would otherwise do, since it gives
    ``groups`` to the splitter only).

    Groups in scikit-learn tools (details in the user guide):

    - A group column of X (``group="school"``) works everywhere: Pipeline,
      ``ColumnTransformer(..., remainder="passthrough",
      verbose_feature_names_out=False).set_output(transform="pandas")`` keeps it by
      name, and every scorer works because ``predict`` needs only X.
    - ``groups=`` outside X needs metadata routing
      (``sklearn.set_config(enable_metadata_routing=True)``); the estimator then
      requests ``groups`` for ``fit``, ``predict`` and ``score`` by default (and
      declines them when X holds its groups, so a splitter's groups pass by).
      scikit-learn's named scorers call ``predict(X)`` without metadata: use
      ``scoring=None`` (R²) or :func:`sklmixed.grouped_scorer`.

    Weights: ``fit(sample_weight=w)`` has scikit-learn's meaning (a weight of 2 is
    the row twice). lme4's prior weights, which scale each row's residual variance
    (``σ²/wᵢ``) without counting it more, are the column of X named by ``weights``
    (``lmer(..., weights=...)`` fills it).

    Examples
    --------
    >>> from sklmixed import MixedLMRegressor
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam(as_frame=True).frame
    >>> model = MixedLMRegressor(group="school", random_effects=["standLRT"])
    >>> model = model.fit(exam[["standLRT", "school"]], exam["normexam"])
    >>> model.fixed_effects_.round(4).to_dict()
    {'(Intercept)': -0.0116, 'standLRT': 0.5565}
    >>> round(model.sigma_, 4)
    0.7441
    """

    _parameter_constraints: dict = {
        **DESIGN_CONSTRAINTS,
        "method": [StrOptions({"REML", "ML"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "check_convergence": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        formula=None,
        group=None,
        random_effects=None,
        random_intercept=True,
        fit_intercept=True,
        covariance="unstructured",
        method="REML",
        fixed_effects=None,
        weights=None,
        nested=False,
        unseen_levels="population",
        na_action="raise",
        tol=1e-6,
        max_iter=100_000,
        check_convergence=True,
        verbose=0,
    ):
        self.formula = formula
        self.group = group
        self.random_effects = random_effects
        self.random_intercept = random_intercept
        self.fit_intercept = fit_intercept
        self.covariance = covariance
        self.method = method
        self.fixed_effects = fixed_effects
        self.weights = weights
        self.nested = nested
        self.unseen_levels = unseen_levels
        self.na_action = na_action
        self.tol = tol
        self.max_iter = max_iter
        self.check_convergence = check_convergence
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Fixed features, random-effect features and group columns (or, with
            ``formula``, every variable the formula names). A Dask DataFrame is
            reduced partition by partition on its workers (``docs/distributed.md``):
            ``fitted_`` and the residuals are then None, ``predict`` gives them lazily.
        y : array-like of shape (n_samples,), default=None
            Response (a Dask Series partitioned as X when X is a Dask DataFrame).
            May be None only with a ``formula`` whose left side names a column of X.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Group labels when they are not a column of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights, scikit-learn's meaning: a weight of ``k`` counts the
            row ``k`` times, 0 leaves it out. lme4's prior weights (precision) are
            the ``weights`` parameter.

        Returns
        -------
        self : MixedLMRegressor
            The fitted estimator.
        """
        if is_dask_collection(X):
            return self._fit_dask(X, y, groups, sample_weight)
        X = self._validate_X(X, groups, reset=True)
        self.design_ = self._make_design()
        arrays = self.design_.fit_transform(X, y, groups, sample_weight)
        self._check_has_groups(arrays)
        stats = reduce(arrays)
        check_residual_variation(stats, arrays.fixed_names)
        progress = self._progress()
        fit = fit_lmm(
            Criterion(stats, reml=self.method == "REML"),
            tol=self.tol,
            max_evals=self.max_iter,
            check_convergence=self.check_convergence,
            callback=progress,
        )
        if progress is not None:
            progress.close()
        # Every level was seen, so the modes are indexed by the codes directly.
        modes = [None] * len(arrays.factors)
        for b, i in enumerate(stats.plan.order):
            modes[i] = fit.solution.modes[b]
        fitted = linear_predictor(arrays.X, fit.solution.beta, arrays.factors, modes, arrays.offset)
        result = build_result(fit, arrays, self.design_, self.method, fitted)
        self._set_fitted_attributes(result)
        self.sigma_ = result.sigma
        self.reml_criterion_ = result.reml_criterion
        _warn_if_unbounded(fit, arrays.factors, arrays.fixed_names)
        self._warn_about(result)
        return self

    def _fit_dask(self, X, y, groups, sample_weight):
        """``fit`` from a Dask DataFrame (:mod:`sklmixed.distributed`): the same road,
        with the statistics reduced on the workers."""
        from ..distributed.fit import check_dask_input, fit_linear

        check_dask_input(X, y, groups, sample_weight)
        names = list(X.columns)
        self.n_features_in_ = len(names)
        if all(type(n) is str for n in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        self.design_ = self._make_design()
        progress = self._progress()
        result = fit_linear(
            self.design_, X, y, method=self.method, tol=self.tol, max_iter=self.max_iter,
            check_convergence=self.check_convergence, verbose=self.verbose, callback=progress,
            check_arrays=self._check_has_groups,
        )  # fmt: skip
        if progress is not None:
            progress.close()
        self._set_fitted_attributes(result)
        self.sigma_ = result.sigma
        self.reml_criterion_ = result.reml_criterion
        _warn_if_unbounded(result.fit, result.training_factors, self.design_.fixed_names_)
        self._warn_about(result)
        return self

    def _progress(self):
        """The optimizer's progress display (``verbose``), or None."""
        if not self.verbose:
            return None
        label = "REML criterion" if self.method == "REML" else "deviance"
        return Progress(label, verbose=self.verbose)

    def score(self, X, y, groups=None, sample_weight=None):
        """R² of ``predict(X, groups)`` against ``y``.

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
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        return self._more_tags_for_groups(super().__sklearn_tags__())


def _warn_if_unbounded(fit, factors, fixed_names):
    """Say so when a mixed model's likelihood has no maximum (lme4: ``logLik = Inf``).

    Where the random effects reproduce y (y constant within groups, or a function of
    the features), the criterion falls without bound as θ grows. The rule that
    detects it (r² below 1e3 machine epsilons of yᵀy) is scaled to the data, so the
    same data warn on every machine. Without grouping factors the fit is ordinary
    least squares, where an exact fit is a legitimate answer (scikit-learn's checks
    fit y = x0).
    """
    if factors and (fit.unbounded or not np.isfinite(fit.solution.deviance)):
        exceptions.warn(
            "The log-likelihood has no maximum: y leaves no residual variation once the "
            f"fixed effects {list(fixed_names)} and the random effects of "
            f"{[f.name for f in factors]} are fitted, so the likelihood grows without "
            "bound as the residual variance falls to 0 (log_likelihood_ is inf; the "
            "variance components are where the optimizer stopped, not estimates). Check y "
            "(constant within groups? a linear function of the features?) and the number "
            "of rows per parameter.",
            UnboundedLikelihoodWarning,
        )
