"""What every mixed-model estimator shares: the design parameters, the validation of X,
the fitted attributes read from the result, and the summary."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import exceptions
from .._names import INTERCEPT
from ..design.columns import ColumnDesign
from ..design.formula import FormulaDesign
from ..design.frames import as_frame_or_array, is_dataframe
from ..design.levels import UNSEEN_LEVEL_POLICIES
from ..design.missing import NA_ACTIONS
from ..exceptions import SingularFitWarning

__all__ = ["MixedModelMixin", "DESIGN_CONSTRAINTS"]

# The parameters of the design, shared by every estimator.
DESIGN_CONSTRAINTS: dict = {
    "formula": [str, None],
    "group": [str, Integral, list, tuple, None],
    "random_effects": [list, tuple, dict, None],
    "random_intercept": ["boolean"],
    "fit_intercept": ["boolean"],
    "covariance": [StrOptions({"unstructured", "diagonal"})],
    "fixed_effects": [list, tuple, None],
    "weights": [str, Integral, None],
    "nested": ["boolean"],
    "unseen_levels": [StrOptions(set(UNSEEN_LEVEL_POLICIES))],
    "na_action": [StrOptions(set(NA_ACTIONS))],
}


class MixedModelMixin:
    """Design, validation and fitted attributes shared by the mixed-model estimators."""

    def _make_design(self):
        """A new, unfitted design from the parameters."""
        if self.formula is None:
            return ColumnDesign(
                group=self.group,
                random_effects=self.random_effects,
                fixed_effects=self.fixed_effects,
                random_intercept=self.random_intercept,
                fit_intercept=self.fit_intercept,
                covariance=self.covariance,
                weights=self.weights,
                nested=self.nested,
                unseen_levels=self.unseen_levels,
                na_action=self.na_action,
            )
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
        return FormulaDesign(
            self.formula,
            weights=self.weights,
            unseen_levels=self.unseen_levels,
            na_action=self.na_action,
        )

    def get_metadata_routing(self):
        """Metadata routing of this estimator (scikit-learn's metadata routing).

        By default, ``groups`` is requested by ``fit``, ``predict`` and ``score`` when
        the estimator takes its group labels from outside X (no ``group`` column and
        no ``formula``), and declined when X holds them: with
        ``sklearn.set_config(enable_metadata_routing=True)``,
        ``cross_validate(model, X, y, cv=GroupKFold(), params={"groups": g})`` then
        routes the labels to the splitter and, only where the model needs them, to the
        model. ``set_fit_request``, ``set_predict_request`` and ``set_score_request``
        override these defaults.

        Returns
        -------
        routing : MetadataRequest
        """
        routing = super().get_metadata_routing()
        wanted = self.formula is None and self.group is None
        for method in ("fit", "predict", "score"):
            requests = getattr(routing, method)
            if requests.requests.get("groups", False) is None:  # not set by the user
                requests.add_request(param="groups", alias=wanted)
        return routing

    def _check_has_groups(self, arrays):
        """Refuse a model without any grouping factor, saying how to give one.

        The usual way to get here is ``cross_val_score(model, X, y, groups=g)``:
        without metadata routing scikit-learn gives ``groups`` to the splitter only,
        and a fit without random effects would quietly be ordinary least squares.
        """
        if arrays.factors:
            return
        if self.formula is not None:
            raise ValueError(
                f"The formula {self.formula!r} has no random-effects term such as "
                "(1 | g): a mixed model needs at least one (lme4: 'No random effects terms "
                "specified in formula'). For a model without random effects use "
                "sklearn.linear_model.LinearRegression."
            )
        raise ValueError(
            f"{type(self).__name__} has no grouping factor: group=None and fit received no "
            "groups=. (cross_val_score, cross_validate and GridSearchCV give their groups= "
            "to the splitter only.) Either name the column(s) of X holding the group "
            "labels, e.g. group=\"school\" (this works in every scikit-learn tool), or "
            "turn on metadata routing, sklearn.set_config(enable_metadata_routing=True), "
            "and pass the labels as params={\"groups\": g} to cross_validate / "
            "cross_val_score, or as fit(X, y, groups=g) to a Pipeline or GridSearchCV: the "
            "estimator requests them for fit, predict and score. For a model without "
            "random effects use sklearn.linear_model.LinearRegression."
        )

    def _validate_X(self, X, groups, *, reset):
        """X as a pandas DataFrame or a checked 2-D ndarray; sets or checks n_features_in_."""
        if is_dataframe(X):
            X = as_frame_or_array(X)
            if not reset:
                X = self._with_weights_column(X)
            names = X.columns.tolist()
            if reset and _unique_strings(names):
                # What validate_data(skip_check_array=True) records for such a frame.
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
        if self.formula is not None:
            raise TypeError(
                "formula is set, so X must be a DataFrame holding the formula's variables."
            )
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
            ensure_all_finite="allow-nan" if reset and self.na_action == "omit" else True,
        )
        if not reset and hasattr(self, "feature_names_in_"):
            # Fitted on a DataFrame: columns are read by position (validate_data warned).
            X = pd.DataFrame(X, columns=self.feature_names_in_)
        return X

    def _with_weights_column(self, X):
        """New data for predict may leave out the prior-weight column: it is not a
        feature. It is put back (unused) where fit had it, so the columns match."""
        names = getattr(self, "feature_names_in_", None)
        key = self.weights
        if not isinstance(key, str) or names is None or key in X.columns or key not in names:
            return X
        return X.assign(**{key: 1.0})[list(names)]

    def _set_fitted_attributes(self, result):
        """The result's numbers as plain fitted attributes (documented on each estimator)."""
        self.result_ = result
        beta = result.fixed_effects
        has_intercept = len(beta) > 0 and beta.index[0] == INTERCEPT
        self.fixed_effects_ = beta
        self.fixed_effects_se_ = result.fixed_effects_se
        self.fixed_effects_cov_ = result.fixed_effects_cov
        self.coef_ = beta.to_numpy()[1:] if has_intercept else beta.to_numpy()
        self.intercept_ = float(beta.iloc[0]) if has_intercept else 0.0
        self.variance_components_ = result.variance_components
        self.random_effects_ = result.random_effects
        self.random_effects_cond_var_ = result.random_effects_cond_var
        self.theta_ = result.theta
        self.log_likelihood_ = result.log_likelihood
        self.deviance_ = result.deviance
        self.aic_ = result.aic
        self.bic_ = result.bic
        self.n_groups_ = result.n_groups
        self.levels_ = result.levels
        self.is_singular_ = result.is_singular
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.optimizer_record_ = result.optimizer
        self.convergence_check_ = result.convergence_check
        self.fitted_ = result.fitted
        self.residuals_ = result.residuals
        self.scaled_residuals_ = result.scaled_residuals
        # Rows left out for missing values (na_action="omit"): R's na.action.
        self.na_dropped_ = getattr(result, "na_dropped", pd.Index([], dtype=np.int64))

    def _warn_about(self, result):
        if result.is_singular:
            exceptions.warn(
                "boundary (singular) fit: a variance component is estimated as zero or a "
                "correlation as +/-1 (is_singular_ is True); the random-effects structure "
                "may be too rich for the data.",
                SingularFitWarning,
            )
        if not result.optimizer.converged:
            exceptions.warn(
                f"The optimizer did not converge ({result.optimizer.message}) after "
                f"{result.n_iter} evaluations; raise max_iter.",
                ConvergenceWarning,
            )
        elif not result.converged:
            exceptions.warn(
                f"The optimum is in doubt: {result.convergence_check.message}. "
                "Check the data's scaling and the random-effects structure.",
                ConvergenceWarning,
            )

    def summary(self, data_name=None, ddf="Satterthwaite"):
        """lme4's ``summary()`` of the fit with lmerTest's t-tests: prints like R,
        tables as DataFrames.

        Parameters
        ----------
        data_name : str, default=None
            Printed as lme4's ``Data:`` line when given.
        ddf : {"Satterthwaite", "Kenward-Roger", "lme4"}, default="Satterthwaite"
            Denominator df of the t-tests (lmerTest's ``summary(fit, ddf = ...)``):
            Satterthwaite's, Kenward–Roger's (REML fits; adjusted standard errors
            too), or ``"lme4"`` for lme4's table without df and p-values.

        Returns
        -------
        Summary
            Prints as lme4's ``print(summary(fit))``; its tables are DataFrame
            attributes and it renders as HTML in notebooks.
        """
        from ..report import Summary

        check_is_fitted(self, "result_")
        return Summary(self.result_, data_name=data_name, ddf=ddf)

    def _more_tags_for_groups(self, tags):
        tags.input_tags.allow_nan = False
        tags.input_tags.string = self.formula is not None
        # Group columns hold categorical labels; with this tag scikit-learn's common
        # checks feed integer-valued X, so a group column has a few repeated levels.
        tags.input_tags.categorical = self.formula is not None or self.group is not None
        return tags


def _unique_strings(names):
    """Whether ``names`` are all ``str``, distinct, and not none."""
    return bool(names) and all(type(n) is str for n in names) and len(set(names)) == len(names)
