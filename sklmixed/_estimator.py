"""MixedLMRegressor: the scikit-learn face of the numerical core.

``__init__`` only stores parameters. ``fit`` validates, builds the model arrays
through a design (columns of X, or an lme4 formula), hands plain arrays to
:func:`sklmixed._core.fit_lmm` and keeps the named :class:`MixedLMResult`, which the
fitted attributes read. ``predict`` rebuilds the arrays of new data with the fitted
design.
"""

from __future__ import annotations

import operator
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions, make_constraint
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from ._core import RandomTerm, fit_lmm, least_squares_offset, rounding_noise
from ._design import (
    ArrayDesign,
    ModelArrays,
    as_frame_or_array,
    MAX_MAGNITUDE,
    drop_aliased_columns,
    encode_levels,
    warn_collinear_random_columns,
    is_dataframe,
)
from ._results import MixedLMResult, build_result
from .exceptions import SingularFitWarning

__all__ = ["MixedLMRegressor"]


class _FromResult:
    """A fitted attribute read from ``result_`` on access.

    ``result_`` builds its pandas tables on first access, so that fit does not pay for
    them. Not a data descriptor: a value set on the instance takes precedence until
    the next fit.

    Parameters
    ----------
    read : str or callable
        The result's attribute of that name, or a function of the result.
    """

    def __init__(self, read):
        self.read = operator.attrgetter(read) if isinstance(read, str) else read

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, model, owner=None):
        if model is None:
            return self
        result = model.__dict__.get("result_")
        if result is None:  # not fitted: the error Python gives for a missing attribute
            raise AttributeError(
                f"{type(model).__name__!r} object has no attribute {self.name!r}",
                name=self.name,
                obj=model,
            )
        return self.read(result)


def _has_intercept(beta):
    return len(beta) and beta.index[0] == "(Intercept)"


def _intercept(result):
    beta = result.fixed_effects
    return float(beta.iloc[0]) if _has_intercept(beta) else 0.0


def _coef(result):
    beta = result.fixed_effects
    return beta.to_numpy()[1:] if _has_intercept(beta) else beta.to_numpy()


