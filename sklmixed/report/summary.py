"""lme4's ``print(summary(fit))`` of a result: text, HTML and DataFrames.

:class:`Summary` reads a :class:`~sklmixed.result.MixedLMResult` and never fits
anything. Its text follows lme4 1.1-31's ``print.summary.merMod`` line by line, with
numbers formatted as R formats them (``rformat``); every table is also a DataFrame
with unrounded numbers. The structure of the random effects (which rows belong to
which term) is read from the result's terms, never parsed from names.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .rformat import (
    abbreviate,
    deparse_formula,
    fill,
    format_one,
    format_real,
    print_matrix,
    print_named,
    r_round,
    zapsmall,
)

__all__ = ["Summary"]

_DIGITS = 4  # print.summary.merMod's `digits`: max(3, getOption("digits") - 3)
_COR_MAX = 12  # getOption("lme4.summary.cor.max")
_SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def _missing(value):
    """An empty ``var2`` entry: None, NaN or NA, or "" (as R writes it)."""
    return isinstance(value, str) and value == "" or not isinstance(value, str) and pd.isna(value)


def _random_effects_table(result):
    """The random-effects table: one row per variance, correlations in ``Corr`` columns.

    Terms and their columns come from ``result.terms``; the numbers from
    ``result.variance_components`` (lme4's ``as.data.frame(VarCorr(fit))``).
    """
    varcorr = result.variance_components
    n_corr = max([len(t.column_names) for t in result.terms] + [1]) - 1
    corr_cols = ["Corr"] if n_corr == 1 else [f"Corr.{k + 1}" for k in range(n_corr)]
    rows = []
    for term in result.terms:
        sub = varcorr[varcorr["group"] == term.name]
        variances = sub[sub["var2"].map(_missing)]
        for a, name in enumerate(term.column_names):
            var = variances[variances["var1"] == name].iloc[0]
            corr = [np.nan] * n_corr
            for b in range(a):
                pair = sub[(sub["var1"] == term.column_names[b]) & (sub["var2"] == name)]
                corr[b] = float(pair["sdcor"].iloc[0]) if len(pair) else np.nan
            rows.append([term.name, name, var["vcov"], var["sdcor"]] + corr)
    residual = varcorr[varcorr["group"] == "Residual"]
    if len(residual):
        var = residual.iloc[0]
        rows.append(["Residual", "", var["vcov"], var["sdcor"]] + [np.nan] * n_corr)
    table = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev."] + corr_cols)
    return table.astype({c: float for c in ["Variance", "Std.Dev."] + corr_cols})


class Summary:
    """lme4's ``summary()`` of a fitted linear mixed model.

    ``print(summary)`` gives the text of lme4's ``print(summary(fit))``, numbers at
    lme4's printed precision; in a notebook it shows as HTML. The tables, with
    unrounded numbers, are DataFrame attributes.

    Parameters
    ----------
    result : MixedLMResult
        The fitted model's ``result_``.
    scaled_residuals : array-like, default=None
        Scaled residuals to summarize; default the result's own.
    formula : str, default=None
        The model formula to print; default the result's own.
    data_name : str, default=None
        A name for the data, printed as lme4's ``Data:`` line; None leaves it out.

    Attributes
    ----------
    method_title : str
        ``"Linear mixed model fit by REML"`` or ``"... by maximum likelihood"``.
    formula : str
        The formula as printed.
    fit_statistics : pandas.DataFrame
        One row: ``REML criterion`` (REML fits) or ``AIC``, ``BIC``, ``logLik``,
        ``deviance``, ``df.resid`` (ML fits).
    residuals : pandas.DataFrame
        One row: ``Min``, ``1Q``, ``Median``, ``3Q``, ``Max`` of the scaled residuals.
    random_effects : pandas.DataFrame
        Columns ``Groups``, ``Name``, ``Variance``, ``Std.Dev.`` and, for correlated
        terms, ``Corr`` (or ``Corr.1``, ``Corr.2``, ... : correlation with the term's
        first, second, ... effect); the last row is ``Residual``.
    groups : pandas.DataFrame
        Number of levels of each grouping factor, indexed by factor.
    n_obs : int
        Number of observations.
    n_dropped : int
        Number of rows left out for missing values (``na_action="omit"``), printed
        under ``Number of obs`` as R's ``lm`` and ``glm`` summaries print it.
    fixed_effects : pandas.DataFrame
        ``Estimate``, ``Std. Error`` and ``t value`` of each fixed effect.
    fixed_effects_correlation : pandas.DataFrame
        Correlation matrix of the fixed-effect estimates.
    is_singular : bool
        Whether the fit is on the boundary of the parameter space.
    messages : tuple of str
        Notes printed at the end (rank-deficient design, singular fit, convergence).

    Examples
    --------
    >>> from sklmixed import MixedLMRegressor
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam().frame
    >>> model = MixedLMRegressor(group="school").fit(exam[["standLRT", "school"]],
    ...                                              exam["normexam"])
    >>> summary = model.summary()
    >>> print(summary)  # doctest: +NORMALIZE_WHITESPACE
    Linear mixed model fit by REML ['lmerMod']
    Formula: y ~ standLRT + (1 | school)
    <BLANKLINE>
    REML criterion at convergence: 9368.8
    <BLANKLINE>
    Scaled residuals:
        Min      1Q  Median      3Q     Max
    -3.7166 -0.6302  0.0294  0.6849  3.2673
    <BLANKLINE>
    Random effects:
     Groups   Name        Variance Std.Dev.
     school   (Intercept) 0.09384  0.3063
     Residual             0.56587  0.7522
    Number of obs: 4059, groups:  school, 65
    <BLANKLINE>
    Fixed effects:
                Estimate Std. Error t value
    (Intercept) 0.002323   0.040354   0.058
    standLRT    0.563307   0.012468  45.180
    <BLANKLINE>
    Correlation of Fixed Effects:
             (Intr)
    standLRT 0.008
    >>> summary.fixed_effects.round(2)
                 Estimate  Std. Error  t value
    (Intercept)      0.00        0.04     0.06
    standLRT         0.56        0.01    45.18
    """

    def __init__(self, result, scaled_residuals=None, formula=None, data_name=None):
        if scaled_residuals is None:
            scaled_residuals = result.scaled_residuals
        formula = deparse_formula(result.formula if formula is None else formula)
        self._result = result
        self.method_title = (
            "Linear mixed model fit by REML"
            if result.method == "REML"
            else "Linear mixed model fit by maximum likelihood "
        )
        self.formula = formula
        self.data_name = data_name
        self.n_obs = int(result.n_obs)
        self.n_dropped = len(getattr(result, "na_dropped", ()))
        self.is_singular = bool(result.is_singular)

        if result.method == "REML":
            stats = {"REML criterion": result.reml_criterion}
        else:
            stats = {
                "AIC": result.aic,
                "BIC": result.bic,
                "logLik": result.log_likelihood,
                "deviance": -2.0 * result.log_likelihood,
                "df.resid": self.n_obs - int(result.df),
            }
        self.fit_statistics = pd.DataFrame([stats])

        quartiles = np.quantile(np.asarray(scaled_residuals, dtype=float), [0, 0.25, 0.5, 0.75, 1])
        self.residuals = pd.DataFrame(
            [quartiles], columns=["Min", "1Q", "Median", "3Q", "Max"], index=["Scaled residuals"]
        )
        self.random_effects = _random_effects_table(result)
        self.groups = pd.DataFrame(
            {"Levels": list(result.n_groups.values())},
            index=pd.Index(list(result.n_groups), name="Groups"),
        )
        beta, se = result.fixed_effects, result.fixed_effects_se
        self.fixed_effects = pd.DataFrame(
            {
                "Estimate": beta.to_numpy(),
                "Std. Error": se.to_numpy(),
                "t value": beta.to_numpy() / se.to_numpy(),
            },
            index=beta.index,
        )
        cov = result.fixed_effects_cov.to_numpy()
        sd = np.sqrt(np.diag(cov))
        self.fixed_effects_correlation = pd.DataFrame(
            cov / np.outer(sd, sd), index=beta.index, columns=beta.index
        )

        messages = []
        if result.dropped_fixed:
            k = len(result.dropped_fixed)
            messages.append(
                f"fixed-effect model matrix is rank deficient so dropping {k} "
                + ("column / coefficient" if k == 1 else "columns / coefficients")
            )
        self._fit_warnings = tuple(messages)
        notes = [_SINGULAR_MESSAGE] if self.is_singular else []
        record = result.optimizer
        if not record.converged:
            notes.append(f"The optimizer stopped before converging: {record.message}")
        check = getattr(result, "convergence_check", None)
        if check is not None and not check.ok:
            notes.append(f"Model failed to converge: {check.message}")
        self._optimizer_messages = tuple(notes)
        self.messages = self._fit_warnings + self._optimizer_messages

    @classmethod
    def from_estimator(cls, model, data_name=None):
        """The summary of a fitted estimator (its ``result_``).

        Parameters
        ----------
        model : MixedLMRegressor
            A fitted estimator.
        data_name : str, default=None
            Printed as ``Data: <name>`` when given.

        Returns
        -------
        Summary
        """
        return cls(model.result_, data_name=data_name)

    # ------------------------------------------------------------- sections
    def _header_lines(self):
        # R's deparse() would break a formula longer than 60 characters; we do not.
        lines = [f"{self.method_title} ['lmerMod']", f"Formula: {self.formula}"]
        if self.data_name is not None:
            lines.append(f"   Data: {self.data_name}")
        return lines

    def _fit_statistics_lines(self):
        stats = self.fit_statistics.iloc[0]
        if "REML criterion" in stats:
            value = r_round(stats["REML criterion"], 1)
            return fill(["REML criterion at convergence:", format_one(float(value))])
        values = r_round(stats[["AIC", "BIC", "logLik", "deviance", "df.resid"]].astype(float), 1)
        strings = format_real(values)
        strings[-1] = format_one(values[-1])  # df.resid formatted on its own, as an integer
        return print_named(strings, list(self.fit_statistics.columns))

    def _residual_strings(self):
        values = zapsmall(self.residuals.iloc[0].to_numpy(), _DIGITS + 1)
        return format_real(values, _DIGITS), list(self.residuals.columns)

    def _random_effects_cells(self):
        """Column names and rows of lme4's ``formatVC`` table (strings)."""
        table = self.random_effects
        corr_cols = [c for c in table.columns if c.startswith("Corr")]
        # The corr block of each group is formatted on its own, diagonal included.
        corr = [[""] * len(corr_cols) for _ in range(len(table))]
        for group, idx in table.groupby("Groups", sort=False).groups.items():
            pos = [table.index.get_loc(i) for i in idx]
            q = len(pos)
            if q < 2:
                continue
            full = np.eye(q)
            for a in range(q):
                for b in range(a):
                    full[a, b] = full[b, a] = table.iloc[pos[a]][corr_cols[b]]
            strings = format_real(r_round(full, 2).ravel(), nsmall=2)
            for a in range(q):
                for b in range(a):
                    corr[pos[a]][b] = strings[a * q + b]
        names = ["Groups", "Name", "Variance", "Std.Dev."] + [
            "Corr" if k == 0 else "" for k in range(len(corr_cols))
        ]
        first = ~table["Groups"].duplicated()
        variances = format_real(table["Variance"], _DIGITS)
        sds = format_real(table["Std.Dev."], _DIGITS)
        rows = [
            [g if f else "", n, v, s] + c
            for g, f, n, v, s, c in zip(table["Groups"], first, table["Name"], variances, sds, corr)
        ]
        return names, rows

    def _groups_text(self):
        groups = "; ".join(f"{g}, {n}" for g, n in self.groups["Levels"].items())
        lines = fill([f"Number of obs: {self.n_obs}, groups: ", groups])
        if self.n_dropped:
            # lme4 1.1-31 prints no such line; this is R's naprint(), as lm and glm show it.
            plural = "observation" if self.n_dropped == 1 else "observations"
            lines.append(f"  ({self.n_dropped} {plural} deleted due to missingness)")
        return lines

    def _fixed_effects_cells(self):
        """Row names, column names and rows of lme4's ``printCoefmat`` table."""
        table = self.fixed_effects
        coef_se = table[["Estimate", "Std. Error"]].to_numpy()
        acs = np.abs(coef_se)
        acs = acs[np.isfinite(acs) & (acs != 0)]
        digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
        places = int(max(1, *(_DIGITS - digmin)))
        cs = np.array(format_real(r_round(coef_se, places).ravel(order="F"), _DIGITS))
        cs = cs.reshape(coef_se.shape, order="F")
        dig_tst = max(1, min(5, _DIGITS - 1))
        tst = format_real(r_round(table.iloc[:, 2].to_numpy(), dig_tst), _DIGITS)  # t or z
        # An estimate shown as zero that is not zero gets fewer digits of its own.
        shown_zero = [
            (i, j)
            for i in range(cs.shape[0])
            for j in range(2)
            if coef_se[i, j] != 0 and float(cs[i, j]) == 0
        ]
        if shown_zero:
            fixes = format_real([coef_se[i, j] for i, j in shown_zero], max(1, _DIGITS - 1))
            for (i, j), s in zip(shown_zero, fixes):
                cs[i, j] = s
        rows = [[cs[i, 0], cs[i, 1], tst[i]] for i in range(len(table))]
        return list(table.index), list(table.columns[:3]), rows

    def _fixed_effects_legend(self):
        """Lines under the fixed-effects table (none for lmer's)."""
        return []

    def _correlation_cells(self):
        """Row names, column names and rows of lme4's correlation of fixed effects."""
        corr = self.fixed_effects_correlation.to_numpy()
        p = corr.shape[0]
        names = list(self.fixed_effects_correlation.index)
        strings = np.array(format_real(r_round(corr, 3).ravel(), nsmall=3)).reshape(p, p)
        rows = [[strings[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
        return abbreviate(names, 11)[1:], abbreviate(names, 6)[:-1], rows

    def _closing_lines(self):
        """lme4's ``fit warnings:`` and optimizer notes (only when there is something to say)."""
        lines = []
        if self._fit_warnings:
            lines += ["fit warnings:", *self._fit_warnings]
        if self._optimizer_messages:
            record = self._result.optimizer
            code = "0 (OK)" if record.converged else f"1 ({record.message})"
            lines.append(f"optimizer ({record.optimizer}) convergence code: {code}")
            lines += list(self._optimizer_messages)
        return lines

    # ---------------------------------------------------------------- output
    def __str__(self):
        lines = self._header_lines() + [""]
        lines += self._fit_statistics_lines() + [""]
        values, names = self._residual_strings()
        lines += ["Scaled residuals: "] + print_named(values, names) + [""]
        lines += ["Random effects:"]
        names, rows = self._random_effects_cells()
        lines += print_matrix(rows, [""] * len(rows), names)
        lines += self._groups_text()
        p = len(self.fixed_effects)
        if p > 0:
            lines += ["", "Fixed effects:"]
            row_names, col_names, rows = self._fixed_effects_cells()
            lines += print_matrix(rows, row_names, col_names, right=True)
            lines += self._fixed_effects_legend()
            if 1 < p <= _COR_MAX:
                lines += ["", "Correlation of Fixed Effects:"]
                row_names, col_names, rows = self._correlation_cells()
                lines += print_matrix(rows, row_names, col_names)
            elif p > _COR_MAX:
                lines += [
                    "",
                    f"Correlation matrix not shown by default, as p = {p} > {_COR_MAX}.",
                    "Use summary.fixed_effects_correlation if you need it",
                ]
        lines += self._closing_lines()
        return "\n".join(lines)

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        def table(col_names, rows, row_names=None, caption=None):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in col_names)
            if row_names is not None:
                head = "<th></th>" + head
            body = []
            for k, row in enumerate(rows):
                cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in row)
                if row_names is not None:
                    cells = f"<th>{html.escape(row_names[k])}</th>" + cells
                body.append(f"<tr>{cells}</tr>")
            cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
            return (
                f'<table class="sklmixed-table">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>"
            )

        parts = ['<div class="sklmixed-summary">']
        header = self._header_lines()
        parts.append(
            f"<p><strong>{html.escape(' '.join(header[0].split()))}</strong>"
            + "".join(f"<br/>{html.escape(line.strip())}" for line in header[1:])
            + "</p>"
        )
        stats = self._fit_statistics_lines()
        if len(stats) == 1:
            parts.append(f"<p>{html.escape(stats[0])}</p>")
        else:
            parts.append(table(stats[0].split(), [stats[1].split()]))
        values, names = self._residual_strings()
        parts.append(table(names, [values], caption="Scaled residuals"))
        names, rows = self._random_effects_cells()
        parts.append(table(names, rows, caption="Random effects"))
        parts.append(f"<p>{html.escape(' '.join(self._groups_text()))}</p>")
        p = len(self.fixed_effects)
        if p > 0:
            row_names, col_names, rows = self._fixed_effects_cells()
            parts.append(table(col_names, rows, row_names, caption="Fixed effects"))
            if 1 < p <= _COR_MAX:
                row_names, col_names, rows = self._correlation_cells()
                parts.append(
                    table(col_names, rows, row_names, caption="Correlation of Fixed Effects")
                )
        closing = [line for line in self._closing_lines() if line]
        if closing:
            parts.append("<p>" + "<br/>".join(html.escape(line) for line in closing) + "</p>")
        parts.append("</div>")
        return "\n".join(parts)
