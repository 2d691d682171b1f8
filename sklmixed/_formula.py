"""lme4 formula text -> a fixed-effects matrix and random-effects terms.

Two steps, as in lme4:

1. :func:`parse_formula` reads the text with a small tokenizer and parenthesis
   matcher (never ``eval``) and splits it into the response, the fixed part and the
   random-effects bars ``(lhs | group)``, expanding ``||`` (lme4's
   ``expandDoubleVerts``) and ``g1/g2`` (lme4's ``findbars``/``expandSlash``).
2. :class:`FormulaDesign` materializes the fixed part and each bar's left side with
   formulaic on the training data, keeps formulaic's ``ModelSpec`` (categorical
   levels, stateful transforms such as ``center(x)``) and rebuilds the same columns
   from new data. Column names are converted to lme4's (``"(Intercept)"``,
   ``"sexM"``, ``"I(standLRT^2)"``).

R and Python differ in a few places, handled here:

- ``^`` inside a function call (``I(x^2)``, ``log(x^2)``) is arithmetic power in R
  and xor in Python: it is rewritten to ``**``. Outside calls ``(a + b)^2`` means
  "all interactions up to order 2" in R and in formulaic, and is kept.
- Names with dots (``school.id``) are attribute access in Python: inside calls they
  are quoted with backticks, which formulaic reads as a column name.
- ``factor(x)`` is formulaic's ``C(x)`` under R's name; ``sqrt`` and ``abs`` are
  numpy's. Every expression that formulaic would evaluate as Python is checked
  first: only arithmetic, comparisons, literals, column names and calls to a short
  list of functions (formulaic's transforms) are accepted.
- Logical columns (``bool``) are coded as R codes logicals, as a two-level factor
  (``bTRUE``).

Only numpy, pandas, formulaic and the data limits of ``_design`` are imported: no
estimator, no numerical core.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import DataMismatchWarning, FormulaicError
from formulaic.parser.types import Factor
from formulaic.transforms import TRANSFORMS

from .design.checks import MAX_MAGNITUDE

__all__ = [
    "FormulaDesign",
    "ParsedFormula",
    "RandomBar",
    "RandomTermData",
    "parse_formula",
]

from ._names import INTERCEPT  # noqa: E402

# ---------------------------------------------------------------------------------
# Parsed formula
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomBar:
    """One random-effects term ``(lhs | group)`` after lme4's expansions.

    Attributes
    ----------
    lhs : str
        The left side in formulaic syntax with the intercept made explicit:
        ``"1"``, ``"1 + standLRT"``, ``"0 + sex"``.
    group : tuple of str
        Variables of the grouping factor, in the order lme4 interacts them:
        ``("school",)``; ``("batch", "cask")`` for ``batch:cask``; ``("cask",
        "batch")`` for the inner factor of ``batch/cask``.
    correlated : bool
        False when the bar comes from a ``||`` term.
    group_name : str, optional
        lme4's name of the grouping factor. Defaults to ``":".join(group)``;
        differs only for deeper nesting, where lme4 writes ``c:(b:a)`` for the
        innermost factor of ``a/b/c``.
    """

    lhs: str
    group: tuple
    correlated: bool = True
    group_name: str = field(default=None)

    def __post_init__(self):
        if self.group_name is None:
            object.__setattr__(self, "group_name", ":".join(self.group))


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into its parts.

    Attributes
    ----------
    response : str or None
        The column named on the left of ``~``, or None for a one-sided formula.
    fixed : str
        The right side without the bars, in formulaic syntax, intercept explicit
        (``"1 + standLRT * schavg"``, ``"0 + x"``, ``"1"``).
    bars : tuple of RandomBar
        The random-effects terms in lme4's order (``||`` and ``/`` expanded).
    """

    response: str | None
    fixed: str
    bars: tuple


class _Token(NamedTuple):
    kind: str  # "name", "number", "string", "op", "(", ")"
    text: str
    start: int
    end: int


