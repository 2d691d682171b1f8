"""lme4's ``print(summary(fit))`` for a fitted model: text, HTML and DataFrames.

:class:`Summary` reads a fitted :class:`~sklmixed.MixedLMRegressor` (its frozen
``result_``, ``scaled_residuals_`` and ``formula``) and never fits anything. Its text
follows lme4 1.1-31's ``print.summary.merMod`` line by line, and numbers are formatted
as R formats them (``format``, ``printCoefmat``, ``abbreviate``), so a summary can be
compared with lme4's output digit for digit. Every table is also a DataFrame with
unrounded numbers.

The R formatting rules live in the private helpers at the top of this module; the
layout of each section lives in :class:`Summary`.
"""

from __future__ import annotations

import html
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

__all__ = ["Summary"]

INTERCEPT = "(Intercept)"
# R's defaults as print.summary.merMod sees them.
_R_DIGITS = 7  # getOption("digits")
_DIGITS = max(3, _R_DIGITS - 3)  # print.summary.merMod's `digits`
_WIDTH = 80  # getOption("width")
_COR_MAX = 12  # getOption("lme4.summary.cor.max")
_SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


# --------------------------------------------------------------------------
# R's number formatting (src/main/format.c: scientific, formatReal)
# --------------------------------------------------------------------------
def _scientific(x, digits):
    """R's ``scientific()``: sign, power of ten, significant digits, rounding widens."""
    if x == 0.0:
        return 0, 0, 1, False
    neg = int(x < 0)
    r = abs(x)
    kp = math.floor(math.log10(r)) - digits + 1
    # Exact decimal arithmetic where R uses long doubles; they differ only on ties.
    r_prec = Decimal(r).scaleb(-kp)
    if r_prec < Decimal(10) ** (digits - 1):
        r_prec *= 10
        kp -= 1
    alpha = int(r_prec.to_integral_value(rounding=ROUND_HALF_EVEN))
    nsig = digits
    for _ in range(digits):
        if alpha % 10:
            break
        alpha //= 10
        nsig -= 1
    if nsig == 0 and digits > 0:
        nsig = 1
        kp += 1
    kpower = kp + digits - 1
    # Fixed notation may round less than scientific (9996 with 3 digits is 9996, not 1e4).
    rgt = min(max(digits - kpower, 0), 27)
    widens = 0 < kpower <= 27 and r < 10.0**kpower - 0.5 / 10.0**rgt
    return neg, kpower, nsig, widens


def _format_real(values, digits=_R_DIGITS, nsmall=0):
    """R's ``format(x, digits, nsmall)`` of a numeric vector: common width and decimals.

    Parameters
    ----------
    values : sequence of float
    digits : int
        Significant digits needed for the element that needs most.
    nsmall : int
        Minimum number of decimals in fixed notation.

    Returns
    -------
    list of str
        Right-justified strings of one width, in fixed or scientific notation.

    Examples
    --------
    >>> _format_real([0.0763, 0.0122, 0.5538], digits=4)
    ['0.0763', '0.0122', '0.5538']
    >>> _format_real([-3.8298, 0.0348, 3.4556], digits=4)
    ['-3.8298', ' 0.0348', ' 3.4556']
    """
    x = [float(v) + 0.0 for v in values]  # + 0.0 drops the sign of -0.0, as R does
    finite = [v for v in x if math.isfinite(v)]
    neg = 0
    rgt = mxl = mxsl = mxns = -(10**9)
    mnl = 10**9
    for v in finite:
        neg_i, kpower, nsig, widens = _scientific(v, digits)
        left = kpower + 1 - int(widens)
        sleft = neg_i + (1 if left <= 0 else left)
        rgt = max(rgt, nsig - left)
        mxl, mnl = max(mxl, left), min(mnl, left)
        mxsl, mxns = max(mxsl, sleft), max(mxns, nsig)
        neg = neg or neg_i
    if finite:
        if mxl < 0:
            mxsl = 1 + neg
        rgt = max(rgt, 0)
        w_fixed = mxsl + rgt + (rgt != 0)
        e = 2 if (mxl > 100 or mnl <= -99) else 1
        d = mxns - 1
        w = neg + (d > 0) + d + 4 + e
        if w_fixed <= w:
            e, d = 0, max(rgt, nsmall)
            w = mxsl + d + (d != 0)
    else:
        w = d = e = 0
    out = []
    for v in x:
        if math.isnan(v):
            s = "NaN"
        elif math.isinf(v):
            s = "Inf" if v > 0 else "-Inf"
        elif e:
            s = f"{v:#.{d}e}" if d > 0 else f"{v:.0e}"
        else:
            s = f"{v:.{d}f}"
        out.append(s)
    width = max([w] + [len(s) for s in out])
    return [s.rjust(width) for s in out]


