"""MixedLogisticRegression and MixedPoissonRegressor: lme4's ``glmer`` as scikit-learn
estimators.

Both take :class:`MixedLMRegressor`'s design (columns, groups, formula, unseen-level
policy, missing values) and fit through the same road as :func:`sklmixed.glmer`:
design -> ``fit_glmm`` (PIRLS, Laplace or adaptive Gauss-Hermite) -> a frozen
``GLMMResult`` -> fitted attributes. What differs from the LMM is only the response
(binary labels, counts) and the scale of the predictions (the inverse link).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions

from ._glm_base import GLMM_CONSTRAINTS, SHARED_ATTRIBUTES, SHARED_PARAMETERS, MixedGLM, counts
from ._labels import encode_binary_labels

__all__ = ["MixedLogisticRegression", "MixedPoissonRegressor"]

class MixedLogisticRegression(ClassifierMixin, MixedGLM):
    __doc__ = f"""Binary outcome with random effects: lme4's ``glmer(family = binomial)``.

    The model is ``P(y = classes_[1]) = g⁻¹(Xβ + Zb)``, ``b ~ N(0, Σ)`` per level of
    each grouping factor, with the logit, probit or complementary log-log link ``g``.
    Estimates maximize lme4's Laplace (or adaptive Gauss-Hermite) approximation of the
    marginal likelihood, the conditional modes found by penalized iteratively
    reweighted least squares (Bates, Mächler, Bolker and Walker 2015).

    Parameters
    ----------{SHARED_PARAMETERS}
    link : {{"logit", "probit", "cloglog"}}, default="logit"
        The link function.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels, failure first (R's first factor level): a pandas
        Categorical's order of categories, sorted order otherwise (so ``0, 1``,
        ``False, True``, ``"N", "Y"``). ``predict_proba``'s columns follow it.{SHARED_ATTRIBUTES}

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
    {{'(Intercept)': -0.72, 'age': 0.009, 'urbanY': 0.742}}
    """

    _parameter_constraints: dict = {
        **GLMM_CONSTRAINTS,
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
        eta = self._eta(X, groups, random_effects)[0]
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


class MixedPoissonRegressor(RegressorMixin, MixedGLM):
    __doc__ = f"""Counts with random effects: lme4's ``glmer(family = poisson)``.

    The model is ``y ~ Poisson(μ)``, ``log μ = Xβ + Zb`` (+ offset), ``b ~ N(0, Σ)``
    per level of each grouping factor, fitted as :class:`MixedLogisticRegression`
    (Laplace or adaptive Gauss-Hermite approximation, PIRLS for the modes).

    Parameters
    ----------{SHARED_PARAMETERS}

    Attributes
    ----------{SHARED_ATTRIBUTES}

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
        return self._fit(X, counts(y), groups, sample_weight)

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
