"""R's formatting of numbers and tables, as ``print.summary.merMod`` uses it.

``format``, ``printCoefmat``'s rounding, ``abbreviate``, ``print`` of a character
matrix, ``cat``'s line filling and ``deparse``'s spacing of a formula: enough of R
that a summary can be compared with lme4's output digit for digit.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

__all__ = [
    "abbreviate",
    "deparse_formula",
    "fill",
    "format_one",
    "format_pval",
    "format_real",
    "print_matrix",
    "print_named",
    "r_round",
    "signif_stars",
    "title_lines",
    "zapsmall",
]

# R's defaults as print.summary.merMod sees them.
_R_DIGITS = 7  # getOption("digits")
_WIDTH = 80  # getOption("width")


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


def format_real(values, digits=_R_DIGITS, nsmall=0):
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
    >>> format_real([0.0763, 0.0122, 0.5538], digits=4)
    ['0.0763', '0.0122', '0.5538']
    >>> format_real([-3.8298, 0.0348, 3.4556], digits=4)
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


def format_one(value, digits=_R_DIGITS):
    """One number as R's ``cat`` prints it."""
    return format_real([value], digits)[0].strip()


def r_round(x, digits):
    """R's ``round(x, digits)`` (R >= 4.0): the nearest, ties to even, of the exact value."""
    x = np.asarray(x, dtype=float)
    out = [round(v, digits) if math.isfinite(v) else v for v in x.ravel()]
    return np.array(out).reshape(x.shape)


def zapsmall(x, digits):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest value."""
    x = np.asarray(x, dtype=float)
    mx = np.max(np.abs(x[np.isfinite(x)]), initial=0.0)
    # R 4's zapsmall: round(x, max(0, digits - log10(mx))); round() takes the nearest
    # integer of fractional digits.
    places = math.floor(max(0.0, digits - math.log10(mx)) + 0.5) if mx > 0 else digits
    return r_round(x, places)


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


def abbreviate(names, minlength):
    """R's ``abbreviate(names, minlength)``: unique abbreviations of at least ``minlength``.

    Examples
    --------
    >>> abbreviate(["(Intercept)", "standLRT", "schavg", "standLRT:schavg"], 6)
    ['(Intr)', 'stnLRT', 'schavg', 'stLRT:']
    >>> abbreviate(["(Intercept)", "standLRT", "standLRT:schavg"], 11)
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
def print_matrix(cells, row_names, col_names, right=False):
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


def print_named(strings, names):
    """R's print of a named vector: right-justified, each entry followed by a space."""
    w = max(len(s) for s in list(strings) + list(names))
    per_line = max(1, _WIDTH // (w + 1))
    lines = []
    for start in range(0, len(strings), per_line):
        chunk = slice(start, start + per_line)
        lines.append("".join(n.rjust(w) + " " for n in names[chunk]))
        lines.append("".join(s.rjust(w) + " " for s in strings[chunk]))
    return lines


def fill(items):
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


def title_lines(title, cls):
    """lme4's ``.prt.methTit``: ``title ['cls']``, or wrapped (``strwrap`` at the width
    less 2, indent 2) and followed by `` [cls]`` with ``cat(sep = "", fill = TRUE)``."""
    if len(title) + 5 + len(cls) <= _WIDTH:
        return [f"{title} ['{cls}']"]
    wrapped, line = [], ""
    for word in title.split():
        candidate = f"{line} {word}" if line else ("  " if wrapped else "") + word
        if line and len(candidate) >= _WIDTH - 2:
            wrapped.append(line)
            line = "  " + word
        else:
            line = candidate
    wrapped.append(line)
    lines, current = [], ""
    for item in wrapped + [" [", cls, "]"]:
        if current and len(current) + len(item) > _WIDTH:
            lines.append(current)
            current = item
        else:
            current += item
    return lines + [current]


# --------------------------------------------------------------------------
# p-values (printCoefmat's format.pval and significance stars)
# --------------------------------------------------------------------------
_EPS = float(np.finfo(float).eps)
SIGNIF_LEGEND = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def format_pval(pv, digits):
    """R's ``format.pval(pv, digits, eps = .Machine$double.eps)``.

    Examples
    --------
    >>> format_pval([0.84923, 1e-30, 0.0013, 0.00681], 3)
    ['0.84923', '< 2e-16', '0.00130', '0.00681']
    """
    pv = np.asarray(pv, dtype=float)
    out = [""] * pv.size
    is0 = pv < _EPS
    rest = np.flatnonzero(~is0)
    if rest.size:
        values = pv[rest]
        expo = np.floor(np.log10(np.where(values > 0, values, 1e-50)))
        # R 4.2 prints 1e-4 <= p < 1e-3 in fixed notation too when digits > 1.
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1)) | (values == 0)
        for mask in (fixp, ~fixp):
            if mask.any():
                for i, text in zip(rest[mask], format_real(values[mask], digits)):
                    out[i] = text
    if is0.any():
        d = max(1, digits - 2)
        if rest.size:
            nc = max(len(out[i]) for i in rest)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        text = "<" + sep + format_real([_EPS], d)[0].strip()
        for i in np.flatnonzero(is0):
            out[i] = text
    return out


def signif_stars(pv):
    """``symnum``'s significance codes of p-values (``***`` at or below 0.001, ...),
    padded to one width as ``format`` pads them."""
    cuts = [(0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")]
    stars = [next((s for c, s in cuts if p <= c), " ") for p in np.asarray(pv, dtype=float)]
    width = max(len(s) for s in stars)
    return [s.ljust(width) for s in stars]


# --------------------------------------------------------------------------
# Formula text
# --------------------------------------------------------------------------
def deparse_formula(text):
    """Space a formula as R's ``deparse`` does: ``y ~ x + (1 | g)``, ``a:b``, ``f(x, 2)``.

    The formula is read by the one formula tokenizer and parser
    (:mod:`sklmixed.design.formula`) and written back as R writes it; text they cannot
    read is returned with its whitespace collapsed.
    """
    from ..design.formula.deparse import deparse
    from ..design.formula.syntax import parse_expression

    try:
        return deparse(parse_expression(text.strip()))
    except ValueError:
        return " ".join(text.split())