def _format_one(value, digits=_R_DIGITS):
    """One number as R's ``cat`` prints it."""
    return _format_real([value], digits)[0].strip()


def _r_round(x, digits):
    """R's ``round(x, digits)`` (R >= 4.0): the nearest, ties to even, of the exact value."""
    x = np.asarray(x, dtype=float)
    out = [round(v, digits) if math.isfinite(v) else v for v in x.ravel()]
    return np.array(out).reshape(x.shape)


def _zapsmall(x, digits):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest value."""
    x = np.asarray(x, dtype=float)
    mx = np.max(np.abs(x[np.isfinite(x)]), initial=0.0)
    places = max(0, digits - math.ceil(math.log10(mx))) if mx > 0 else digits
    return _r_round(x, places)


# --------------------------------------------------------------------------
# R's abbreviate() (src/main/character.c: stripchars)
# --------------------------------------------------------------------------
def _strip_chars(name, minlength):
    """R's ``stripchars``: drop lower-case vowels, then lower-case letters, from the right."""
    s = list(name)

    def at(i):
        return s[i] if 0 <= i < len(s) else ""

    def first_char(i):  # the character starts a word
        return at(i - 1).isspace()

    def last_char(i):  # the character ends a word
        return not at(i - 1).isspace() and (at(i + 1) == "" or at(i + 1).isspace())

    def vowel(i):
        return at(i) in ("a", "e", "i", "o", "u")

    def lower(i):
        return at(i) != "" and "a" <= at(i) <= "z"

    nspace = 0
    trailing = True
    for i in range(len(s) - 1, 0, -1):  # record spaces, cut trailing ones
        if s[i].isspace():
            if trailing:
                del s[i:]
            else:
                nspace += 1
        else:
            trailing = False
        if len(s) - nspace <= minlength:
            return _drop_spaces(s, minlength)
    passes = [
        lambda i: vowel(i) and last_char(i),
        lambda i: vowel(i) and not first_char(i),
        lambda i: lower(i) and last_char(i),
        lambda i: lower(i) and not first_char(i),
        lambda i: not first_char(i) and not at(i).isspace(),  # brute force
    ]
    for remove in passes:
        for i in range(len(s) - 1, 0, -1):
            if remove(i):
                del s[i]
            if len(s) - nspace <= minlength:
                return _drop_spaces(s, minlength)
    return _drop_spaces(s, minlength)


def _drop_spaces(s, minlength):
    if len(s) > minlength:
        s = [s[0]] + [c for c in s[1:] if not c.isspace()]
    return "".join(s)