# Numbers before names, so that ".5" is a number; "." alone is caught later.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<name>`[^`]*`|[A-Za-z.][A-Za-z0-9._]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>\|\||\*\*|%[^%\s]*%|==|!=|<=|>=|[~+\-*/^:|,=<>!&])
  | (?P<paren>[()])
    """,
    re.VERBOSE,
)
_BARS = ("|", "||")
_OPERAND_KINDS = ("name", "number", "string")
_R_NAME = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$")


def _tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ValueError(f"Cannot read the formula {text!r} at {text[pos:]!r}.")
        kind = match.lastgroup
        if kind != "ws":
            token_text = match.group()
            if kind == "paren":
                kind = token_text
            tokens.append(_Token(kind, token_text, match.start(), match.end()))
        pos = match.end()
    return tokens


class _Source:
    """Tokens of a formula with matched parentheses, quoting pieces of the text."""

    def __init__(self, text):
        self.text = text
        self.tokens = _tokenize(text)
        # match[i]: index of the parenthesis matching token i; call[i]: whether the
        # "(" at i opens a function call (follows a name) rather than a group.
        # depth[i]: parentheses around token i (a parenthesis itself counts as outside).
        self.match, self.call, self.depth = {}, {}, []
        stack = []
        for i, tok in enumerate(self.tokens):
            if tok.kind == ")":
                if not stack:
                    raise ValueError(
                        f"Unbalanced parentheses: ')' without '(' in {text[: tok.end]!r}."
                    )
                j = stack.pop()
                self.match[i], self.match[j] = j, i
            self.depth.append(len(stack))
            if tok.kind == "(":
                self.call[i] = i > 0 and self.tokens[i - 1].kind == "name"
                stack.append(i)
        if stack:
            rest = text[self.tokens[stack[0]].start :]
            raise ValueError(f"Unbalanced parentheses: '(' is never closed in {rest!r}.")

    def quote(self, lo, hi):
        """The original text of tokens ``lo`` to ``hi - 1``."""
        if lo >= hi:
            return ""
        return self.text[self.tokens[lo].start : self.tokens[hi - 1].end]

    def in_call(self, i):
        """Whether token ``i`` lies inside the parentheses of a function call."""
        return any(
            self.call[j] and i < self.match[j] for j in range(i) if self.tokens[j].kind == "("
        )


def _split_terms(src, lo, hi, where=None):
    """Split tokens ``lo:hi`` at top-level ``+`` / ``-`` into ``(sign, lo, hi)`` pieces."""
    pieces, sign, start, depth = [], "+", lo, 0
    for i in range(lo, hi):
        tok = src.tokens[i]
        if tok.kind == "(":
            depth += 1
        elif tok.kind == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "op" and tok.text in ("+", "-"):
            follows_operand = i > lo and src.tokens[i - 1].kind in (*_OPERAND_KINDS, ")")
            if i == lo or follows_operand:
                if i > start:
                    pieces.append((sign, start, i))
                elif i > lo:
                    raise ValueError(
                        f"Missing term before {tok.text!r} in {where or src.quote(lo, hi)!r}."
                    )
                sign, start = tok.text, i + 1
    if start >= hi:
        raise ValueError(
            f"Missing term after {sign!r} in {where or src.quote(lo, hi) or src.text!r}."
        )
    pieces.append((sign, start, hi))
    return pieces


def _check_syntax(src, lo, hi):
    """Raise ValueError unless tokens ``lo:hi`` are a well-formed expression."""

    def where(i):
        # Quote the innermost parenthesized group around token i, else the piece.
        for j in range(i, lo - 1, -1):
            if src.tokens[j].kind == "(" and src.match[j] >= i and src.match[j] < hi:
                return src.quote(j, src.match[j] + 1)
        return src.quote(lo, hi)

    expect_operand = True
    for i in range(lo, hi):
        tok = src.tokens[i]
        if tok.kind == "name" and tok.text == ".":
            raise ValueError(
                f"'.' (all other columns) is not supported; name the columns in {where(i)!r}."
            )
        if expect_operand:
            if tok.kind in _OPERAND_KINDS:
                expect_operand = False
            elif tok.kind == "(":
                if i + 1 < hi and src.tokens[i + 1].kind == ")" and not src.call[i]:
                    raise ValueError(f"Empty parentheses in {where(i)!r}.")
            elif tok.kind == ")" and src.call.get(src.match[i]) and src.match[i] == i - 1:
                expect_operand = False  # f()
            elif tok.kind == "op" and tok.text in ("+", "-", "!"):
                pass  # unary
            else:
                before = f"before {tok.text!r}" if tok.kind != ")" else "before ')'"
                raise ValueError(f"Missing term {before} in {where(i)!r}.")
        else:
            if tok.kind == "op":
                expect_operand = True
            elif tok.kind == ")":
                pass
            elif tok.kind == "(" and src.call[i]:
                expect_operand = True
            else:
                prev = src.tokens[i - 1].text
                raise ValueError(
                    f"Missing operator between {prev!r} and {tok.text!r} in {where(i)!r}."
                )
    if expect_operand:
        raise ValueError(f"Missing term at the end of {src.quote(lo, hi) or src.text!r}.")


def _translate(src, lo, hi):
    """Formulaic text of tokens ``lo:hi``: R's ``^`` inside calls becomes ``**``."""
    out, prev_end = [], None
    for i in range(lo, hi):
        tok = src.tokens[i]
        text = tok.text
        if src.in_call(i):
            if tok.kind == "op" and text == "^":
                text = "**"
            elif tok.kind == "op" and text in ("|", "||", "&", "!"):
                raise ValueError(
                    f"Logical operator {text!r} inside a function call is not supported "
                    f"in {src.quote(lo, hi)!r}; create the column in the data instead."
                )
            elif tok.kind == "op" and text.startswith("%"):
                raise ValueError(
                    f"Operator {text!r} inside a function call is not supported in "
                    f"{src.quote(lo, hi)!r}."
                )
            elif tok.kind == "name" and text in ("TRUE", "FALSE"):
                text = text.title()
            elif (
                tok.kind == "name"
                and "." in text
                and not text.startswith("`")
                and not (i + 1 < hi and src.tokens[i + 1].kind == "(")
            ):
                text = f"`{text}`"  # a dotted column name, not attribute access
        if prev_end is not None and tok.start > prev_end:
            out.append(" ")
        out.append(text)
        prev_end = tok.end
    return "".join(out)


def _explicit_intercept(src, pieces):
    """Formulaic text ``"1 + ..."`` / ``"0 + ..."`` of additive pieces, R's intercept rules."""
    intercept, rest = True, []
    for sign, lo, hi in pieces:
        text = src.quote(lo, hi)
        if hi - lo == 1 and text in ("0", "1"):
            # "+ 1" / "- 0" keep the intercept, "+ 0" / "- 1" remove it; last one wins.
            intercept = (text == "1") == (sign == "+")
            continue
        _check_syntax(src, lo, hi)
        rest.append((sign, _translate(src, lo, hi)))
    out = "1" if intercept else "0"
    for sign, text in rest:
        out += f" {sign} {text}"
    return out, intercept, [text for sign, text in rest if sign == "+"]


def _parse_group(src, lo, hi, bar_text):
    """Variables of a grouping factor: ``[("g1",), ("g2", "g3")]`` for ``g1/g2:g3``."""
    if lo >= hi:
        raise ValueError(f"Empty grouping factor in {bar_text!r}.")
    parts, current, expect_name = [], [], True
    for i in range(lo, hi):
        tok = src.tokens[i]
        if expect_name and tok.kind == "name" and tok.text != ".":
            current.append(tok.text.strip("`"))
        elif not expect_name and tok.kind == "op" and tok.text in (":", "/"):
            if tok.text == "/":
                parts.append(tuple(current))
                current = []
        else:
            raise ValueError(
                f"The grouping factor {src.quote(lo, hi)!r} in {bar_text!r} must be column "
                "names joined by ':' (interaction) or '/' (nesting)."
            )
        expect_name = not expect_name
    if expect_name:
        raise ValueError(
            f"The grouping factor {src.quote(lo, hi)!r} in {bar_text!r} is incomplete."
        )
    parts.append(tuple(current))
    return parts


