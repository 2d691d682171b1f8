"""R's text of our nodes: column names are built from it, exactly as R prints them.

R names a model column after the deparsed expression (``I(x^2)``, ``log(x, base =
2)``, ``poly(x, 2)1``) and a factor level after ``as.character`` of its value
(``2``, ``0.5``, ``1e+05``); both use 15 significant digits and pick fixed or
scientific notation by width, which :func:`format_number` reproduces.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .syntax import Binary, Call, Logical, Name, Number, Paren, String, Unary
from ..._names import r_name
from .tokens import tokenize

__all__ = ["deparse", "format_level", "format_number", "normalized_text", "r_name"]

# R's deparse puts spaces around these binary operators and none around the others
# ("/", "^", ":", "%%", "%/%").
_SPACED = frozenset("~ | || & == != < <= > >= + - * %in%".split())
_ESCAPE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def format_number(value):
    """A double as R's ``deparse``/``as.character`` print it (15 significant digits).

    Parameters
    ----------
    value : float

    Returns
    -------
    str

    Examples
    --------
    >>> [format_number(v) for v in (2.0, 0.5, 1e5, 123456.0, 1e-4, 0.001, -3.25)]
    ['2', '0.5', '1e+05', '123456', '1e-04', '0.001', '-3.25']
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    mantissa, exponent = f"{abs(value):.14e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    nsig, exp = len(digits), int(exponent)
    sign = 1 if value < 0 else 0
    # Widths of both notations; R takes fixed unless it is wider than scientific.
    decimals = max(0, nsig - 1 - exp)
    fixed_width = sign + (exp + 1 if exp >= 0 else 1) + (decimals + 1 if decimals else 0)
    sci_width = sign + nsig + (1 if nsig > 1 else 0) + (4 if abs(exp) < 100 else 5)
    if fixed_width <= sci_width:
        return f"{value:.{decimals}f}"
    return f"{value:.{nsig - 1}e}"


def format_level(value):
    """A factor level as R prints it.

    Parameters
    ----------
    value : object
        A level's value.

    Returns
    -------
    str
        ``True`` -> ``"TRUE"``, ``2.0`` -> ``"2"``, ``np.int64(3)`` -> ``"3"``.
    """
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_number(value)
    return str(value)


def _string(value):
    return '"' + "".join(_ESCAPE.get(c, c) for c in value) + '"'


def deparse(node):
    """R's text of ``node`` (``quote(...)`` then ``deparse`` in R).

    Parameters
    ----------
    node
        A node of :mod:`.syntax`.

    Returns
    -------
    str

    Examples
    --------
    >>> from .syntax import parse_expression
    >>> deparse(parse_expression("I((x+1)^2/2)")), deparse(parse_expression("log(x,base=2)"))
    ('I((x + 1)^2/2)', 'log(x, base = 2)')
    """
    kind = type(node)
    if kind is Name:
        return r_name(node.name)
    if kind is Number:
        if node.integer:
            return f"{int(node.value)}L"
        return format_number(node.value)
    if kind is String:
        return _string(node.value)
    if kind is Logical:
        return "TRUE" if node.value else "FALSE"
    if kind is Paren:
        return f"({deparse(node.inner)})"
    if kind is Unary:
        return node.op + deparse(node.operand)
    if kind is Binary:
        op = f" {node.op} " if node.op in _SPACED else node.op
        return deparse(node.left) + op + deparse(node.right)
    if kind is Call:
        args = [
            deparse(a.value) if a.name is None else f"{r_name(a.name)} = {deparse(a.value)}"
            for a in node.args
        ]
        return f"{r_name(node.function)}({', '.join(args)})"
    raise TypeError(f"not a formula node: {node!r}")  # pragma: no cover


def normalized_text(text, start, end):
    """The piece ``text[start:end]`` in the syntax of the normalized text fields.

    Kept for :class:`~.parse.ParsedFormula`'s text fields, which read as before:
    R's ``^`` inside a call becomes ``**``, ``TRUE`` becomes ``True`` and a dotted
    name inside a call is put in backticks; spacing is the source's.

    Parameters
    ----------
    text : str
        The formula.
    start, end : int
        Offsets of the piece.

    Returns
    -------
    str
    """
    out, prev_end, calls = [], None, []
    tokens = tokenize(text[start:end])
    for i, tok in enumerate(tokens):
        piece = text[start + tok.start : start + tok.end]
        inside = any(calls)
        if tok.kind == "op" and tok.value == "(":
            calls.append(i > 0 and tokens[i - 1].kind == "name")
        elif tok.kind == "op" and tok.value == ")":
            calls.pop()
        elif inside and tok.kind == "op" and tok.value == "^":
            piece = "**"
        elif inside and tok.kind == "logical":
            piece = "True" if tok.value else "False"
        elif (
            inside
            and tok.kind == "name"
            and not tok.quoted
            and "." in tok.value
            and not (
                i + 1 < len(tokens) and tokens[i + 1].kind == "op" and tokens[i + 1].value == "("
            )
        ):
            piece = f"`{tok.value}`"
        if prev_end is not None and tok.start > prev_end:
            out.append(" ")
        out.append(piece)
        prev_end = tok.end
    return "".join(out)