class MixedLMRegressor(RegressorMixin, BaseEstimator):
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
        positions for arrays; a list for several grouping factors (crossed factors
        as separate columns; a nested factor as a column of combined labels such as
        ``"batch:cask"``). None: labels come from ``fit(..., groups=...)``.
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
    tol : float, default=1e-6
        Absolute tolerance on θ and on the criterion for BOBYQA's search (lme4 uses
        1e-8). With ``check_convergence``, the check's Newton step then takes θ
        closer to the optimum than BOBYQA at 1e-8 does alone (within about 1e-7 on
        the lme4 references); if that step fails, the search carries on at 1e-8.
    max_iter : int, default=100000
        Maximum number of evaluations of the criterion.
    check_convergence : bool, default=True
        Check the optimum with a finite-difference gradient and Hessian of the
        criterion and warn (``ConvergenceWarning``) when a local quadratic model
        predicts it can still fall noticeably. Costs about ``2 k²`` evaluations for
        ``k`` θ parameters.

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
    is_singular_ : bool
        Whether the fit is on the boundary (lme4's ``isSingular``).
    converged_ : bool
        Whether the optimizer stopped on its tolerance.
    n_iter_ : int
        Number of criterion evaluations.
    optimizer_record_ : OptimizerRecord
        What the optimizer did: start, optimum, evaluations, boundary parameters.
    convergence_check_ : ConvergenceCheck or None
        Gradient, Hessian and predicted decrease of the criterion at the optimum.
    result_ : MixedLMResult
        All of the above in one frozen object (what ``summary()`` reads).
    n_features_in_ : int
        Number of columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Column names of X, when X is a DataFrame.

    Notes
    -----
    Groups: labels seen in ``fit`` get their conditional modes added in ``predict``;
    a label never seen contributes zero, the population-level prediction. Without
    any grouping factor (``group=None`` and no ``groups=``) the model has no random
    effects and reduces to ordinary least squares (a warning says so); this keeps
    the estimator usable where scikit-learn calls ``fit(X, y)`` alone.

    Groups in scikit-learn tools (details in docs/sklearn.md):

    - A group column of X (``group="school"``) works everywhere: Pipeline,
      ``ColumnTransformer(..., remainder="passthrough",
      verbose_feature_names_out=False).set_output(transform="pandas")`` keeps it by
      name, and every scorer works because ``predict`` needs only X.
    - ``groups=`` outside X needs metadata routing
      (``sklearn.set_config(enable_metadata_routing=True)``) and
      ``set_fit_request(groups=True)``, ``set_predict_request(groups=True)``,
      ``set_score_request(groups=True)``. Pipeline, ``cross_validate``,
      ``cross_val_score``, ``GridSearchCV`` and nested CV then pass each fold's groups
      to ``fit`` and, with ``scoring=None``, to ``score``. Named scorers (``"r2"``,
      ``"neg_mean_squared_error"``, ``make_scorer``) call ``predict(X)`` without
      metadata, so they raise here; ``GridSearchCV.predict`` takes no metadata either
      (use ``best_estimator_.predict(X, groups=...)``).
    - With routing on, a model whose groups are a column of X but whose CV splitter
      needs ``groups`` (``GroupKFold``) says ``set_fit_request(groups=False)`` and
      ``set_score_request(groups=False)``.

    ``sample_weight`` are prior weights, not frequency weights: a weight of 2 is not
    two copies of a row, because the variance estimates count rows.

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
        "formula": [str, None],
        "group": [str, Integral, list, tuple, None],
        "random_effects": [list, tuple, dict, None],
        "random_intercept": ["boolean"],
        "fit_intercept": ["boolean"],
        "covariance": [StrOptions({"unstructured", "diagonal"})],
        "method": [StrOptions({"REML", "ML"})],
        "fixed_effects": [list, tuple, None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "check_convergence": ["boolean"],
    }

    # Fitted attributes, read from result_ (documented above).
    fixed_effects_ = _FromResult("fixed_effects")
    fixed_effects_se_ = _FromResult("fixed_effects_se")
    fixed_effects_cov_ = _FromResult("fixed_effects_cov")
    coef_ = _FromResult(_coef)
    intercept_ = _FromResult(_intercept)
    variance_components_ = _FromResult("variance_components")
    random_effects_ = _FromResult("random_effects")
    random_effects_cond_var_ = _FromResult("random_effects_cond_var")
    sigma_ = _FromResult("sigma")
    theta_ = _FromResult("theta")
    log_likelihood_ = _FromResult("log_likelihood")
    reml_criterion_ = _FromResult("reml_criterion")
    deviance_ = _FromResult("deviance")
    aic_ = _FromResult("aic")
    bic_ = _FromResult("bic")
    n_groups_ = _FromResult("n_groups")
    is_singular_ = _FromResult("is_singular")
    converged_ = _FromResult("converged")
    n_iter_ = _FromResult("n_iter")
    optimizer_record_ = _FromResult("optimizer")
    convergence_check_ = _FromResult("convergence_check")

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
        self.method = method
        self.fixed_effects = fixed_effects
        self.tol = tol
        self.max_iter = max_iter
        self.check_convergence = check_convergence

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads the names from inspect.signature(cls.__init__) on every
        # get_params, hence on every fit (parameter validation): ~20 µs of a ~1 ms fit.
        # They change only with __init__.
        init = cls.__init__
        cached = _PARAM_NAMES.get(cls)
        if cached is None or cached[0] is not init:
            cached = _PARAM_NAMES[cls] = (init, tuple(super()._get_param_names()))
        return list(cached[1])

    def _validate_params(self):
        # scikit-learn's version converts every constraint to a constraint object on
        # every fit (~60 µs). The converted ones are kept per constraints dict; a value
        # they reject goes to scikit-learn's version, which raises its usual error.
        checks = _constraint_checks(type(self), self._parameter_constraints)
        for name, value in self.get_params(deep=False).items():
            constraints = checks.get(name)
            if constraints is not None and not any(c.is_satisfied_by(value) for c in constraints):
                super()._validate_params()
                return

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Fixed features, random-effect features and group columns (or, with
            ``formula``, every variable the formula names).
        y : array-like of shape (n_samples,), default=None
            Response. May be None only with a ``formula`` whose left side names a
            column of X.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Group labels when they are not a column of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights (lme4's ``weights``): observation ``i`` has residual
            variance ``σ²/wᵢ``. Not frequency weights.

        Returns
        -------
        self : MixedLMRegressor
            The fitted estimator.
        """
        X = self._validate_X(X, groups, reset=True)
        self.design_, arrays = self._make_design(X, groups)
        if not arrays.factors:
            warnings.warn(
                "No grouping factor (group=None and no groups=): the model has no random "
                "effects and is fitted by ordinary least squares.",
                UserWarning,
                stacklevel=3,
            )
        y = self._response(X, y, arrays.X.shape[0])
        weights = _check_weights(sample_weight, y.shape[0])
        # X'X serves the rank check and, when every column is kept, the least squares.
        gram = arrays.X.T @ arrays.X
        keep = drop_aliased_columns(arrays.X, arrays.fixed_names, gram=gram)
        self.fixed_columns_ = keep
        X_fixed = _select_columns(arrays.X, keep)
        fixed_names = [arrays.fixed_names[i] for i in keep]
        kept = set(keep.tolist())
        dropped = [n for i, n in enumerate(arrays.fixed_names) if i not in kept]
        if y.shape[0] <= len(keep):
            raise ValueError(
                f"Found n_samples={y.shape[0]} for {len(keep)} fixed effect(s): estimating "
                "the residual variance needs more observations than fixed effects."
            )
        least_squares = least_squares_offset(X_fixed, y, gram if X_fixed is arrays.X else None)
        _check_residual_variation(least_squares[1], y, fixed_names)

        terms, levels = [], []
        for factor in arrays.factors:
            codes, lev = encode_levels(factor.labels, factor.name)
            _check_levels(factor.name, len(lev), y.shape[0], max(map(len, factor.blocks)))
            warn_collinear_random_columns(factor)
            levels.append(lev)
            terms.append(RandomTerm(codes, factor.columns, len(lev), factor.blocks))
        self.levels_ = {f.name: lev for f, lev in zip(arrays.factors, levels)}

        core = fit_lmm(
            X_fixed,
            y,
            terms,
            weights=weights,
            reml=self.method == "REML",
            xtol_abs=self.tol,
            ftol_abs=self.tol,
            max_evals=self.max_iter,
            check_convergence=self.check_convergence,
            least_squares=least_squares,
        )
        result = build_result(core, arrays.factors, fixed_names, levels, self.method, dropped)
        _check_finite_fit(result)
        self._set_result(result)
        # Every level was seen, so the solution's modes are indexed by the codes directly.
        sol = core.solution
        codes = [term.codes for term in terms]
        fitted = _linear_predictor(X_fixed, sol.beta, arrays.factors, sol.modes, codes)
        residuals = y - fitted
        if weights is not None:
            residuals *= np.sqrt(weights)
        self.scaled_residuals_ = residuals / result.sigma
        self._warn_about(result)
        return self

    def _validate_X(self, X, groups, *, reset):
        """X as a pandas DataFrame or a checked 2-D ndarray; sets or checks n_features_in_."""
        if is_dataframe(X):
            X = as_frame_or_array(X)
            names = X.columns.tolist()
            if reset and _unique_strings(names):
                # What validate_data(skip_check_array=True) records for such a frame,
                # without its generic dataframe inspection (a sizable share of a small fit).
                self.feature_names_in_ = np.asarray(names, dtype=object)
                self.n_features_in_ = len(names)
            elif reset or self.formula is None:
                # With a formula, new data need only the formula's variables, which the
                # formula design checks by name; other columns may differ from fit's.
                validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] == 0:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
                )
            if not reset and self.formula is None and not hasattr(self, "feature_names_in_"):
                # Fitted on an array: columns are read by position (validate_data warned).
                X = X.to_numpy()
            return X
        # Arrays get scikit-learn's checks (sparse, complex, 1-D, empty). Group columns
        # may hold labels of any type, so only an X of numeric features is converted;
        # with groups= an intercept-only model has no column in X at all.
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=False,
            dtype=None if self.group is not None else "numeric",
            ensure_min_features=0 if groups is not None else 1,
        )
        if not reset and hasattr(self, "feature_names_in_"):
            # Fitted on a DataFrame: columns are read by position (validate_data warned).
            X = pd.DataFrame(X, columns=self.feature_names_in_)
        return X

    def _make_design(self, X, groups):
        """The fitted design and the training data's model arrays."""
        if self.formula is None:
            design = ArrayDesign(
                group=self.group,
                random_effects=self.random_effects,
                fixed_effects=self.fixed_effects,
                random_intercept=self.random_intercept,
                fit_intercept=self.fit_intercept,
                covariance=self.covariance,
            )
        else:
            design = self._formula_design(X, groups)
        return design, design.fit_transform(X, groups)

    def _formula_design(self, X, groups):
        from ._design import FormulaArrays

        clash = [
            name
            for name in ("group", "random_effects", "fixed_effects")
            if getattr(self, name) is not None
        ]
        if clash:
            raise ValueError(
                f"formula is set, so {', '.join(clash)} must be None: the formula already "
                "says which variables are fixed effects, random effects and groups."
            )
        if groups is not None:
            raise ValueError(
                "formula is set, so groups= must be None: name the groups in the formula."
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "formula is set, so X must be a DataFrame holding the formula's variables."
            )
        return FormulaArrays(self.formula)

    def _model_arrays(self, X, groups) -> ModelArrays:
        return self.design_.transform(X, groups)

    def _response(self, X, y, n):
        if y is None:
            response = getattr(self.design_, "response", None)
            if response is None:
                raise ValueError(
                    "MixedLMRegressor requires y to be passed, but the target y is None: pass "
                    "the response as y, or use a formula whose left side names a column of X."
                )
            y = self.design_.response_vector(X)
        y = _float_array(y, "y")
        if not (y.ndim == 1 and y.size and np.isfinite(y).all()):
            # Only a y that fails these checks needs scikit-learn's, for their messages.
            y = column_or_1d(
                check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True
            )
        if y.shape[0] != n:
            raise ValueError(f"X has {n} rows but y has {y.shape[0]}.")
        return y

    def _set_result(self, result: MixedLMResult):
        self.result_ = result
        # Values set on the instance (by hand, or by a pickle of an older version) would
        # hide the new result's.
        for name in _FROM_RESULT & self.__dict__.keys():
            del self.__dict__[name]

    def _warn_about(self, result):
        if result.is_singular:
            warnings.warn(
                "boundary (singular) fit: a variance component is estimated as zero or a "
                "correlation as +/-1 (is_singular_ is True); the random-effects structure "
                "may be too rich for the data.",
                SingularFitWarning,
                stacklevel=3,
            )
        if not result.optimizer.converged:
            warnings.warn(
                f"The optimizer did not converge ({result.optimizer.message}) after "
                f"{result.n_iter} evaluations; raise max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif not result.converged:
            warnings.warn(
                f"The optimum is in doubt: {result.convergence_check.message}. "
                "Check the data's scaling and the random-effects structure.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -------------------------------------------------------------- predict
    def predict(self, X, groups=None):
        """Predict with fixed effects plus the conditional modes of known levels.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Same columns as in ``fit``.
        groups : array-like, default=None
            Group labels, when the model was fitted with ``groups=``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions; rows whose level was not seen in fit get the
            population-level (fixed-effects) prediction for that factor.
        """
        check_is_fitted(self, "result_")
        X = self._validate_X(X, groups, reset=False)
        arrays = self._model_arrays(X, groups)
        codes = [
            self.levels_[f.name].get_indexer(pd.Index(f.labels)).astype(np.intp)
            for f in arrays.factors
        ]
        # Row -1 of each padded table is zeros: unseen levels fall back to the population.
        padded = [
            np.vstack([modes, np.zeros((1, modes.shape[1]))])
            for modes in (self.random_effects_[f.name].to_numpy() for f in arrays.factors)
        ]
        return _linear_predictor(
            _select_columns(arrays.X, self.fixed_columns_),
            self.result_.fixed_effects.to_numpy(),
            arrays.factors,
            padded,
            codes,
        )

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

    def summary(self, data_name=None):
        """lme4's ``summary()`` of the fit: prints like R, tables as DataFrames.

        Parameters
        ----------
        data_name : str, default=None
            Printed as lme4's ``Data:`` line when given.

        Returns
        -------
        Summary
            Prints as lme4's ``print(summary(fit))``; its tables are DataFrame
            attributes and it renders as HTML in notebooks.
        """
        from ._report import Summary

        check_is_fitted(self, "result_")
        return Summary.from_estimator(self, data_name=data_name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.string = self.formula is not None
        # Group columns hold categorical labels; with this tag scikit-learn's common
        # checks feed integer-valued X, so a group column has a few repeated levels.
        tags.input_tags.categorical = self.formula is not None or self.group is not None
        return tags


# Per estimator class: (its __init__, its parameter names).
_PARAM_NAMES = weakref.WeakKeyDictionary()
# Per estimator class: (its _parameter_constraints, those as constraint objects).
_CONSTRAINT_CHECKS = weakref.WeakKeyDictionary()


def _constraint_checks(cls, parameter_constraints):
    """``{parameter: [constraint objects]}`` of a class's ``_parameter_constraints``."""
    cached = _CONSTRAINT_CHECKS.get(cls)
    if cached is None or cached[0] is not parameter_constraints:
        checks = {
            name: [make_constraint(c) for c in constraints]
            for name, constraints in parameter_constraints.items()
            if not (isinstance(constraints, str) and constraints == "no_validation")
        }
        cached = _CONSTRAINT_CHECKS[cls] = (parameter_constraints, checks)
    return cached[1]


# Names of the fitted attributes read from result_.
_FROM_RESULT = frozenset(
    name for name, value in vars(MixedLMRegressor).items() if isinstance(value, _FromResult)
)


def _linear_predictor(X_fixed, beta, factors, modes, codes):
    """``Xβ + Σ Z b``, with each factor's modes looked up by its rows' level codes."""
    out = X_fixed @ beta
    for factor, factor_modes, code in zip(factors, modes, codes):
        Z = factor.columns
        if Z.shape[1] == 1 or Z.flags.f_contiguous:
            # Column by column: half the time of the einsum on Fortran-ordered columns (a
            # formula's), which there sums the same products in the same order.
            zb = Z[:, 0] * np.take(factor_modes[:, 0], code)
            for j in range(1, Z.shape[1]):
                zb += Z[:, j] * np.take(factor_modes[:, j], code)
            out += zb
        else:
            # np.take gathers rows an order of magnitude faster than factor_modes[code].
            out += np.einsum("ij,ij->i", Z, np.take(factor_modes, code, axis=0))
    return out


def _unique_strings(names):
    """Whether ``names`` are all ``str``, distinct, and not none."""
    return bool(names) and all(type(n) is str for n in names) and len(set(names)) == len(names)


def _select_columns(X, keep):
    """``X[:, keep]``, without a copy when every column is kept (the usual case)."""
    return X if keep.size == X.shape[1] else X[:, keep]


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = _float_array(sample_weight, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},); got {w.shape}.")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(
            "sample_weight must be finite and strictly positive: prior weights give row i "
            "the residual variance sigma^2/w_i, undefined for a zero weight."
        )
    return w


def _float_array(values, name):
    """``values`` as a float ndarray; pandas NA becomes NaN (refused next, by name)."""
    values = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if values.dtype.kind == "O":
        values = np.where(pd.isna(values), np.nan, values)
    try:
        if values.dtype.kind not in "biufO":
            raise TypeError
        return values.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric; got values of dtype {values.dtype}.") from None


def _check_residual_variation(resid, y, names):
    """Refuse a y whose squares overflow, or that the fixed part fits exactly.

    ``resid`` are the least-squares residuals of y on the fixed effects. With no
    residual variation the residual variance is zero and the likelihood infinite
    (lme4 reports ``logLik = Inf`` or a number made of rounding errors).
    """
    y_min, y_max = y.min(), y.max()
    top = max(abs(y_min), abs(y_max))
    if top > MAX_MAGNITUDE:
        raise ValueError(
            f"y has values up to {top:.3g}, beyond {MAX_MAGNITUDE:.0e}: their squares "
            "overflow float64. Rescale y."
        )
    if y_max == y_min:
        raise ValueError(
            f"y is constant (every value is {y[0]:g}): there is no variation to model."
        )
    rms = float(np.sqrt(np.mean(resid**2)))
    if rms < 1.0 / MAX_MAGNITUDE:
        raise ValueError(
            f"y has no residual variation (root mean square {rms:.3g} after the fixed "
            f"effects {list(names)}): y is constant or an exact linear function of the fixed "
            "effects, or too small to square; the residual variance would be zero and the "
            "likelihood infinite."
        )
    if rounding_noise(resid, y):  # the rule that also sends the fit to the blocked factor
        warnings.warn(
            f"y is an exact linear function of the fixed effects {list(names)} up to rounding "
            f"(residual root mean square {rms:.3g}): sigma_ is about 0 and the "
            "log-likelihood measures rounding errors.",
            UserWarning,
            stacklevel=3,
        )


def _check_finite_fit(result):
    """Refuse to report a mixed model whose criterion is not finite (lme4: logLik = Inf).

    Without grouping factors the fit is ordinary least squares, where an exact fit is a
    legitimate answer (sigma_ = 0, log-likelihood +inf; scikit-learn's checks fit y = x0).
    """
    if result.n_groups and not np.isfinite(result.log_likelihood):
        raise ValueError(
            f"The log-likelihood at the estimate is {result.log_likelihood}: y leaves no "
            "residual variation once the fixed effects "
            f"{list(result.fixed_effects.index)} and the random effects are fitted "
            f"(sigma = {result.sigma:.3g}), so the model has no maximum-likelihood estimate. "
            "Check y (constant within groups? a linear function of the features?) and the "
            "number of rows per parameter."
        )


def _check_levels(name, n_levels, n_obs, block_size=1):
    # lme4 refuses all three: a variance needs at least two levels and some replication.
    if n_levels < 2:
        raise ValueError(
            f"Grouping factor {name!r} has {n_levels} level; a random effect needs at least 2."
        )
    if n_levels >= n_obs:
        raise ValueError(
            f"Grouping factor {name!r} has as many levels ({n_levels}) as observations "
            f"({n_obs}): its variance cannot be told apart from the residual variance."
        )
    if n_levels * block_size >= n_obs:
        raise ValueError(
            f"Grouping factor {name!r} has {n_levels} levels x {block_size} correlated random "
            f"effects = {n_levels * block_size}, not fewer than the {n_obs} observations: the "
            "random-effects parameters and the residual variance are unidentifiable (lme4 "
            "refuses this too)."
        )
