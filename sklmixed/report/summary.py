"""lme4's ``print(summary(fit))`` of a result: text, HTML and DataFrames.

:class:`Summary` reads a :class:`~sklmixed.result.MixedLMResult` and never fits
anything (the df of lmerTest's t-tests come from :mod:`sklmixed.inference`, which
reads the same result). Its text follows lme4 1.1-31's ``print.summary.merMod`` (with
lmerTest 3.1-3's title and columns unless ``ddf="lme4"``) line by line, with
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
    SIGNIF_LEGEND,
    format_one,
    format_pval,
    format_real,
    print_matrix,
    print_named,
    r_round,
    signif_stars,
    title_lines,
    zapsmall,
)

__all__ = ["Summary"]

_DIGITS = 4  # print.summary.merMod's `digits`: max(3, getOption("digits") - 3)
_COR_MAX = 12  # getOption("lme4.summary.cor.max")
_SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
# summary(fit, ddf = ...) of lmerTest: the name of the method in its title.
_DDF_METHODS = {"Satterthwaite": "Satterthwaite's", "Kenward-Roger": "Kenward-Roger's", "lme4": None}


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
    """lme4's ``summary()`` of a fitted linear mixed model, with lmerTest's t-tests.

    ``print(summary)`` gives the text of R's ``print(summary(fit))`` (lmerTest loaded,
    or lme4 alone with ``ddf="lme4"``), numbers at
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
    ddf : {"Satterthwaite", "Kenward-Roger", "lme4"}, default="Satterthwaite"
        lmerTest's ``summary(fit, ddf = ...)``: t-tests with Satterthwaite's or
        Kenward–Roger's denominator df (the latter with its adjusted standard errors,
        for REML fits), or lme4's own table without df and p-values.

    Attributes
    ----------
    ddf : str
        The df method.
    method_title : str
        ``"Linear mixed model fit by REML"`` or ``"... by maximum likelihood"``, with
        lmerTest's ``". t-tests use Satterthwaite's method"`` unless ``ddf="lme4"``.
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
        ``Estimate``, ``Std. Error``, ``df``, ``t value`` and ``Pr(>|t|)`` of each
        fixed effect (lmerTest's columns); ``Estimate``, ``Std. Error`` and
        ``t value`` only with ``ddf="lme4"``.
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
    Linear mixed model fit by REML. t-tests use Satterthwaite's method [
    lmerModLmerTest]
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
                 Estimate Std. Error        df t value Pr(>|t|)
    (Intercept) 2.323e-03  4.035e-02 6.073e+01   0.058    0.954
    standLRT    5.633e-01  1.247e-02 4.050e+03  45.180   <2e-16 ***
    ---
    Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1
    <BLANKLINE>
    Correlation of Fixed Effects:
             (Intr)
    standLRT 0.008
    >>> summary.fixed_effects.round(2)
                 Estimate  Std. Error       df  t value  Pr(>|t|)
    (Intercept)      0.00        0.04    60.73     0.06      0.95
    standLRT         0.56        0.01  4050.07    45.18      0.00
    """

    def __init__(
        self, result, scaled_residuals=None, formula=None, data_name=None, ddf="Satterthwaite"
    ):
        if ddf not in _DDF_METHODS:
            raise ValueError(f"ddf must be one of {sorted(_DDF_METHODS)}; got {ddf!r}.")
        if scaled_residuals is None:
            scaled_residuals = result.scaled_residuals
        formula = deparse_formula(result.formula if formula is None else formula)
        self._result = result
        self.ddf = ddf
        self.method_title = (
            "Linear mixed model fit by REML"
            if result.method == "REML"
            else "Linear mixed model fit by maximum likelihood "
        )
        if _DDF_METHODS[ddf] is not None:
            self.method_title += f". t-tests use {_DDF_METHODS[ddf]} method"
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

        if scaled_residuals is None:  # not kept (a Dask fit): their quantiles are
            quartiles = np.asarray(result.residual_quantiles, dtype=float)
        else:
            quartiles = np.quantile(
                np.asarray(scaled_residuals, dtype=float), [0, 0.25, 0.5, 0.75, 1]
            )
        self.residuals = pd.DataFrame(
            [quartiles], columns=["Min", "1Q", "Median", "3Q", "Max"], index=["Scaled residuals"]
        )
        self.random_effects = _random_effects_table(result)
        self.groups = pd.DataFrame(
            {"Levels": list(result.n_groups.values())},
            index=pd.Index(list(result.n_groups), name="Groups"),
        )
        beta, se = result.fixed_effects, result.fixed_effects_se
        if ddf == "lme4" or beta.size == 0:
            self.fixed_effects = pd.DataFrame(
                {
                    "Estimate": beta.to_numpy(),
                    "Std. Error": se.to_numpy(),
                    "t value": beta.to_numpy() / se.to_numpy(),
                },
                index=beta.index,
            )
        else:
            from ..inference import kenward_roger, satterthwaite

            tests = satterthwaite if ddf == "Satterthwaite" else kenward_roger
            self.fixed_effects = tests(result)
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
    def _title_lines(self):
        cls = "lmerMod" if self.ddf == "lme4" else "lmerModLmerTest"
        return title_lines(self.method_title, cls)

    def _header_lines(self):
        # R's deparse() would break a formula longer than 60 characters; we do not.
        lines = self._title_lines() + [f"Formula: {self.formula}"]
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
        """Row names, column names and rows of lme4's ``printCoefmat`` table (with
        lmerTest's df and p-values, and significance stars, unless ``ddf="lme4"``)."""
        table = self.fixed_effects
        # printCoefmat's cs.ind: every column before the t value (df included).
        statistic = "z value" if "z value" in table.columns else "t value"
        cs_names = list(table.columns[: list(table.columns).index(statistic)])
        coef_se = table[cs_names].to_numpy()
        acs = np.abs(coef_se)
        acs = acs[np.isfinite(acs) & (acs != 0)]
        digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
        places = int(max(1, *(_DIGITS - digmin)))
        cs = np.array(format_real(r_round(coef_se, places).ravel(order="F"), _DIGITS))
        cs = cs.reshape(coef_se.shape, order="F")
        dig_tst = max(1, min(5, _DIGITS - 1))
        tst = format_real(r_round(table[statistic].to_numpy(), dig_tst), _DIGITS)
        # An estimate shown as zero that is not zero gets fewer digits of its own.
        shown_zero = [
            (i, j)
            for i in range(cs.shape[0])
            for j in range(len(cs_names))
            if coef_se[i, j] != 0 and float(cs[i, j]) == 0
        ]
        if shown_zero:
            fixes = format_real([coef_se[i, j] for i, j in shown_zero], max(1, _DIGITS - 1))
            for (i, j), s in zip(shown_zero, fixes):
                cs[i, j] = s
        rows = [list(cs[i]) + [tst[i]] for i in range(len(table))]
        names = cs_names + [statistic]
        p_name = next((c for c in ("Pr(>|t|)", "Pr(>|z|)") if c in table.columns), None)
        if p_name is not None:
            pv = table[p_name].to_numpy()
            for row, text in zip(rows, format_pval(pv, dig_tst)):
                row.append(text)
            names.append(p_name)
            if (pv < 0.1).any():
                for row, star in zip(rows, signif_stars(pv)):
                    row.append(star)
                names.append("")
        return list(table.index), names, rows

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
            if col_names[-1] == "":  # significance stars
                lines += ["---", SIGNIF_LEGEND]
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
        n_title = len(self._title_lines())
        title = " ".join(" ".join(header[:n_title]).split()).replace("[ ", "[")
        parts.append(
            f"<p><strong>{html.escape(title)}</strong>"
            + "".join(f"<br/>{html.escape(line.strip())}" for line in header[n_title:])
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
