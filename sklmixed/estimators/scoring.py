"""A scorer that hands routed group labels to ``predict``.

scikit-learn's scorers call ``estimator.predict(X)`` and give routed metadata to the
metric only, never to ``predict`` (scikit-learn 1.9). A mixed model fitted with
``groups=`` outside X cannot predict without them, so ``scoring="r2"`` scores NaN.
:func:`grouped_scorer` wraps any scorer: it requests ``groups`` and lets the wrapped
scorer see an estimator whose prediction methods receive them.
"""

from __future__ import annotations

from functools import partial

from sklearn.metrics import check_scoring
from sklearn.utils.metadata_routing import get_routing_for_object

__all__ = ["grouped_scorer", "GroupedScorer"]

_RESPONSE_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def grouped_scorer(scoring="r2"):
    """A scorer whose ``predict`` calls receive the routed ``groups``.

    Use it where scikit-learn takes ``scoring=`` (``cross_validate``,
    ``cross_val_score``, ``GridSearchCV``) when the group labels are outside X and
    routed with metadata routing on. With groups in X plain scorers already work.

    Parameters
    ----------
    scoring : str or callable, default="r2"
        A scorer name (``"r2"``, ``"neg_mean_squared_error"``) or a scorer built by
        ``sklearn.metrics.make_scorer``. Its own requests are kept: for weighted
        scores pass ``make_scorer(r2_score).set_score_request(sample_weight=True)``.

    Returns
    -------
    GroupedScorer
        Call it as any scorer, ``scorer(estimator, X, y, groups=g)``.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import GroupKFold, cross_validate
    >>> from sklmixed import MixedLMRegressor, grouped_scorer
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam().frame
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_validate(
    ...         MixedLMRegressor(random_effects=["standLRT"]), exam[["standLRT"]],
    ...         exam["normexam"], cv=GroupKFold(3), params={"groups": exam["school"]},
    ...         scoring={"mse": grouped_scorer("neg_mean_squared_error")})
    >>> bool((scores["test_mse"] < 0).all())
    True
    """
    return GroupedScorer(scoring)


class GroupedScorer:
    """Wraps a scorer so that ``predict`` gets the ``groups`` routed to the scorer.

    Parameters
    ----------
    scoring : str or callable
        The wrapped scorer, as for :func:`grouped_scorer`.
    """

    def __init__(self, scoring):
        self.scoring = scoring
        self._scorer = check_scoring(estimator=None, scoring=scoring)

    def __call__(self, estimator, X, y, groups=None, **kwargs):
        """Score ``estimator`` on ``X, y``, its predictions made with ``groups``.

        Parameters
        ----------
        estimator : fitted estimator or Pipeline
        X : array-like or DataFrame
        y : array-like
        groups : array-like, default=None
            Group labels of the rows of X (routed by scikit-learn).
        **kwargs
            Other metadata for the wrapped scorer (e.g. ``sample_weight``).

        Returns
        -------
        float
        """
        target = estimator if groups is None else _WithGroups(estimator, groups)
        return self._scorer(target, X, y, **kwargs)

    def get_metadata_routing(self):
        """The wrapped scorer's requests, plus ``groups`` for ``score``.

        Returns
        -------
        routing : MetadataRequest
        """
        routing = get_routing_for_object(self._scorer)
        routing.score.add_request(param="groups", alias=True)
        return routing

    def __repr__(self):
        return f"grouped_scorer({self.scoring!r})"


class _WithGroups:
    """An estimator seen through a scorer: its prediction methods get ``groups``."""

    def __init__(self, estimator, groups):
        self._estimator = estimator
        self._groups = groups

    def __getattr__(self, name):
        attribute = getattr(self._estimator, name)
        if name in _RESPONSE_METHODS:
            return partial(attribute, groups=self._groups)
        return attribute

    def __sklearn_tags__(self):
        return self._estimator.__sklearn_tags__()