def _r_name(name):
    return name if _R_NAME.match(name) else f"`{name}`"


def _expand_slash(parts):
    """lme4's expandSlash: ``a/b/c`` -> ``c:(b:a)``, ``b:a``, ``a`` (inner factor first)."""
    groups, names = [], []
    group, name = (), ""
    for part in parts:
        part_name = ":".join(_r_name(v) for v in part)
        if not group:
            group, name = part, part_name
        else:
            # R deparses `:`(part, inner) with parentheses around an inner ':'.
            name = f"{part_name}:({name})" if ":" in name else f"{part_name}:{name}"
            group = part + group
        groups.append(group)
        names.append(name)
    return list(zip(reversed(groups), reversed(names)))


def _double_vert_terms(lhs, where):
    """lme4's expandDoubleVerts: one left side per term (``"1"``, ``"0 + x"``, ...)."""
    formula = _formulaic_formula(lhs, where)
    out = []
    for term in formula:
        if not term.factors or all(
            f.eval_method is Factor.EvalMethod.LITERAL for f in term.factors
        ):
            continue
        out.append("0 + " + ":".join(_formulaic_factor_text(f) for f in term.factors))
    has_intercept = any(
        all(f.eval_method is Factor.EvalMethod.LITERAL for f in term.factors) for term in formula
    )
    return (["1"] if has_intercept else []) + out


def _formulaic_factor_text(factor):
    if factor.eval_method is Factor.EvalMethod.LOOKUP and not re.match(
        r"^[A-Za-z_.][A-Za-z0-9_.]*$", factor.expr
    ):
        return f"`{factor.expr}`"
    return factor.expr


@lru_cache(maxsize=256)
def parse_formula(text) -> ParsedFormula:
    """Split an lme4 formula into response, fixed part and random-effects bars.

    Parameters
    ----------
    text : str
        ``"y ~ x + (1 + x | g)"``, ``"~ x + (1 | g)"`` or ``"x + (1 | g)"``.
        Bars: ``(1 | g)``, ``(x | g)`` (intercept implied), ``(0 + x | g)``,
        ``(x - 1 | g)``, ``(1 + x || g)`` (uncorrelated: one bar per term, as
        lme4's ``expandDoubleVerts``; a factor's columns stay together in one
        correlated bar, as in lme4), ``(1 | g1/g2)`` (nested: ``(1 | g2:g1) +
        (1 | g1)``), ``(1 | g1:g2)`` (interaction).

    Returns
    -------
    ParsedFormula

    Raises
    ------
    ValueError
        If the formula is malformed; the message quotes the offending piece.

    Examples
    --------
    >>> p = parse_formula("y ~ x + (x | g) + (1 | a/b)")
    >>> p.response, p.fixed
    ('y', '1 + x')
    >>> [(bar.lhs, bar.group_name) for bar in p.bars]
    [('1 + x', 'g'), ('1', 'b:a'), ('1', 'a')]
    """
    if not isinstance(text, str):
        raise TypeError(f"formula must be a str; got {type(text).__name__}.")
    src = _Source(text)
    tokens = src.tokens
    tildes = [i for i, tok in enumerate(tokens) if tok.kind == "op" and tok.text == "~"]
    if any(src.depth[i] != 0 for i in tildes) or len(tildes) > 1:
        raise ValueError(f"A formula has at most one '~', at its top level: {text!r}.")
    response, lo = None, 0
    if tildes:
        t = tildes[0]
        if t == 1 and tokens[0].kind == "name" and tokens[0].text != ".":
            response = tokens[0].text.strip("`")
        elif t > 0:
            raise ValueError(
                f"The response {src.quote(0, t)!r} must be a column name; transform it "
                "in the data (e.g. a column log_y) rather than in the formula."
            )
        lo = t + 1
    if lo >= len(tokens):
        raise ValueError(f"The formula {text!r} has no right side.")

    fixed_pieces, bars = [], []
    for sign, a, b in _split_terms(src, lo, len(tokens)):
        piece = src.quote(a, b)
        # A bar is a whole top-level piece in parentheses: strip them (possibly
        # doubled) and look for a '|' at the top level inside.
        inner_lo, inner_hi = a, b
        while (
            tokens[inner_lo].kind == "("
            and src.match[inner_lo] == inner_hi - 1
            and not src.call[inner_lo]
        ):
            inner_lo, inner_hi = inner_lo + 1, inner_hi - 1
            if inner_lo >= inner_hi:
                raise ValueError(f"Empty parentheses in {piece!r}.")
        base = src.depth[inner_lo] if inner_lo < len(tokens) else 0
        top_bars = [
            i
            for i in range(inner_lo, inner_hi)
            if tokens[i].kind == "op" and tokens[i].text in _BARS and src.depth[i] == base
        ]
        if inner_lo > a and top_bars:
            if len(top_bars) > 1:
                raise ValueError(f"More than one '|' in the random-effects term {piece!r}.")
            if sign == "-":
                raise ValueError(f"A random-effects term cannot be removed with '-': {piece!r}.")
            bars.extend(_parse_bar(src, inner_lo, top_bars[0], inner_hi, piece))
            continue
        stray = [i for i in range(a, b) if tokens[i].kind == "op" and tokens[i].text in _BARS]
        if stray:
            raise ValueError(
                f"{tokens[stray[0]].text!r} outside a random-effects term in {piece!r}: write "
                "random effects as '(lhs | group)', in parentheses, added to the formula."
            )
        fixed_pieces.append((sign, a, b))

    fixed, _, _ = _explicit_intercept(src, fixed_pieces)
    _formulaic_formula(fixed, text)  # validate expressions now, not at fit
    return ParsedFormula(response=response, fixed=fixed, bars=tuple(bars))


