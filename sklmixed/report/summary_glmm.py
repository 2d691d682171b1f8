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

from .rformat import format_real
from .summary import _DIGITS, Summary

__all__ = ["GLMMSummary"]

_WIDTH = 80  # getOption("width")
_EPS = np.finfo(float).eps
_LEGEND = "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 \u2018 \u2019 1"


def format_pval(pv, digits):
    """R's ``format.pval(pv, digits)`` (``eps`` the machine epsilon): p-values from
    1e-4 up (1e-3 up for one digit) and the smaller ones are formatted as two
    vectors; below ``eps``, ``< eps`` with fewer digits."""
    pv = np.asarray(pv, dtype=float)
    out = np.empty(pv.size, dtype=object)
    tiny = pv < _EPS
    expo = np.floor(np.log10(np.where(pv > 0, pv, 1e-50)))
    fixp = ~tiny & ((expo >= -3) | ((expo == -4) & (digits > 1)))
    sci = ~tiny & ~fixp
    for mask in (fixp, sci):
        if mask.any():
            out[mask] = format_real(pv[mask], digits)
    if tiny.any():
        small = max(1, digits - 2)
        sep = " "
        if (~tiny).any():
            width = max(len(r) for r in out[~tiny])
            if small > 1 and small + 6 > width:
                small = max(1, width - 7)
            sep = "" if small == 1 and width <= 6 else " "
        elif small == 1:
            sep = ""
        out[tiny] = "<" + sep + format_real([_EPS], small)[0]
    return list(out)


def significance_stars(pv):
    """R's ``symnum`` stars of p-values (cut points 0.001, 0.01, 0.05, 0.1)."""
    marks = np.select([pv <= 0.001, pv <= 0.01, pv <= 0.05, pv <= 0.1], ["***", "**", "*", "."], " ")
    width = max(len(m) for m in marks) if len(marks) else 0
    return [m.ljust(width) for m in marks]


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
        super().__init__(result, scaled_residuals=result.pearson_residuals, data_name=data_name)
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

    def _fixed_effects_cells(self):
        row_names, col_names, rows = super()._fixed_effects_cells()
        pv = self.fixed_effects["Pr(>|z|)"].to_numpy()
        dig_tst = max(1, min(5, _DIGITS - 1))
        strings = format_pval(pv, dig_tst)
        stars = significance_stars(pv)
        rows = [row + [p, s] for row, p, s in zip(rows, strings, stars)]
        return row_names, col_names + ["Pr(>|z|)", ""], rows

    def _fixed_effects_legend(self):
        return ["---", _LEGEND]
