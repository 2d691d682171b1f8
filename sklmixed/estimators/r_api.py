"""R's calls translated one-to-one: ``lmer(formula, data, REML, weights, na_action)`` and
``glmer(formula, data, family, link, nAGQ, weights, offset, na_action)``."""

from __future__ import annotations

import numpy as np

from .linear import MixedLMRegressor

__all__ = ["lmer", "glmer", "GlmerFit"]


def lmer(formula, data, REML=True, weights=None, na_action="omit", **params):  # noqa: N803
    """Fit a linear mixed model as R's ``lme4::lmer(formula, data, REML, weights)``.

    Parameters
    ----------
    formula : str
        An lme4 formula with its left side, e.g. ``"normexam ~ 1 + (1 | school)"``.
    data : DataFrame
        Holds the response and every variable the formula names.
    REML : bool, default=True
        REML (True) or maximum likelihood (False).
    weights : str or array-like, default=None
        Prior weights: the name of a numeric column of ``data``, or an array (lme4's
        ``weights``).
    na_action : {"omit", "fail"}, default="omit"
        R's ``na.action``: leave out the rows missing a value of a variable the model
        uses (the formula's variables, the response, the weights), as R's default
        ``na.omit``, or refuse them (``na.fail``). The rows left out are the fit's
        ``na_dropped_`` and their number is printed in the summary.
    **params
        Other :class:`MixedLMRegressor` parameters (``tol``, ``max_iter``,
        ``unseen_levels``).

    Returns
    -------
    MixedLMRegressor
        The fitted estimator.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam().frame
    >>> fit = lmer("normexam ~ standLRT + (1 | school)", data=exam)
    >>> fit.fixed_effects_.round(4).to_dict()
    {'(Intercept)': 0.0023, 'standLRT': 0.5633}
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"lmer needs a formula with a response, 'y ~ ...'; got {formula!r}.")
    if not isinstance(REML, bool) and type(REML).__name__ != "bool_":
        raise TypeError(
            f"REML must be True or False; got {REML!r} ({type(REML).__name__}). "
            "A string such as 'FALSE' is not a logical here."
        )
    data, weights = with_column(data, weights, "weights")
    model = MixedLMRegressor(
        formula=formula,
        method="REML" if REML else "ML",
        weights=weights,
        na_action=r_na_action(na_action),
        **params,
    )
    return model.fit(data)


def r_na_action(na_action):
    """The estimator's ``na_action`` for R's name of it (``"omit"`` or ``"fail"``)."""
    actions = {"omit": "omit", "fail": "raise"}
    if na_action not in actions:
        raise ValueError(
            f"na_action must be 'omit' (R's na.omit, the default) or 'fail' (na.fail); got "
            f"{na_action!r}."
        )
    return actions[na_action]


def with_column(data, values, argument):
    """R's convention for ``weights`` and ``offset``: a column name of ``data``, or values
    (then put in a copy of ``data`` under R's own name, ``(weights)``)."""
    if values is None:
        return data, None
    if isinstance(values, str):
        if values not in data.columns:
            raise ValueError(f"{argument}: column {values!r} is not in data.")
        column = data[values]
        if column.dtype.kind not in "biuf":
            raise ValueError(
                f"{argument}: column {values!r} must be numeric; it has dtype {column.dtype}."
            )
        return data, values
    name = f"({argument})"
    values = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if values.ndim != 1 or values.shape[0] != len(data):
        raise ValueError(
            f"{argument} must have one value per row of data ({len(data)}); got shape "
            f"{values.shape}."
        )
    return data.assign(**{name: values}), name


def glmer(
    formula, data, family="binomial", link=None, nAGQ=1, weights=None, offset=None,  # noqa: N803
    na_action="omit", **params,
):  # fmt: skip
    """Fit a generalized linear mixed model as R's ``lme4::glmer``.

    ``glmer(formula, data, family = binomial(link = "logit"), nAGQ = 1, weights, offset)``
    one-to-one: the Laplace approximation (``nAGQ=1``), adaptive Gauss–Hermite
    quadrature (``nAGQ`` up to 25, a single scalar random-effects term) or the fast
    ``nAGQ=0`` (β estimated inside PIRLS).

    Parameters
    ----------
    formula : str
        An lme4 formula with its left side: ``"use ~ age + urban + (1 + urban | district)"``,
        ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``, or with an
        ``offset(log(exposure))`` term.
    data : DataFrame
        Holds the response and every variable the formula names.
    family : {"binomial", "poisson"}, default="binomial"
        The response distribution (R's ``family``).
    link : str, default=None
        ``"logit"`` (default), ``"probit"`` or ``"cloglog"`` for binomial; ``"log"``
        for Poisson.
    nAGQ : int, default=1
        Quadrature nodes: 0, 1 (Laplace) or up to 25.
    weights : str or array-like, default=None
        Prior weights (a column name of ``data`` or values): the number of trials of
        a proportion response.
    offset : str or array-like, default=None
        A known part of the linear predictor (lme4's ``offset =``), e.g.
        ``np.log(data["exposure"])``; besides any ``offset()`` in the formula.
    na_action : {"omit", "fail"}, default="omit"
        R's ``na.action``.
    **params
        ``tol``, ``max_iter``, ``check_convergence``, ``unseen_levels``.

    Returns
    -------
    GlmerFit
        The fitted model (``fixed_effects_``, ``variance_components_``, ``summary()``,
        ...). Until the scikit-learn estimators ``MixedLogisticRegression`` and
        ``MixedPoissonRegressor`` land, this small fitted-model object.

    Examples
    --------
    >>> import warnings
    >>> from sklmixed import glmer
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam().frame
    >>> exam = exam.assign(passed=exam.normexam > 0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # one school has no pass: said, and fitted
    ...     fit = glmer("passed ~ standLRT + (1 | school)", data=exam)
    >>> fit.fixed_effects_.round(2).to_dict()
    {'(Intercept)': 0.08, 'standLRT': 1.34}
    >>> round(fit.log_likelihood_, 1)
    -2185.6
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"glmer needs a formula with a response, 'y ~ ...'; got {formula!r}.")
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)):
        raise TypeError(f"nAGQ must be an integer between 0 and 25; got {nAGQ!r}.")
    from .._core.families import get_family

    get_family(family, link)  # an unknown family or link fails before any data is read
    data, weights = with_column(data, weights, "weights")
    data, offset = with_column(data, offset, "offset")
    return GlmerFit(
        formula, family=family, link=link, nAGQ=int(nAGQ), weights=weights, offset=offset,
        na_action=r_na_action(na_action), **params,
    ).fit(data)  # fmt: skip


class GlmerFit:
    """A generalized linear mixed model fitted by :func:`glmer`: lme4's ``glmerMod``.

    The fitted attributes carry the names of the scikit-learn estimators'
    (``fixed_effects_``, ``variance_components_``, ``log_likelihood_``, ``fitted_``,
    ...), read from the frozen :class:`~sklmixed.result_glmm.GLMMResult` ``result_``.

    Parameters
    ----------
    formula : str
    family, link, nAGQ, weights, offset, na_action
        As :func:`glmer` (``weights`` and ``offset`` column names of the data;
        ``na_action`` ``"omit"`` or ``"raise"``).
    tol : float, default=1e-6
        BOBYQA's absolute tolerance on the parameters and the deviance.
    max_iter : int, default=100000
        Evaluation budget of each optimizer stage.
    check_convergence : bool, default=True
        Check the optimum by finite differences (its Hessian gives the standard errors).
    unseen_levels : {"population", "warn", "error"}, default="population"
    """

    def __init__(
        self, formula, *, family="binomial", link=None, nAGQ=1, weights=None, offset=None,  # noqa: N803
        na_action="omit", tol=1e-6, max_iter=100_000, check_convergence=True,
        unseen_levels="population",
    ):  # fmt: skip
        self.formula = formula
        self.family = family
        self.link = link
        self.nAGQ = nAGQ
        self.weights = weights
        self.offset = offset
        self.na_action = na_action
        self.tol = tol
        self.max_iter = max_iter
        self.check_convergence = check_convergence
        self.unseen_levels = unseen_levels

    def fit(self, data):
        """Fit to a DataFrame holding the formula's variables.

        Returns
        -------
        self
        """
        from ..design.formula import FormulaDesign
        from ..design.response import warn_degenerate
        from ..result_glmm import fit_glmm_result
        from .._core.families import get_family

        fam = get_family(self.family, self.link)
        self.design_ = FormulaDesign(
            self.formula, weights=self.weights, unseen_levels=self.unseen_levels,
            response_columns=2, na_action=self.na_action, response_family=fam.name,
            offset=self.offset,
        )  # fmt: skip
        arrays = self.design_.fit_transform(data)
        warn_degenerate(arrays, fam.name)
        result = fit_glmm_result(
            arrays, self.design_, family=fam, n_agq=self.nAGQ, tol=self.tol,
            max_evals=self.max_iter, check_convergence=self.check_convergence,
        )  # fmt: skip
        set_glmm_attributes(self, result)
        warn_about_glmm(result)
        return self

    def summary(self, data_name=None):
        """lme4's ``summary()`` of the fit: prints like R, tables as DataFrames.

        Parameters
        ----------
        data_name : str, default=None
            Printed as lme4's ``Data:`` line when given.

        Returns
        -------
        GLMMSummary
        """
        from ..report.summary_glmm import GLMMSummary

        return GLMMSummary(self.result_, data_name=data_name)


def set_glmm_attributes(model, result):
    """A GLMM result's numbers as plain fitted attributes (the estimators' names)."""
    model.result_ = result
    model.fixed_effects_ = result.fixed_effects
    model.fixed_effects_se_ = result.fixed_effects_se
    model.fixed_effects_cov_ = result.fixed_effects_cov
    model.variance_components_ = result.variance_components
    model.random_effects_ = result.random_effects
    model.random_effects_cond_var_ = result.random_effects_cond_var
    model.theta_ = result.theta
    model.log_likelihood_ = result.log_likelihood
    model.deviance_ = result.deviance
    model.aic_ = result.aic
    model.bic_ = result.bic
    model.n_groups_ = result.n_groups
    model.levels_ = result.levels
    model.is_singular_ = result.is_singular
    model.converged_ = result.converged
    model.n_iter_ = result.n_iter
    model.optimizer_record_ = result.optimizer
    model.convergence_check_ = result.convergence_check
    model.fitted_ = result.fitted
    model.linear_predictor_ = result.linear_predictor
    model.na_dropped_ = result.na_dropped


# Fitted probabilities this close to 0 or 1 (|η| > 23 on the logit scale) only arise
# along a direction where the likelihood keeps rising.
_EDGE = 1e-10


def warn_about_glmm(result):
    """A singular fit and a doubtful optimum, said as the LMM's are."""
    from .. import exceptions
    from ..exceptions import SingularFitWarning
    from sklearn.exceptions import ConvergenceWarning

    if result.is_singular:
        exceptions.warn(
            "boundary (singular) fit: a variance component is estimated as zero or a "
            "correlation as +/-1 (is_singular_ is True); the random-effects structure "
            "may be too rich for the data.",
            SingularFitWarning,
        )
    if result.family == "binomial":
        # R's glm says so too; a separating direction the linear program of
        # design.response.warn_degenerate did not look for (large data) shows here.
        edge = (result.fitted < _EDGE) | (result.fitted > 1.0 - _EDGE)
        if edge.any():
            exceptions.warn(
                f"fitted probabilities numerically 0 or 1 occurred ({int(edge.sum())} rows): "
                "the fixed or random effects separate some outcomes; estimates along that "
                "direction are where the optimizer stopped."
            )
    fit = result.fit
    if not result.converged:
        reasons = []
        if not fit.stage_one.converged:
            reasons.append(f"the first stage stopped: {fit.stage_one.message}")
        if not fit.record.converged:
            reasons.append(f"the optimizer stopped: {fit.record.message}")
        if not fit.state.converged:
            reasons.append("PIRLS did not converge at the optimum")
        if fit.check is not None and not fit.check.ok:
            reasons.append(f"the optimum is in doubt: {fit.check.message}")
        if not np.isfinite(fit.objective):
            reasons.append("the deviance is not finite at the optimum")
        exceptions.warn(
            "The GLMM fit did not converge: " + "; ".join(reasons) + ".", ConvergenceWarning
        )