def _parse_bar(src, lo, bar, hi, piece):
    """The RandomBar(s) of one ``(lhs | group)`` term, ``||`` and ``/`` expanded."""
    if bar == lo:
        raise ValueError(f"Empty left side of the random-effects term {piece!r}.")
    parts = _parse_group(src, bar + 1, hi, piece)
    lhs, intercept, terms = _explicit_intercept(src, _split_terms(src, lo, bar, piece))
    if not intercept and not terms:
        raise ValueError(
            f"The random-effects term {piece!r} has no columns (no intercept, no term)."
        )
    _formulaic_formula(lhs, piece)
    correlated = src.tokens[bar].text == "|"
    lhs_list = [lhs] if correlated else _double_vert_terms(lhs, piece)
    return [
        RandomBar(lhs=side, group=group, correlated=correlated, group_name=name)
        for side in lhs_list
        for group, name in _expand_slash(parts)
    ]


# ---------------------------------------------------------------------------------
# Expressions formulaic evaluates as Python: checked, and rendered as R names them
# ---------------------------------------------------------------------------------

# Functions a formula may call: formulaic's transforms (C, I, center, scale, poly,
# bs, log, exp, ...), plus R's names that differ. ``contr.<name>`` is allowed as
# C()'s second argument.
_CONTEXT = {"factor": TRANSFORMS["C"], "sqrt": np.sqrt, "abs": np.abs}
_FUNCTIONS = frozenset(TRANSFORMS) - {"np", "contr"} | frozenset(_CONTEXT)
_BINOPS = {
    ast.Add: (" + ", 9),
    ast.Sub: (" - ", 9),
    ast.Mult: (" * ", 10),
    ast.Div: ("/", 10),
    ast.Mod: (" %% ", 11),
    ast.FloorDiv: (" %/% ", 11),
    ast.Pow: ("^", 14),
}
_CMPOPS = {
    ast.Eq: " == ",
    ast.NotEq: " != ",
    ast.Lt: " < ",
    ast.LtE: " <= ",
    ast.Gt: " > ",
    ast.GtE: " >= ",
}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}


def _parse_expression(expr):
    """Python AST of a formulaic factor expression; backticked names become placeholders."""
    names = {}

    def placeholder(match):
        key = f"_sklmixed_name_{len(names)}"
        names[key] = match.group(1)
        return key

    code = re.sub(r"`([^`]*)`", placeholder, expr)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        raise ValueError(f"Cannot read the expression {expr!r} in the formula.") from None
    return tree.body, names


def _check_expression(expr, where):
    """Column names an expression uses; ValueError for anything but plain arithmetic."""
    node, names = _parse_expression(expr)
    variables = []

    def visit(node):
        if isinstance(node, ast.Name):
            variables.append(names.get(node.id, node.id))
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool, type(None))):
                raise ValueError(f"Unsupported literal in {expr!r} ({where!r}).")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            visit(node.operand)
        elif isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            visit(node.left)
            for child in node.comparators:
                visit(child)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for child in node.elts:
                visit(child)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _FUNCTIONS:
                pass
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "contr"
            ):
                pass
            else:
                raise ValueError(
                    f"Unsupported function {_deparse(func, names)!r} in {where!r}; "
                    f"supported: {', '.join(sorted(_FUNCTIONS))}. Compute other "
                    "transformations as columns of the data."
                )
            for child in node.args:
                visit(child)
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise ValueError(f"Unsupported '**' argument in {expr!r} ({where!r}).")
                visit(keyword.value)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "contr"
        ):
            pass  # contr.treatment passed as C()'s contrasts, uncalled
        else:
            raise ValueError(
                f"Unsupported expression {expr!r} in {where!r}: only arithmetic, "
                "comparisons, column names and transforms such as I(), C(), log() are allowed."
            )

    visit(node)
    return variables


def _deparse(node, names, parent=None, right=False):
    """R's text of a Python expression node: ``x ** 2`` -> ``x^2``, ``True`` -> ``TRUE``."""
    if isinstance(node, ast.Name):
        return _r_name(names[node.id]) if node.id in names else node.id
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if value is None:
            return "NULL"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(node, ast.Attribute):
        return f"{_deparse(node.value, names)}.{node.attr}"
    if isinstance(node, ast.Call):
        args = [_deparse(a, names) for a in node.args]
        args += [f"{k.arg} = {_deparse(k.value, names)}" for k in node.keywords]
        return f"{_deparse(node.func, names)}({', '.join(args)})"
    if isinstance(node, (ast.List, ast.Tuple)):
        return f"c({', '.join(_deparse(e, names) for e in node.elts)})"
    if isinstance(node, ast.BinOp):
        symbol, prec = _BINOPS[type(node.op)]
        right_assoc = isinstance(node.op, ast.Pow)
        text = (
            _deparse(node.left, names, prec, right=right_assoc)
            + symbol
            + _deparse(node.right, names, prec, right=not right_assoc)
        )
    elif isinstance(node, ast.UnaryOp):
        prec = 13
        text = _UNARY[type(node.op)] + _deparse(node.operand, names, prec)
    elif isinstance(node, ast.Compare):
        prec = 8
        text = _deparse(node.left, names, prec)
        for op, child in zip(node.ops, node.comparators):
            text += _CMPOPS[type(op)] + _deparse(child, names, prec, right=True)
    else:  # pragma: no cover; _check_expression rejected it
        return ast.unparse(node)
    if parent is not None and (prec < parent or (prec == parent and right)):
        return f"({text})"
    return text


def _render_expr(expr):
    """R's text of a formulaic factor expression, or the expression if it cannot be read."""
    try:
        node, names = _parse_expression(expr)
    except ValueError:
        return expr
    return _deparse(node, names)


