"""What a fitted mixed model predicts: means with a choice of random effects, standard
errors and intervals, new groups from labelled rows, simulated responses, residuals.

:class:`PredictionMixin` gives these to an estimator whose ``result_`` and ``design_``
are those of :class:`MixedLMRegressor`; the work is in :mod:`sklmixed.prediction`.
A GLMM estimator reuses :meth:`PredictionMixin._linear_prediction` (link scale, with
standard errors) and :meth:`PredictionMixin._simulate_linear_predictor`, and maps them
with its link (:func:`sklmixed.prediction.response_interval`) and its family's draw.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from .._core.fit import single_threaded_blas
from ..design.checks import check_frequency_weights, check_response, check_weights
from ..design.frames import prior_weight_column
from ..design.levels import encode_levels
from ..distributed import is_dask_collection, predict_series
from ..prediction import (
    condition_new_levels,
    draw_linear_predictor,
    gaussian_response,
    linear_predictor,
    normal_interval,
    prediction_mean,
    prediction_state,
    prediction_variance,
    select_factors,
)

__all__ = ["PredictionMixin"]

_RANDOM_EFFECTS = [None, str, list, tuple]


class PredictionMixin:
    """Prediction, intervals, new groups, simulation and residuals of a fitted model."""

    # -- shared steps ------------------------------------------------------------------
    def _state(self):
        return prediction_state(self.result_, list(self.design_.levels_))

    def _new_data(self, X, groups):
        X = self._validate_X(X, groups, reset=False)
        return X, self.design_.transform(X, groups)

    def _prior_weights(self, X):
        """The prior weights of new rows (the ``weights`` column; 1 without it)."""
        if self.weights is None:
            return None
        w = prior_weight_column(X, self.weights)
        return check_weights(w, len(w), f"weights (column {self.weights!r})")

    def _linear_prediction(self, X, groups, random_effects, variance=None):
        """Linear predictor of new data and, if ``variance`` is ``"mean"`` or
        ``"observation"``, its variance (or a new observation's)."""
        check_is_fitted(self, "result_")
        X, arrays = self._new_data(X, groups)
        result = self.result_
        include = select_factors(random_effects, list(self.design_.levels_))
        if variance is None:
            modes = {name: table.to_numpy() for name, table in result.random_effects.items()}
            return prediction_mean(arrays, result.fixed_effects.to_numpy(), modes, include), None
        state = self._state()
        _ = state.covariance  # built once per fit, with the BLAS's own threads
        # Products over many rows and a few columns are memory-bound: BLAS threads only
        # add contention there (as in fit's optimizer).
        with single_threaded_blas():
            mean = prediction_mean(arrays, state.beta, state.modes, include)
            observation = variance == "observation"
            weights = self._prior_weights(X) if observation else None
            return mean, prediction_variance(state, arrays, include, observation, weights)

    # -- predictions -------------------------------------------------------------------
    def predict(self, X, groups=None, random_effects=None, return_std=False):
        """Predict with the fixed effects and the chosen random effects.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Same columns as in ``fit``.
        groups : array-like, default=None
            Group labels, when the model was fitted with ``groups=``.
        random_effects : None, "all", "none" or list of str, default=None
            Which grouping factors' random effects enter (lme4's ``re.form``): None
            or ``"all"`` every factor (``re.form = NULL``), ``"none"`` or ``[]`` none
            (``re.form = NA``: the population-level prediction ``Xβ``), or a list of
            factor names (``levels_`` keys). A level never seen in fit contributes
            nothing (see ``unseen_levels``).
        return_std : bool, default=False
            Also return the standard error of each prediction (of the conditional
            mean, not of a new observation: see :meth:`predict_interval`).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            A lazy Dask Series, partitioned and indexed as X, when X is a Dask
            DataFrame.
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``: ``sqrt(σ² aᵀ C⁻¹ a)`` from the joint
            conditional covariance ``σ² C⁻¹`` of the spherical modes and β at the
            fitted θ (lme4's penalized least-squares system), ``a = [(ZΛ)ᵢ, Xᵢ]``
            over the included factors' known levels; an included factor's unseen
            level adds its prior variance ``σ² zᵀ T Tᵀ z``. The uncertainty of θ and
            σ is not included.
        """
        if is_dask_collection(X):  # a lazy Dask Series, partition by partition
            return predict_series(self, X, groups, random_effects, return_std)
        mean, var = self._linear_prediction(
            X, groups, random_effects, "mean" if return_std else None
        )
        return (mean, np.sqrt(var)) if return_std else mean

    @validate_params(
        {
            "random_effects": _RANDOM_EFFECTS,
            "level": [Interval(Real, 0, 1, closed="neither")],
            "kind": [StrOptions({"mean", "observation"})],
        },
        prefer_skip_nested_validation=True,
    )
    def predict_interval(self, X, groups=None, *, random_effects=None, level=0.95, kind="mean"):
        """Gaussian intervals for the conditional mean or for a new observation.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like, default=None
        random_effects : None, "all", "none" or list of str, default=None
            As in :meth:`predict`.
        level : float, default=0.95
            Coverage probability.
        kind : {"mean", "observation"}, default="mean"
            ``"mean"``: the interval of the conditional mean (``predict`` ± z times
            its ``return_std``). ``"observation"``: of a new observation at the row,
            which adds the residual variance ``σ²/w`` (``w`` the row's prior weight,
            from the ``weights`` column; 1 without it) and, for each factor left out
            by ``random_effects``, that factor's prior variance (a new observation
            carries its group's effect whether the prediction does or not).

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Lower and upper bounds, ``mean ± z sqrt(variance)`` with ``z`` the normal
            quantile of ``(1 + level) / 2``, at the fitted θ and σ.
        """
        mean, var = self._linear_prediction(X, groups, random_effects, kind)
        return normal_interval(mean, var, level)

    # -- new groups ----------------------------------------------------------------------
    def add_groups(self, X, y, groups=None, sample_weight=None):
        """A copy of the model that knows new groups from a few of their labelled rows.

        Each level never seen in fit gets its conditional mode and conditional
        covariance given its rows at the fitted θ, β and σ (and the fitted modes of
        the levels already known): nothing is refitted, and this estimator is left
        unchanged. For a factor alone that is, per new level, ``D Zᵀ V⁻¹ (y − Xβ)``
        with ``V = Z D Zᵀ + σ² W⁻¹`` and ``D = σ² T Tᵀ`` its prior covariance; new
        levels of crossed or nested factors are conditioned jointly. Predictions of
        the returned model carry the new levels' modes, their conditional variance
        and the dependence of the modes on β̂ (``return_std``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows of the new groups, with the columns of ``fit``. Every row needs at
            least one grouping factor whose level was not seen in fit; its other
            factors may be at known levels (their fitted modes are held). Levels
            added by an earlier ``add_groups`` may appear again: all their rows so
            far are conditioned on together.
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
            Group labels, when the model was fitted with ``groups=``.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights, as in ``fit``.

        Returns
        -------
        estimator
            A new fitted estimator: ``levels_``, ``random_effects_`` and
            ``random_effects_cond_var_`` list the added levels after the fitted ones
            (``n_groups_`` still counts the fit's); every other fitted attribute is
            the fit's. Its ``unseen_levels`` policy applies to any other new level.

        Raises
        ------
        ValueError
            When a row has no level new to the fit (all its groups were seen in fit:
            refit the model to use such rows), or a group label is missing.
        """
        check_is_fitted(self, "result_")
        state = self._state()
        arrays, y, levels = self._conditioning_rows(state, X, y, groups, sample_weight)
        names = tuple(f.name for f in state.factors)
        added = condition_new_levels(state, arrays, y, names, self.result_.added_groups)
        return self._with_added_groups(added, levels)

    def _conditioning_rows(self, state, X, y, groups, sample_weight):
        """The rows of :meth:`add_groups` as model arrays whose codes name every level
        (new ones numbered after the known), their response, and the extended levels."""
        X = self._validate_X(X, groups, reset=False)
        design = copy.copy(self.design_)
        design.unseen_levels = "population"  # every level of these rows may be new
        arrays = design.transform(X, groups)
        n = arrays.n_obs
        y = check_response(y, n)
        labels = design.group_labels(X, groups)
        n_fit = {f.name: f.n_fit_levels for f in state.factors}
        levels = dict(self.design_.levels_)
        factors, new_to_fit = [], np.zeros(n, dtype=bool)
        for factor in arrays.factors:
            codes = factor.codes.copy()
            unseen = codes < 0
            if unseen.any():
                values = labels[factor.name]
                if isinstance(values, pd.Categorical):
                    values = np.asarray(values, dtype=object)
                new_labels = np.asarray(values)[unseen]
                if pd.isna(new_labels).any():
                    raise ValueError(
                        f"add_groups: group column {factor.name!r} has missing labels; every "
                        "row needs the label of its group."
                    )
                local, new_levels = encode_levels(new_labels, factor.name)
                codes[unseen] = len(levels[factor.name]) + local
                levels[factor.name] = levels[factor.name].append(new_levels)
            new_to_fit |= codes >= n_fit[factor.name]
            factors.append(replace(factor, codes=codes, levels=levels[factor.name]))
        if not new_to_fit.all():
            self._refuse_seen_rows(arrays, labels, ~new_to_fit)
        arrays = arrays.replace(
            factors=tuple(factors),
            weights=self._prior_weights(X),
            frequency=check_frequency_weights(sample_weight, n),
        )
        return arrays, y, levels

    def _refuse_seen_rows(self, arrays, labels, seen):
        rows = np.flatnonzero(seen)

        def label(name):
            value = np.asarray(labels[name], dtype=object)[rows[0]]
            return value.item() if isinstance(value, np.generic) else value

        shown = ", ".join(f"{f.name}={label(f.name)!r}" for f in arrays.factors)
        raise ValueError(
            f"add_groups: {rows.size} row(s) (the first is row {rows[0]}: {shown}) have no "
            "group level new to the fit. add_groups conditions levels the fit has not "
            "seen on their own rows and holds the fitted levels' modes; rows of levels "
            "seen in fit change the fit itself: refit the model with them."
        )

    def _with_added_groups(self, added, levels):
        """A copy of this estimator whose result and design know the added levels."""
        result = self.result_
        random_effects = dict(result.random_effects)
        cond_var = dict(result.random_effects_cond_var)
        for name, modes in added.modes.items():
            fitted = result.random_effects[name].iloc[: added.n_fit_levels[added.names.index(name)]]
            table = np.vstack([fitted.to_numpy(), modes])
            random_effects[name] = pd.DataFrame(table, index=levels[name], columns=fitted.columns)
            if name in cond_var and added.cond_cov is not None:
                m = added.n_fit_levels[added.names.index(name)]
                cond_var[name] = np.concatenate([cond_var[name][:m], added.cond_cov[name]])
        new = copy.copy(self)
        new.design_ = copy.copy(self.design_)
        new.design_.levels_ = levels
        new._set_fitted_attributes(
            replace(
                result,
                random_effects=random_effects,
                random_effects_cond_var=cond_var,
                levels={name: levels[name] for name in result.levels},
                added_groups=added,
            )
        )
        return new

    # -- simulation ------------------------------------------------------------------------
    @validate_params(
        {
            "n_draws": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
            "use_fitted_effects": ["boolean"],
        },
        prefer_skip_nested_validation=True,
    )
    def simulate(self, n_draws=1, random_state=None, X=None, groups=None,
                 use_fitted_effects=False):  # fmt: skip
        """Responses drawn from the fitted model, as lme4's ``simulate``.

        Parameters
        ----------
        n_draws : int, default=1
            Number of simulated responses per row (lme4's ``nsim``).
        random_state : int, RandomState instance or None, default=None
            Seed of the draws.
        X : array-like or DataFrame of shape (n_samples, n_features), default=None
            Rows to simulate at; None: the training rows.
        groups : array-like, default=None
            Group labels of ``X``, when the model was fitted with ``groups=``.
        use_fitted_effects : bool, default=False
            False: new random effects for every level, ``N(0, σ² T Tᵀ)`` (lme4's
            ``use.u = FALSE``: a new sample of groups). True: the conditional modes
            held (``use.u = TRUE``); a level never seen gets new effects, one draw
            per distinct label.

        Returns
        -------
        ndarray of shape (n_samples, n_draws)
            ``Xβ + Z b* + ε*`` with ``ε* ~ N(0, σ² / w)`` (``w`` the prior weights).
        """
        check_is_fitted(self, "result_")
        rng = check_random_state(random_state)
        if X is not None:
            X = self._validate_X(X, groups, reset=False)
        eta = self._simulate_linear_predictor(n_draws, rng, X, groups, use_fitted_effects)
        weights = self.result_.prior_weights if X is None else self._prior_weights(X)
        return gaussian_response(eta, self.result_.sigma, rng, weights)

    def _simulate_linear_predictor(self, n_draws, rng, X, groups, use_fitted_effects):
        """Draws of the linear predictor (the family-independent part of ``simulate``) at
        the training rows (``X`` None) or at ``X`` (validated)."""
        state = self._state()
        if X is None:
            factors = self.result_.training_factors
            fitted_modes = [self.result_.random_effects[f.name].to_numpy() for f in factors]
            population = self.result_.fitted - linear_predictor(
                np.zeros((len(self.result_.fitted), 0)), np.zeros(0), factors, fitted_modes
            )
            return draw_linear_predictor(
                state, population, factors, n_draws, rng, use_fitted_effects
            )
        arrays = self.design_.transform(X, groups)
        labels = self.design_.group_labels(X, groups)
        unseen = {}
        for factor in arrays.factors:
            rows = factor.codes < 0
            if rows.any():
                values = pd.Series(np.asarray(labels[factor.name], dtype=object)[rows])
                unseen[factor.name] = pd.factorize(values, use_na_sentinel=True)[0]
        population = prediction_mean(arrays, state.beta, state.modes, ())
        return draw_linear_predictor(
            state, population, arrays.factors, n_draws, rng, use_fitted_effects, unseen
        )

    # -- residuals ---------------------------------------------------------------------------
    @validate_params(
        {"kind": [StrOptions({"response", "pearson", "scaled"})]},
        prefer_skip_nested_validation=True,
    )
    def residuals(self, kind="response"):
        """Residuals of the training rows, as lme4's ``residuals()``.

        Parameters
        ----------
        kind : {"response", "pearson", "scaled"}, default="response"
            ``"response"``: ``y − fitted_`` (lme4's ``type = "response"``, also
            ``residuals_``). ``"pearson"``: times the square root of the prior
            weights (lme4's ``type = "pearson"``). ``"scaled"``: Pearson residuals
            divided by σ (lme4's ``residuals(type = "pearson", scaled = TRUE)``, what
            its summary shows; also ``scaled_residuals_``).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "result_")
        result = self.result_
        if result.residuals is None:
            raise ValueError(
                "This model was fitted from a Dask DataFrame, whose rows stay on the "
                "workers: no residuals are kept. model.predict(ddf) gives the fitted "
                "values as a lazy Dask Series (docs/distributed.md)."
            )
        if kind == "response":
            return result.residuals.copy()
        if kind == "scaled":
            return result.scaled_residuals.copy()
        return result.scaled_residuals * result.sigma