def _abbreviate(names, minlength):
    """R's ``abbreviate(names, minlength)``: unique abbreviations of at least ``minlength``.

    Examples
    --------
    >>> _abbreviate(["(Intercept)", "standLRT", "schavg", "standLRT:schavg"], 6)
    ['(Intr)', 'stnLRT', 'schavg', 'stLRT:']
    >>> _abbreviate(["(Intercept)", "standLRT", "standLRT:schavg"], 11)
    ['(Intercept)', 'standLRT', 'stndLRT:sch']
    """
    names = [str(n).strip(" ") for n in names]
    unique = list(dict.fromkeys(names))
    out = list(unique)
    redo = [True] * len(unique)
    length = minlength
    while True:
        for k, name in enumerate(unique):
            if redo[k]:
                out[k] = name if len(name) <= length else _strip_chars(name, length)
        seen, dup = set(), [False] * len(out)
        for k, a in enumerate(out):
            dup[k] = a in seen
            seen.add(a)
        if not any(dup):
            break
        length += 1
        clash = {out[k] for k in range(len(out)) if dup[k]}
        redo = [out[k] in clash for k in range(len(out))]
    lookup = dict(zip(unique, out))
    return [lookup[n] for n in names]


# --------------------------------------------------------------------------
# R's print of character matrices and named vectors
# --------------------------------------------------------------------------
def _print_matrix(cells, row_names, col_names, right=False):
    """R's ``print(m, quote = FALSE, right = right)`` of a character matrix.

    Columns are one space apart, as wide as their widest entry or label, left- or
    right-justified; row names left-justified; columns wrap at the width of 80.
    """
    rlabw = max([len(r) for r in row_names], default=0)
    if not col_names:
        return [name.ljust(rlabw) for name in row_names]
    # Width of each column with the space before it.
    widths = [
        1 + max([len(label)] + [len(row[j]) for row in cells]) for j, label in enumerate(col_names)
    ]
    just = str.rjust if right else str.ljust
    lines, start = [], 0
    while start < len(col_names):
        stop, total = start + 1, rlabw + widths[start]
        while stop < len(col_names) and total + widths[stop] < _WIDTH:
            total += widths[stop]
            stop += 1
        cols = range(start, stop)
        lines.append(" " * rlabw + "".join(" " + just(col_names[j], widths[j] - 1) for j in cols))
        for name, row in zip(row_names, cells):
            lines.append(
                name.ljust(rlabw) + "".join(" " + just(row[j], widths[j] - 1) for j in cols)
            )
        start = stop
    return lines


def _print_named(strings, names):
    """R's print of a named vector: right-justified, each entry followed by a space."""
    w = max(len(s) for s in list(strings) + list(names))
    per_line = max(1, _WIDTH // (w + 1))
    lines = []
    for start in range(0, len(strings), per_line):
        chunk = slice(start, start + per_line)
        lines.append("".join(n.rjust(w) + " " for n in names[chunk]))
        lines.append("".join(s.rjust(w) + " " for s in strings[chunk]))
    return lines


def _fill(items):
    """``cat(..., fill = TRUE)``: items one space apart, a new line before overflowing."""
    lines, line = [], ""
    for item in items:
        if line and len(line) + 1 + len(item) > _WIDTH:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    return lines


# --------------------------------------------------------------------------
# Formula text
# --------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<name>`[^`]*`|[A-Za-z.][A-Za-z0-9._]*|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<op>\|\||&&|%[^%]*%|==|!=|<=|>=|[~+\-*/^:|&<>!=$@])"
    r"|(?P<punct>[()\[\],]))"
)
_SPACED = {"~", "+", "-", "*", "|", "||", "&", "&&", "==", "!=", "<", ">", "<=", ">=", "="}


def _deparse_formula(text):
    """Space a formula as R's ``deparse`` does: ``y ~ x + (1 | g)``, ``a:b``, ``f(x, 2)``.

    Text this cannot tokenize is returned with its whitespace collapsed.
    """
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return " ".join(text.split())
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    out, prev = [], None
    for kind, tok in tokens:
        unary = kind == "op" and (prev is None or prev[0] == "op" or prev[1] in ("(", ",", "["))
        if kind == "op" and not unary and (tok in _SPACED or tok.startswith("%")):
            out.append(f" {tok} ")
        elif tok == ",":
            out.append(", ")
        else:
            out.append(tok)
        prev = (kind, tok)
    return "".join(out)


def _r_name(name):
    """A variable name as R writes it in a formula (backquoted when not syntactic)."""
    if re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*(:[A-Za-z.][A-Za-z0-9._]*)*", name):
        return name
    return f"`{name}`"