def _r_factor_name(factor):
    """lme4's name of a formulaic factor: ``I(x ** 2)`` -> ``I(x^2)``."""
    if factor.eval_method is Factor.EvalMethod.PYTHON:
        node, names = _parse_expression(factor.expr)
        return _deparse(node, names)
    return _r_name(factor.expr)


@lru_cache(maxsize=256)
def _formulaic_formula(text, where):
    """A formulaic Formula of ``text`` whose Python expressions have been checked."""
    try:
        formula = Formula(text, _ordering="degree")
    except FormulaicError as error:
        message = str(error).split("\n")[0]
        raise ValueError(f"Cannot read {text!r} (from {where!r}): {message}") from None
    for term in formula:
        for factor in term.factors:
            if factor.eval_method is Factor.EvalMethod.PYTHON:
                _check_expression(factor.expr, where)
    return formula


def _formula_variables(formula, where):
    """Data columns a checked formula uses, in order of appearance."""
    out = []
    for term in formula:
        for factor in term.factors:
            if factor.eval_method is Factor.EvalMethod.LOOKUP:
                found = [factor.expr]
            elif factor.eval_method is Factor.EvalMethod.PYTHON:
                found = _check_expression(factor.expr, where)
            else:
                found = []
            out.extend(v for v in found if v not in out)
    return out


@lru_cache(maxsize=256)
def _appearance_order(text):
    """Factor expressions of a formula in order of first appearance in its text (cached:
    treat the returned mapping as read-only).

    R orders the variables of an interaction by where they first appear in the
    formula (``a + b:a`` names the column ``a:bv``); formulaic keeps the order the
    interaction was written in. Names follow R.
    """
    src = _Source(text)
    order = {}
    for _, lo, hi in _split_terms(src, 0, len(src.tokens)):
        piece = src.quote(lo, hi)
        if piece in ("0", "1"):
            continue
        for term in Formula(piece, _ordering="none"):
            for factor in term.factors:
                order.setdefault(factor.expr, len(order))
    return order


class _FormulaLayout(NamedTuple):
    """What a formula's text alone determines (cached: shared, never modified)."""

    parsed: ParsedFormula
    fixed_formula: Formula
    fixed_variables: tuple
    lhs_formulas: dict
    bar_variables: tuple
    variables: tuple


@lru_cache(maxsize=256)
def _formula_layout(formula):
    """The :class:`_FormulaLayout` of ``formula``: parsed once per text, then cached."""
    parsed = parse_formula(formula)
    fixed_formula = _formulaic_formula(parsed.fixed, formula)
    fixed_variables = _formula_variables(fixed_formula, formula)
    lhs_formulas, bar_variables = {}, []
    for bar in parsed.bars:
        if bar.lhs not in lhs_formulas:
            lhs_formulas[bar.lhs] = _formulaic_formula(bar.lhs, formula)
        lhs_vars = _formula_variables(lhs_formulas[bar.lhs], formula)
        bar_variables.append(tuple(lhs_vars + [g for g in bar.group if g not in lhs_vars]))
    # In order of first appearance in the text (nesting lists groups inner first).
    first = {}
    for tok in _tokenize(formula):
        if tok.kind == "name":
            first.setdefault(tok.text.strip("`"), tok.start)
    variables = []
    for name in fixed_variables + [v for group in bar_variables for v in group]:
        if name not in variables and name != parsed.response:
            variables.append(name)
    variables.sort(key=lambda v: first.get(v, len(formula)))
    return _FormulaLayout(
        parsed,
        fixed_formula,
        tuple(fixed_variables),
        lhs_formulas,
        tuple(bar_variables),
        tuple(variables),
    )


# ---------------------------------------------------------------------------------
# Design: formulaic model specs fitted on training data, reused on new data
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomTermData:
    """One random-effects bar evaluated on data.

    Attributes
    ----------
    group_name : str
        lme4's name of the grouping factor (``"school"``, ``"cask:batch"``).
    labels : ndarray of shape (n,)
        Group label per row. One grouping variable: its values as they are (numeric
        or object). Several: strings joining the values with ``":"`` in the order
        of ``group_name`` (``"a:A"`` for ``cask:batch``, as lme4 labels levels).
    Z : ndarray of shape (n, q)
        float64 columns of the bar's left side.
    column_names : tuple of str
        lme4's names of the columns (``"(Intercept)"``, ``"standLRT"``, ``"sexM"``).
    correlated : bool
        Whether the columns share one unstructured covariance block. False for a
        single-column bar from ``||``; True for every ``|`` bar and for a bar that
        ``||`` split off with several columns (a factor's dummies), because lme4's
        ``expandDoubleVerts`` keeps those together as an ordinary bar.
    """

    group_name: str
    labels: np.ndarray
    Z: np.ndarray
    column_names: tuple
    correlated: bool


