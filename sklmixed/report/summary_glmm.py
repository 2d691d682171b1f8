"""lme4's ``print(summary(fit))`` of a ``glmerMod``: text, HTML and DataFrames.

:class:`GLMMSummary` is :class:`~sklmixed.report.summary.Summary` with glmer's
differences: the title names the approximation (wrapped at R's width as lme4 wraps
it), a ``Family`` line, Pearson residuals as the scaled residuals, no residual row in
the random effects, and ``z value`` with ``Pr(>|z|)`` and significance stars (R's
``printCoefmat`` and ``format.pval``) for the fixed effects.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from scipy import stats

from .summary import Summary

__all__ = ["GLMMSummary"]

_WIDTH = 80  # getOption("width")


class GLMMSummary(Summary):
    """lme4's ``summary()`` of a fitted generalized linear mixed model.

    Parameters
    ----------
    result : GLMMResult
    data_name : str, default=None
        Printed as lme4's ``Data:`` line when given.

    Attributes
    ----------
    family_line : str
        `` Family: binomial  ( logit )``.
    fixed_effects : pandas.DataFrame
        ``Estimate``, ``Std. Error``, ``z value`` and ``Pr(>|z|)`` (Wald tests).

    Other attributes are :class:`~sklmixed.report.summary.Summary`'s; its
    ``fit_statistics`` ``deviance`` is −2 log-likelihood, as lme4 prints it. For
    nAGQ > 1 the fit statistics are the log-likelihood proper (the result's
    ``log_likelihood``), not lme4's printed AGQ value, which leaves out the constant
    ``Σ −2 log p(yᵢ | μᵢ = yᵢ)`` (``lme4_log_likelihood``).
    """

    def __init__(self, result, data_name=None):
        super().__init__(
            result, scaled_residuals=result.pearson_residuals, data_name=data_name, ddf="lme4"
        )
        self.method_title = (
            f"Generalized linear mixed model fit by maximum likelihood ({result.method})"
        )
        self.family_line = f" Family: {result.family}  ( {result.link} )"
        z = self.fixed_effects["t value"].to_numpy()
        self.fixed_effects = pd.DataFrame(
            {
                "Estimate": self.fixed_effects["Estimate"].to_numpy(),
                "Std. Error": self.fixed_effects["Std. Error"].to_numpy(),
                "z value": z,
                "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z)),
            },
            index=self.fixed_effects.index,
        )

    @classmethod
    def from_estimator(cls, model, data_name=None):
        """The summary of a fitted GLMM estimator (its ``result_``)."""
        return cls(model.result_, data_name=data_name)

    def _header_lines(self):
        title = f"{self.method_title} [glmerMod]"
        if len(title) > _WIDTH:
            # lme4 wraps a long title with strwrap(width - 2, exdent = 2).
            lines = textwrap.wrap(
                title, width=_WIDTH - 3, subsequent_indent="  ", break_on_hyphens=False
            )
        else:
            lines = [title]
        lines += [self.family_line, f"Formula: {self.formula}"]
        if self.data_name is not None:
            lines.append(f"   Data: {self.data_name}")
        return lines