def _formula_from_result(result, response="y"):
    """The lme4 formula of an array-interface fit, from the result's names."""
    names = list(result.fixed_effects.index) + list(result.dropped_fixed)
    terms = [_r_name(n) for n in names if n != INTERCEPT]
    if INTERCEPT in names:
        fixed = terms or ["1"]
    else:
        fixed = ["0"] + terms
    bars = []
    for group, names in _random_blocks(result.variance_components):
        if group == "Residual":
            continue
        factor = _factor_of(group, result.n_groups)
        inner = ["1"] if INTERCEPT in names else ["0"]
        inner += [_r_name(n) for n in names if n != INTERCEPT]
        bars.append(f"({' + '.join(inner)} | {_r_name(factor)})")
    return f"{response} ~ " + " + ".join(fixed + bars)


def _factor_of(group, n_groups):
    """``school.1`` (lme4's name of a second term on ``school``) -> ``school``."""
    if group in n_groups:
        return group
    base, _, suffix = group.rpartition(".")
    return base if suffix.isdigit() and base in n_groups else group


# --------------------------------------------------------------------------
# Tables read from the result
# --------------------------------------------------------------------------
def _random_blocks(varcorr):
    """``[(group, [names])]`` in the order of ``variance_components``."""
    blocks: dict[str, list] = {}
    for row in varcorr.itertuples(index=False):
        if _missing(row.var2):
            names = blocks.setdefault(row.group, [])
            if not _missing(row.var1):
                names.append(row.var1)
    return list(blocks.items())


def _missing(value):
    """An empty ``var1``/``var2`` entry: None, NaN or NA, or "" (as R writes it)."""
    return isinstance(value, str) and value == "" or not isinstance(value, str) and pd.isna(value)


