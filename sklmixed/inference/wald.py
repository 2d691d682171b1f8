"""Wald intervals, as lme4's ``confint(fit, method = "Wald")``.

The fixed effects' estimates plus or minus the normal quantile times their standard
errors; lme4 reports no Wald interval for the variance parameters (NaN rows), which
are far from normal near zero. The standard errors are those of the fit (REML or ML
as fitted), so a REML fit's Wald intervals are not centred on the ML estimates its
profile intervals surround.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ._parameters import ParameterMap, percent_labels

__all__ = ["wald_intervals"]


def wald_intervals(result, level=0.95) -> pd.DataFrame:
    """Wald confidence intervals of every parameter lme4's ``confint`` lists.

    Parameters
    ----------
    result : MixedLMResult
    level : float
        Confidence level, between 0 and 1.

    Returns
    -------
    pandas.DataFrame
        One row per parameter (``.sig01``, ..., ``.sigma``, the fixed effects), columns
        named as R's (``"2.5 %"``, ``"97.5 %"``); NaN for the variance parameters.
    """
    check_level(level)
    params = ParameterMap.of(result)
    z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
    beta = result.fixed_effects.to_numpy()
    se = result.fixed_effects_se.to_numpy()
    values = np.vstack([np.full((params.n_var, 2), np.nan), beta[:, None] + se[:, None] * z])
    return pd.DataFrame(values, index=pd.Index(params.names), columns=percent_labels(level))


def check_level(level):
    """Refuse a confidence level outside (0, 1), naming the argument."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not (
        0 < level < 1
    ):
        raise ValueError(f"level must be a number between 0 and 1 (e.g. 0.95); got {level!r}.")