class FormulaDesign:
    """Fitted encodings of an lme4 formula; fit on training data, transform new data identically.

    Parameters
    ----------
    formula : str
        An lme4 formula (see :func:`parse_formula`).

    Attributes
    ----------
    parsed : ParsedFormula
        The formula split into response, fixed part and bars.
    response : str or None
        The response column, if the formula has a left side.
    variables : list of str
        Every data column the formula uses on its right side (fixed part, bars'
        left sides, grouping factors), in order of appearance.
    fixed_names : list of str
        lme4's names of the fixed-effects columns (set by :meth:`fit`).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1., 2, 3, 4], "x": [0., 1, 2, 3],
    ...                    "sex": ["F", "M", "M", "F"], "g": [1, 1, 2, 2]})
    >>> design = FormulaDesign("y ~ x * sex + (1 | g)").fit(df)
    >>> design.fixed_names
    ['(Intercept)', 'x', 'sexM', 'x:sexM']
    >>> design.fixed_matrix(df.iloc[:2]).tolist()
    [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, formula: str):
        self.formula = formula
        layout = _formula_layout(formula)
        self.parsed = layout.parsed
        self.response = layout.parsed.response
        self.variables = list(layout.variables)
        self._fixed_formula = layout.fixed_formula
        self._fixed_variables = list(layout.fixed_variables)
        self._lhs_formulas = dict(layout.lhs_formulas)
        self._bar_variables = [list(v) for v in layout.bar_variables]
        self._specs = None

    # -- public ---------------------------------------------------------------------

    def fit(self, data: pd.DataFrame) -> FormulaDesign:
        """Learn categorical levels and stateful transforms on the training data.

        Parameters
        ----------
        data : DataFrame
            Holds every column in :attr:`variables`, without missing values.

        Returns
        -------
        self
        """
        self.fit_transform(data)
        return self

    def fit_transform(self, data: pd.DataFrame):
        """:meth:`fit`, returning the training data's matrices from the same pass.

        Parameters
        ----------
        data : DataFrame
            Holds every column in :attr:`variables`, without missing values.

        Returns
        -------
        fixed : ndarray of shape (n, p)
            As :meth:`fixed_matrix` of ``data``.
        bars : list of RandomTermData
            As :meth:`random_terms` of ``data``.
        """
        columns = self._columns(data, self.variables, fitting=True)
        n = len(data)
        frame = _LazyFrame(columns, n)
        specs, matrices = {}, {}
        for key, formula, text in [("fixed", self._fixed_formula, self.parsed.fixed)] + [
            (lhs, formula, lhs) for lhs, formula in self._lhs_formulas.items()
        ]:
            specs[key], matrices[key] = self._fit_matrix(formula, columns, frame, text)
        self._specs = specs
        self.fixed_names = _spec_names(specs["fixed"], self.parsed.fixed)
        self._lhs_names = {lhs: tuple(_spec_names(specs[lhs], lhs)) for lhs in self._lhs_formulas}
        bars = [self._term_data(bar, columns, matrices[bar.lhs]) for bar in self.parsed.bars]
        return matrices["fixed"], bars

    def fixed_matrix(self, data) -> np.ndarray:
        """Fixed-effects model matrix of ``data``, columns in :attr:`fixed_names` order.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n, p), float64

        Raises
        ------
        ValueError
            For a missing column, missing values, or a level of a categorical
            variable that was not in the training data.
        """
        self._check_fitted()
        columns = self._columns(data, self._fixed_variables)
        return self._evaluate(self._specs["fixed"], columns, len(data), self.parsed.fixed)

    def random_terms(self, data) -> list:
        """Every random-effects bar evaluated on ``data``, in :attr:`parsed` order.

        Group labels not seen in training are returned as they are (the estimator
        decides what an unseen group means); unseen levels of a categorical
        variable on a bar's left side are an error, as in :meth:`fixed_matrix`.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        list of RandomTermData
        """
        self._check_fitted()
        out = []
        for bar, variables in zip(self.parsed.bars, self._bar_variables):
            columns = self._columns(data, variables)
            Z = self._evaluate(self._specs[bar.lhs], columns, len(data), bar.lhs)
            out.append(self._term_data(bar, columns, Z))
        return out

    def _term_data(self, bar, columns, Z):
        return RandomTermData(
            group_name=bar.group_name,
            labels=_group_labels(columns, bar.group),
            Z=Z,
            column_names=self._lhs_names[bar.lhs],
            correlated=bar.correlated or Z.shape[1] > 1,
        )

    def response_vector(self, data) -> np.ndarray:
        """The response column named on the formula's left side, as float64.

        Parameters
        ----------
        data : DataFrame

        Returns
        -------
        ndarray of shape (n,)
        """
        if self.response is None:
            raise ValueError(f"The formula {self.formula!r} has no response (no 'y ~' left side).")
        self._check_present(data, [self.response], "response")
        column = _checked_column(data, self.response)  # one column, no missing values
        dtype = column.dtype
        if not (
            (isinstance(dtype, np.dtype) and dtype.kind in "biuf")
            or pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        ):
            raise ValueError(
                f"The response column {self.response!r} is not numeric (dtype {column.dtype})."
            )
        return column.to_numpy(dtype=np.float64)

    # -- internals ------------------------------------------------------------------

    def _check_fitted(self):
        if self._specs is None:
            raise RuntimeError("This FormulaDesign is not fitted yet; call fit(data) first.")

    def _columns(self, data, variables, what="variable", fitting=False):
        """The columns ``variables`` of ``data`` by name, checked, with logicals as factors."""
        self._check_present(data, variables, what)
        return {name: _plain_values(_checked_column(data, name), fitting) for name in variables}

    def _check_present(self, data, variables, what):
        """TypeError unless ``data`` is a DataFrame; ValueError naming absent ``variables``."""
        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                f"The formula interface needs a pandas DataFrame; got {type(data).__name__}."
            )
        missing = [v for v in variables if v not in data.columns]
        if missing:
            raise ValueError(
                f"The formula {self.formula!r} uses {what}(s) {missing} that are not columns "
                f"of the data (columns: {list(data.columns)})."
            )

    def _fit_matrix(self, formula, columns, frame, text):
        """The fitted spec of one formula (fixed part or a bar's left side) and its matrix."""
        terms = _numeric_terms(formula, columns)
        if terms is not None:
            spec = _numeric_spec(terms, text)
            matrix = spec.matrix(columns, frame.n_rows, text)
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", DataMismatchWarning)
                    model_matrix = formula.get_model_matrix(
                        frame.get(), context=_CONTEXT, na_action="raise", output="numpy"
                    )
            except (FormulaicError, ValueError, TypeError, NameError, DataMismatchWarning) as error:
                raise ValueError(f"Cannot evaluate {text!r} on the data: {error}") from None
            spec = model_matrix.model_spec
            matrix = _as_matrix(model_matrix, frame.n_rows)
            _check_matrix(matrix, _spec_names(spec, text), text)
        return spec, matrix

    def _evaluate(self, spec, columns, n, text):
        if isinstance(spec, _NumericSpec):
            return spec.matrix(columns, n, text)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
        _check_levels(spec, frame, text)
        try:
            with warnings.catch_warnings():
                # Formulaic codes an unseen level as NaN with only a warning.
                warnings.simplefilter("error", DataMismatchWarning)
                matrix = spec.get_model_matrix(frame, context=_CONTEXT)
        except DataMismatchWarning as warning:
            raise ValueError(f"In {text!r}: {warning}") from None
        except (FormulaicError, ValueError, TypeError, NameError) as error:
            raise ValueError(f"Cannot evaluate {text!r} on the data: {error}") from None
        matrix = np.asarray(matrix, dtype=np.float64).reshape(n, len(spec.column_names))
        _check_matrix(matrix, _spec_names(spec, text), text)
        return matrix


class _LazyFrame:
    """The checked columns as a pandas DataFrame, built only if formulaic needs one."""

    def __init__(self, columns, n_rows):
        self.columns = columns
        self.n_rows = n_rows
        self._frame = None

    def get(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(self.columns, index=pd.RangeIndex(self.n_rows))
        return self._frame


@dataclass(frozen=True)
class _NumericSpec:
    """The fitted form of a formula whose every term is a product of numeric columns.

    formulaic materializes through pandas: about 0.6 ms per matrix at 4,000 rows and
    half a second for ten columns at 1,000,000 rows. Products of numeric columns need
    none of its machinery (no contrasts, no levels, no stateful transforms), so they
    are formed here directly; any other term (a categorical, a function call) sends the
    whole formula to formulaic.

    Attributes
    ----------
    terms : tuple of tuple of str
        Per column, the variables it multiplies (empty: the intercept).
    names : tuple of str
        lme4's column names.
    """

    terms: tuple
    names: tuple

    def matrix(self, columns, n, text):
        """The model matrix of ``columns`` (a name -> values mapping) with ``n`` rows."""
        out = np.empty((n, len(self.terms)), order="F")  # columns written and checked whole
        for j, variables in enumerate(self.terms):
            if not variables:
                out[:, j] = 1.0
                continue
            for k, name in enumerate(variables):
                values = columns[name]
                if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
                    raise ValueError(
                        f"Variable {name!r} of {text!r} was numeric in the training data but "
                        f"here it is {getattr(values, 'dtype', type(values).__name__)}."
                    )
                if k == 0:
                    out[:, j] = values
                else:
                    out[:, j] *= values
        _check_matrix(out, self.names, text)
        return out


def _numeric_terms(formula, columns):
    """Each term of ``formula`` as the numeric columns it multiplies, or None when any
    term needs formulaic (a categorical or logical variable, a call, another literal)."""
    terms = []
    for term in formula:
        variables = []
        for factor in term.factors:
            if factor.eval_method is Factor.EvalMethod.LITERAL and factor.expr == "1":
                continue
            if factor.eval_method is not Factor.EvalMethod.LOOKUP:
                return None
            values = columns.get(factor.expr)
            if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
                return None
            if factor.expr not in variables:
                variables.append(factor.expr)
        terms.append(tuple(variables))
    return tuple(terms)


@lru_cache(maxsize=256)
def _numeric_spec(terms, text):
    """The :class:`_NumericSpec` of ``terms`` (from :func:`_numeric_terms`) of formula
    ``text``: its names depend on both alone, so it is built once (it is immutable)."""
    return _NumericSpec(terms, tuple(_numeric_names(terms, _appearance_order(text))))


def _numeric_names(terms, order):
    """lme4's names of product columns: variables in order of first appearance in R."""
    names = []
    for variables in terms:
        ranked = sorted(variables, key=lambda v: order.get(v, len(order)))
        names.append(":".join(_r_name(v) for v in ranked) if ranked else INTERCEPT)
    return names


def _spec_names(spec, text):
    """lme4's column names of a fitted spec (ours or formulaic's) of formula ``text``."""
    if isinstance(spec, _NumericSpec):
        return list(spec.names)
    return _lme4_names(spec, _appearance_order(text))


def _check_matrix(matrix, names, text):
    """ValueError naming the first model column with a non-finite or overflowing value."""
    if not matrix.size:
        return
    # Extremes of the whole matrix without an |matrix| copy; NaN propagates through both
    # (and fails the comparison). Only a failing matrix is searched for the column to name.
    if -matrix.min() <= MAX_MAGNITUDE and matrix.max() <= MAX_MAGNITUDE:
        return
    top = np.maximum(-matrix.min(axis=0), matrix.max(axis=0))
    bad = np.flatnonzero(~(top <= MAX_MAGNITUDE))
    if bad.size:
        j = int(bad[0])
        found = (
            f"values up to {top[j]:.3g}, beyond {MAX_MAGNITUDE:.0e} (their squares overflow "
            "float64)"
            if np.isfinite(top[j])
            else "NaN or infinite values"
        )
        raise ValueError(
            f"Column {names[j]!r} of {text!r} has {found}: check or rescale the variables "
            "it is computed from."
        )


def _as_matrix(model_matrix, n):
    """A formulaic model matrix as a float64 array of ``n`` rows."""
    values = np.asarray(model_matrix, dtype=np.float64)
    return (
        values.reshape(n, -1)
        if values.size
        else np.empty((n, len(model_matrix.model_spec.column_names)))
    )


def _checked_column(data, name):
    """The column ``name`` of ``data`` (present), refused if duplicated or with missing values."""
    column = data[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"The data has several columns named {name!r}.")
    # What pandas' isna checks, without building a Series where that is cheap
    # (numpy numbers and categoricals), and before any conversion.
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return column
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        nulls = np.isnan(column.to_numpy())
    elif isinstance(dtype, pd.CategoricalDtype):
        nulls = column.array.codes < 0
    else:
        nulls = column.isna().to_numpy()
    if nulls.any():
        raise ValueError(
            f"Column {name!r} has {int(nulls.sum())} missing value(s) (NaN/NA), "
            f"first at row {int(np.flatnonzero(nulls)[0])}; rows are never dropped "
            "silently: remove or impute them first."
        )
    return column


def _plain_values(column, fitting):
    """Values formulaic codes as R would: numbers as numbers, logicals and strings as factors."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":  # the usual case, tested first
        return column.to_numpy(dtype=np.float64 if dtype.kind == "f" else np.int64)
    if isinstance(dtype, pd.CategoricalDtype):
        # At fit a Categorical's level order is the factor's, as in R; later the
        # fitted levels rule, and plain values avoid re-casting another category set.
        return column.array if fitting else column.to_numpy(dtype=object)
    if pd.api.types.is_bool_dtype(dtype):
        # R codes a logical as a factor with levels FALSE, TRUE (column bTRUE).
        values = column.to_numpy(dtype=bool)
        return (
            pd.Categorical(values, categories=[False, True]) if fitting else values.astype(object)
        )
    if pd.api.types.is_integer_dtype(dtype):
        return column.to_numpy(dtype=np.int64)  # nullable Int64 would become object
    if pd.api.types.is_float_dtype(dtype):
        return column.to_numpy(dtype=np.float64)
    return column.to_numpy()


def _categorical_source(expr, frame):
    """The data column holding a categorical factor's values: ``sex``, ``C(sex)``, ``factor(sex)``."""
    if expr in frame.columns:
        return expr
    match = re.match(r"^(?:C|factor)\(\s*(`[^`]*`|[A-Za-z_.][A-Za-z0-9_.]*)\s*\)$", expr)
    if match and match.group(1).strip("`") in frame.columns:
        return match.group(1).strip("`")
    return None


def _check_levels(spec, frame, text):
    """ValueError naming the variable and the level for a level unseen in training."""
    for expr, (kind, state) in spec.encoder_state.items():
        if kind is not Factor.Kind.CATEGORICAL:
            continue
        source = _categorical_source(expr, frame)
        if source is None:
            continue  # a computed factor: the DataMismatchWarning net catches it
        known = pd.Index(state["categories"])
        values = pd.unique(np.asarray(frame[source].to_numpy(), dtype=object))
        unseen = [v for v in values if v not in known]
        if unseen:
            shown = ", ".join(repr(v) for v in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
            raise ValueError(
                f"Variable {source!r} has level(s) {shown} not seen in the training data "
                f"(known levels: {list(known)}); the term {_render_expr(expr)!r} of "
                f"{text!r} has no coefficient for it."
            )


def _format_level(value):
    """A level as R prints it: ``True`` -> ``TRUE``, ``2.0`` -> ``2``."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _lme4_names(spec, order):
    """lme4's column names of a fitted formulaic spec (``sex[T.M]`` -> ``sexM``)."""
    names = []
    for structure in spec.structure:
        for scoped, column in zip(_repeat_scoped(structure), structure.columns):
            names.append(_lme4_column_name(column, scoped, spec, order))
    return names


def _repeat_scoped(structure):
    """The scoped term of each column of an encoded term (a term may span several)."""
    columns = list(structure.columns)
    if len(structure.scoped_terms) == 1:
        return [structure.scoped_terms[0]] * len(columns)
    # Several scoped terms: match each column by the factor expressions it starts with.
    out = []
    for column in columns:
        for scoped in structure.scoped_terms:
            exprs = [f.factor.expr for f in scoped.factors]
            if _split_column(column, exprs) is not None:
                out.append(scoped)
                break
        else:
            out.append(structure.scoped_terms[0])
    return out


def _split_column(column, exprs):
    """Suffixes of a formulaic column name, one per factor: ``sex[T.M]:x`` -> ``["[T.M]", ""]``."""

    def walk(pos, k):
        if k == len(exprs):
            return [] if pos == len(column) else None
        if k > 0:
            if not column.startswith(":", pos):
                return None
            pos += 1
        if not column.startswith(exprs[k], pos):
            return None
        pos += len(exprs[k])
        ends = [pos]
        if column.startswith("[", pos):
            ends = [i + 1 for i in range(pos, len(column)) if column[i] == "]"]
        for end in ends:
            rest = walk(end, k + 1)
            if rest is not None:
                return [column[pos:end]] + rest
        return None

    return walk(0, 0)


def _lme4_column_name(column, scoped, spec, order):
    # A ScopedFactor holds an EvaluatedFactor, which holds the parsed Factor.
    factors = [getattr(sf.factor, "factor", sf.factor) for sf in scoped.factors]
    if not factors:
        return INTERCEPT
    suffixes = _split_column(column, [f.expr for f in factors])
    if suffixes is None:  # pragma: no cover; formulaic changed its naming
        return column
    pieces = []
    for factor, suffix in zip(factors, suffixes):
        name = _r_factor_name(factor)
        inner = suffix[1:-1] if suffix else ""
        kind, state = spec.encoder_state.get(factor.expr, (None, {}))
        if kind is Factor.Kind.CATEGORICAL:
            levels = {str(level): level for level in state.get("categories", [])}
            if inner.startswith("T.") and inner[2:] in levels:
                inner = _format_level(levels[inner[2:]])
            elif inner in levels:
                inner = _format_level(levels[inner])
        pieces.append((order.get(factor.expr, len(order)), name + inner))
    pieces.sort(key=lambda item: item[0])  # stable: R's variable order
    return ":".join(piece for _, piece in pieces)


def _group_labels(columns, group):
    """Group label per row: the values themselves (a Categorical stays one: its codes are
    the levels), or ``"v1:v2"`` strings for interactions."""
    if len(group) == 1:
        values = columns[group[0]]
        return values if isinstance(values, pd.Categorical) else np.asarray(values)
    parts = []
    for name in group:
        column = pd.Series(columns[name])
        if column.dtype.kind in "iu":
            parts.append(column.astype(str))
        else:
            parts.append(column.map(_format_level).astype(str))
    joined = parts[0].str.cat(parts[1:], sep=":")
    return joined.to_numpy(dtype=object)
