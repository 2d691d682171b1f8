"""Confidence intervals of every parameter, as lme4's ``confint(fit, method = ...)``."""

from __future__ import annotations

from .bootstrap import bootstrap
from .profiling import profile
from .wald import check_level, wald_intervals

__all__ = ["confint"]

_METHODS = ("profile", "Wald", "boot")


def _result_of(model):
    result = getattr(model, "result_", model)
    if not hasattr(result, "fixed_effects") or not hasattr(result, "theta_order"):
        raise TypeError(
            f"confint needs a fitted MixedLMRegressor (or its result_); got {type(model).__name__}."
        )
    return result


def _selected(names, n_var, parm):
    """lme4's ``parm``: all, ``"theta_"`` (variance parameters), ``"beta_"`` (fixed
    effects), or a list of names."""
    if parm is None:
        return list(names)
    if isinstance(parm, str):
        if parm == "theta_":
            return list(names[:n_var])
        if parm == "beta_":
            return list(names[n_var:])
        parm = [parm]
    unknown = [p for p in parm if p not in names]
    if unknown:
        raise ValueError(f"parm: no parameter {unknown}; the parameters are {list(names)}.")
    return [n for n in names if n in parm]


def confint(
    model, parm=None, level=0.95, method="profile", *, n_boot=500, random_state=None,
    n_jobs=None, boot_type="perc",
):  # fmt: skip
    """Confidence intervals of the variance parameters and fixed effects (lme4's
    ``confint.merMod``).

    Parameters
    ----------
    model : fitted MixedLMRegressor or MixedLMResult
    parm : str or list of str, optional
        Parameters: lme4's names (``".sig01"``, ``".sigma"``, a fixed effect),
        ``"theta_"`` for the variance parameters or ``"beta_"`` for the fixed effects;
        all by default.
    level : float, default=0.95
    method : {"profile", "Wald", "boot"}, default="profile"
        Likelihood profile (lme4's default: the ML fit's), Wald (fixed effects only;
        NaN for the variance parameters, as lme4), or parametric bootstrap.
    n_boot : int, default=500
        Bootstrap replicates (lme4's ``nsim``).
    random_state : int, numpy.random.Generator or None
        Seed of the bootstrap.
    n_jobs : int, optional
        Threads for bootstrap refits made one at a time.
    boot_type : {"perc", "norm", "basic"}, default="perc"
        Kind of bootstrap interval (lme4's ``boot.type``).

    Returns
    -------
    pandas.DataFrame
        One row per parameter in lme4's order, columns named as R's (``"2.5 %"``,
        ``"97.5 %"``): standard deviations and correlations of the random effects,
        ``σ``, then the fixed effects.

    Examples
    --------
    >>> from sklmixed import lmer
    >>> from sklmixed.datasets import load_sleepstudy
    >>> fit = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy().frame)
    >>> fit.confint(method="Wald").loc["Days"].round(3).tolist()
    [7.438, 13.497]
    """
    result = _result_of(model)
    check_level(level)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS} (lme4's names); got {method!r}.")
    if method == "Wald":
        table = wald_intervals(result, level)
        return table.loc[_selected(table.index, _n_var(table), parm)]
    if hasattr(result, "family"):
        raise NotImplementedError(
            f"confint(method={method!r}) is not available for a GLMM yet; "
            "method='Wald' is (lme4's confint(fit, method = \"Wald\"))."
        )
    if method == "profile":
        names = profile_names(result)
        which = _selected(names, _n_var_of(names), parm)
        return profile(result, which=which).confint(level)
    boot = bootstrap(result, n_boot=n_boot, random_state=random_state, n_jobs=n_jobs)
    table = boot.confint(level, kind=boot_type)
    return table.loc[_selected(table.index, _n_var(table), parm)]


def profile_names(result):
    """lme4's names of the parameters of a fit."""
    from ._parameters import ParameterMap

    return list(ParameterMap.of(result).names)


def _n_var_of(names):
    return sum(1 for n in names if n.startswith(".sig"))  # .sig01, ..., .sigma


def _n_var(table):
    return _n_var_of(table.index)