def _random_effects_table(varcorr):
    """The random-effects table: one row per variance, correlations in ``Corr`` columns."""
    blocks = _random_blocks(varcorr)
    n_corr = max([len(names) for _, names in blocks] + [1]) - 1
    corr_cols = ["Corr"] if n_corr == 1 else [f"Corr.{k + 1}" for k in range(n_corr)]
    rows = []
    for group, names in blocks:
        sub = varcorr[varcorr["group"] == group]
        if not names:  # Residual
            var = sub.iloc[0]
            rows.append([group, "", var["vcov"], var["sdcor"]] + [np.nan] * n_corr)
            continue
        for a, name in enumerate(names):
            var = sub[(sub["var1"] == name) & sub["var2"].map(_missing)].iloc[0]
            corr = [np.nan] * n_corr
            for b in range(a):
                pair = sub[(sub["var1"] == names[b]) & (sub["var2"] == name)]
                corr[b] = float(pair["sdcor"].iloc[0]) if len(pair) else np.nan
            rows.append([group, name, var["vcov"], var["sdcor"]] + corr)
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
    scaled_residuals : array-like of shape (n_samples,)
        Scaled Pearson residuals (the estimator's ``scaled_residuals_``).
    formula : str
        The model formula to print.
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

    def __init__(self, result, scaled_residuals, formula, data_name=None):
        self._result = result
        self.method_title = (
            "Linear mixed model fit by REML"
            if result.method == "REML"
            else "Linear mixed model fit by maximum likelihood "
        )
        self.formula = formula
        self.data_name = data_name
        self.n_obs = int(result.n_obs)
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
        self.random_effects = _random_effects_table(result.variance_components)
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
        """The summary of a fitted :class:`~sklmixed.MixedLMRegressor`.

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
        result = model.result_
        formula = model.formula
        formula = _deparse_formula(formula) if formula else _formula_from_result(result)
        return cls(result, model.scaled_residuals_, formula, data_name=data_name)

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
            value = _r_round(stats["REML criterion"], 1)
            return _fill(["REML criterion at convergence:", _format_one(float(value))])
        values = _r_round(stats[["AIC", "BIC", "logLik", "deviance", "df.resid"]].astype(float), 1)
        strings = _format_real(values)
        strings[-1] = _format_one(values[-1])  # df.resid formatted on its own, as an integer
        return _print_named(strings, list(self.fit_statistics.columns))

    def _residual_strings(self):
        values = _zapsmall(self.residuals.iloc[0].to_numpy(), _DIGITS + 1)
        return _format_real(values, _DIGITS), list(self.residuals.columns)

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
            strings = _format_real(_r_round(full, 2).ravel(), nsmall=2)
            for a in range(q):
                for b in range(a):
                    corr[pos[a]][b] = strings[a * q + b]
        names = ["Groups", "Name", "Variance", "Std.Dev."] + [
            "Corr" if k == 0 else "" for k in range(len(corr_cols))
        ]
        first = ~table["Groups"].duplicated()
        variances = _format_real(table["Variance"], _DIGITS)
        sds = _format_real(table["Std.Dev."], _DIGITS)
        rows = [
            [g if f else "", n, v, s] + c
            for g, f, n, v, s, c in zip(table["Groups"], first, table["Name"], variances, sds, corr)
        ]
        return names, rows

    def _groups_text(self):
        groups = "; ".join(f"{g}, {n}" for g, n in self.groups["Levels"].items())
        return _fill([f"Number of obs: {self.n_obs}, groups: ", groups])

    def _fixed_effects_cells(self):
        """Row names, column names and rows of lme4's ``printCoefmat`` table."""
        table = self.fixed_effects
        coef_se = table[["Estimate", "Std. Error"]].to_numpy()
        acs = np.abs(coef_se)
        acs = acs[np.isfinite(acs) & (acs != 0)]
        digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
        places = int(max(1, *(_DIGITS - digmin)))
        cs = np.array(_format_real(_r_round(coef_se, places).ravel(order="F"), _DIGITS))
        cs = cs.reshape(coef_se.shape, order="F")
        dig_tst = max(1, min(5, _DIGITS - 1))
        tst = _format_real(_r_round(table["t value"].to_numpy(), dig_tst), _DIGITS)
        # An estimate shown as zero that is not zero gets fewer digits of its own.
        shown_zero = [
            (i, j)
            for i in range(cs.shape[0])
            for j in range(2)
            if coef_se[i, j] != 0 and float(cs[i, j]) == 0
        ]
        if shown_zero:
            fixes = _format_real([coef_se[i, j] for i, j in shown_zero], max(1, _DIGITS - 1))
            for (i, j), s in zip(shown_zero, fixes):
                cs[i, j] = s
        rows = [[cs[i, 0], cs[i, 1], tst[i]] for i in range(len(table))]
        return list(table.index), list(table.columns), rows

    def _correlation_cells(self):
        """Row names, column names and rows of lme4's correlation of fixed effects."""
        corr = self.fixed_effects_correlation.to_numpy()
        p = corr.shape[0]
        names = list(self.fixed_effects_correlation.index)
        strings = np.array(_format_real(_r_round(corr, 3).ravel(), nsmall=3)).reshape(p, p)
        rows = [[strings[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
        return _abbreviate(names, 11)[1:], _abbreviate(names, 6)[:-1], rows

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
        lines += ["Scaled residuals: "] + _print_named(values, names) + [""]
        lines += ["Random effects:"]
        names, rows = self._random_effects_cells()
        lines += _print_matrix(rows, [""] * len(rows), names)
        lines += self._groups_text()
        p = len(self.fixed_effects)
        if p > 0:
            lines += ["", "Fixed effects:"]
            row_names, col_names, rows = self._fixed_effects_cells()
            lines += _print_matrix(rows, row_names, col_names, right=True)
            if 1 < p <= _COR_MAX:
                lines += ["", "Correlation of Fixed Effects:"]
                row_names, col_names, rows = self._correlation_cells()
                lines += _print_matrix(rows, row_names, col_names)
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
