"""lme4's reading of a formula: response, fixed terms, random-effects bars, offsets.

On the tree of :mod:`.syntax`: the right side is split at its top-level ``+``/``-``;
a piece ``(lhs | group)`` is a bar, ``offset(expr)`` an offset, anything else a
fixed term. Bars are expanded as lme4 does: ``||`` into one bar per term
(``expandDoubleVerts``), then ``a/b`` into ``b:a`` and ``a`` (``expandSlash``).
Every expression is checked against the allow-list of :mod:`.expressions` here, so
a formula that parses is one that can be evaluated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

from .deparse import deparse, normalized_text, r_name
from .expressions import check_expression
from .syntax import Binary, Call, Name, Number, Paren, Unary, parse_expression
from .terms import TermSpec, expand_terms, flatten_sum

__all__ = ["ParsedFormula", "RandomBar", "parse_formula"]

RESPONSE_DROPPED = "the response appeared on the right-hand side and was dropped"


@dataclass(frozen=True)
class RandomBar:
    """One random-effects term ``(lhs | group)`` after lme4's expansions.

    Attributes
    ----------
    lhs : str
        The left side, intercept explicit: ``"1"``, ``"1 + standLRT"``, ``"0 + sex"``.
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
    terms : TermSpec
        The left side's terms (not compared: the text fields identify a bar).
    """

    lhs: str
    group: tuple
    correlated: bool = True
    group_name: str = field(default=None)
    terms: TermSpec = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.group_name is None:
            object.__setattr__(self, "group_name", ":".join(self.group))


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into its parts.

    Attributes
    ----------
    response : str or None
        The response: a column name, R's text of an expression (``"log(y)"``,
        ``"cbind(s, f)"``), or None for a one-sided formula.
    fixed : str
        The right side without bars and offsets, intercept explicit
        (``"1 + standLRT * schavg"``, ``"0 + x"``, ``"1"``).
    bars : tuple of RandomBar
        The random-effects terms in lme4's order (``||`` and ``/`` expanded).
    response_node, fixed_terms, offsets, response_dropped
        Structured forms (not compared): the response's expression, the fixed
        part's :class:`~.terms.TermSpec`, the ``offset()`` expressions, and
        whether a term equal to the response was dropped from the right side.
    """

    response: str | None
    fixed: str
    bars: tuple
    response_node: object = field(default=None, compare=False, repr=False)
    fixed_terms: TermSpec = field(default=None, compare=False, repr=False)
    offsets: tuple = field(default=(), compare=False, repr=False)
    response_dropped: bool = field(default=False, compare=False, repr=False)


def _quote(text, node):
    return text[node.start : node.end]


def _unwrap(node):
    while isinstance(node, Paren):
        node = node.inner
    return node


def _is_intercept_mark(node):
    return isinstance(node, Number) and node.value in (0.0, 1.0)


def _side_text(text, pieces, intercept):
    """``"1 + ..."`` / ``"0 + ..."``: the pieces as written, intercept explicit."""
    out = "1" if intercept else "0"
    for sign, node in pieces:
        if isinstance(node, Name) and not node.quoted:
            out += f" {sign} {text[node.start : node.end]}"  # the usual piece, as written
        elif not _is_intercept_mark(node):
            out += f" {sign} {normalized_text(text, node.start, node.end)}"
    return out


def _check_tildes(node, text):
    stack = [node.left if isinstance(node, Binary) and node.op == "~" else node]
    if isinstance(node, Binary) and node.op == "~":
        stack.append(node.right)
    elif isinstance(node, Unary) and node.op == "~":
        stack = [node.operand]
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind is Binary:
            if current.op == "~":
                raise ValueError(f"A formula has at most one '~', at its top level: {text!r}.")
            stack += (current.left, current.right)
        elif kind is Unary:
            if current.op == "~":
                raise ValueError(f"A formula has at most one '~', at its top level: {text!r}.")
            stack.append(current.operand)
        elif kind is Paren:
            stack.append(current.inner)
        elif kind is Call:
            stack.extend(a.value for a in current.args)


def _response(node, text):
    if isinstance(node, Name):
        if node.name == "." and not node.quoted:
            raise ValueError(f"'.' is not a response in {text!r}.")
        return node.name
    top = _unwrap(node)
    if isinstance(top, Binary) and top.op in ("+", "-", ":", "%in%", "|", "||"):
        raise ValueError(
            f"The response {_quote(text, node)!r} of {text!r} reads as several terms: write "
            "I(y + z) for their sum, or cbind(successes, failures) for a binomial response."
        )
    check_expression(node, text, "response", stateless=True)
    return deparse(node)


def _group_parts(node, text, bar_text):
    """``[("g1",), ("g2", "g3")]`` for ``g1/g2:g3``: names joined by ``:`` and ``/``."""

    def names(part):
        if isinstance(part, Binary) and part.op == ":":
            return names(part.left) + names(part.right)
        if isinstance(part, Name) and not (part.name == "." and not part.quoted):
            return (part.name,)
        raise ValueError(
            f"The grouping factor {_quote(text, node)!r} in {bar_text!r} must be column names "
            "joined by ':' (interaction) or '/' (nesting)."
        )

    parts, current = [], node
    while isinstance(current, Binary) and current.op == "/":
        parts.append(names(current.right))
        current = current.left
    parts.append(names(current))
    return parts[::-1]


def _expand_slash(parts):
    """lme4's expandSlash: ``a/b/c`` -> ``c:(b:a)``, ``b:a``, ``a`` (inner factor first)."""
    groups, names = [], []
    group, name = (), ""
    for part in parts:
        part_name = ":".join(r_name(v) for v in part)
        if not group:
            group, name = part, part_name
        else:
            # R deparses `:`(part, inner) with parentheses around an inner ':'.
            name = f"{part_name}:({name})" if ":" in name else f"{part_name}:{name}"
            group = part + group
        groups.append(group)
        names.append(name)
    return list(zip(reversed(groups), reversed(names)))


def _check_variables(spec, text):
    for node in spec.nodes:
        check_expression(node, text, "expression")


def _bar(piece, bar, text):
    """The RandomBar(s) of one ``(lhs | group)`` term, ``||`` and ``/`` expanded."""
    piece_text = _quote(text, piece)
    parts = _group_parts(bar.right, text, piece_text)
    pieces = flatten_sum(bar.left)
    spec = expand_terms(pieces, text, piece_text)
    _check_variables(spec, text)
    if not spec.intercept and not spec.terms:
        raise ValueError(
            f"The random-effects term {piece_text!r} has no columns (no intercept, no term)."
        )
    correlated = bar.op == "|"
    if correlated:
        sides = [(_side_text(text, pieces, spec.intercept), spec)]
    else:
        sides = [("1", TermSpec(True, (), (), ()))] if spec.intercept else []
        for term in spec.terms:
            sub = TermSpec(False, (term,), term, tuple(spec.node(k) for k in term))
            sides.append(("0 + " + ":".join(term), sub))
    return [
        RandomBar(lhs=lhs, group=group, correlated=correlated, group_name=name, terms=terms)
        for lhs, terms in sides
        for group, name in _expand_slash(parts)
    ]


@lru_cache(maxsize=256)
def parse_formula(text) -> ParsedFormula:
    """Split an lme4 formula into response, fixed part, random-effects bars and offsets.

    Parameters
    ----------
    text : str
        ``"y ~ x + (1 + x | g)"``, ``"~ x + (1 | g)"`` or ``"x + (1 | g)"``.
        Bars: ``(1 | g)``, ``(x | g)`` (intercept implied), ``(0 + x | g)``,
        ``(x - 1 | g)``, ``(1 + x || g)`` (uncorrelated: one bar per term, as
        lme4's ``expandDoubleVerts``; a factor's columns stay together in one
        correlated bar, as in lme4), ``(1 | g1/g2)`` (nested: ``(1 | g2:g1) +
        (1 | g1)``), ``(1 | g1:g2)`` (interaction). ``offset(expr)`` terms are
        summed. The response may be a column, an expression (``log(y)``) or
        ``cbind(successes, failures)``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    ValueError
        If the formula is malformed or uses anything outside the allow-list; the
        message quotes the offending piece.

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
    node = parse_expression(text)
    _check_tildes(node, text)
    lhs, rhs = None, node
    if isinstance(node, Binary) and node.op == "~":
        lhs, rhs = node.left, node.right
    elif isinstance(node, Unary) and node.op == "~":
        rhs = node.operand
    response = None if lhs is None else _response(lhs, text)
    response_key = None if lhs is None else deparse(lhs)

    fixed_pieces, bars, offsets = [], [], []
    for sign, piece in flatten_sum(rhs):
        inner = _unwrap(piece)
        if isinstance(inner, Binary) and inner.op in ("|", "||"):
            if inner is piece:
                raise ValueError(
                    f"{inner.op!r} outside a random-effects term in {_quote(text, piece)!r}: "
                    "write random effects as '(lhs | group)', in parentheses, added to the "
                    "formula."
                )
            if sign == "-":
                raise ValueError(
                    f"A random-effects term cannot be removed with '-': {_quote(text, piece)!r}."
                )
            bars.extend(_bar(piece, inner, text))
        elif isinstance(inner, Call) and inner.function == "offset":
            if sign == "-":
                raise ValueError(f"An offset cannot be removed with '-': {_quote(text, piece)!r}.")
            check_expression(inner, text, "term", stateless=True)
            offsets.append(inner.args[0].value)
        else:
            fixed_pieces.append((sign, piece))

    spec = expand_terms(fixed_pieces, text, text, response_key)
    _check_variables(spec, text)
    dropped = response_key is not None and (response_key,) in spec.terms
    if dropped:
        spec = TermSpec(
            spec.intercept,
            tuple(t for t in spec.terms if t != (response_key,)),
            spec.variables,
            spec.nodes,
        )
    return ParsedFormula(
        response=response,
        fixed=_side_text(text, fixed_pieces, spec.intercept),
        bars=tuple(bars),
        response_node=lhs,
        fixed_terms=spec,
        offsets=tuple(offsets),
        response_dropped=dropped,
    )


def warn_dropped_response(parsed):
    """Warn as R does when a term equal to the response was dropped from the right side.

    Parameters
    ----------
    parsed : ParsedFormula

    Warns
    -----
    UserWarning
        R's message, "the response appeared on the right-hand side and was dropped".
    """
    if parsed.response_dropped:
        warnings.warn(RESPONSE_DROPPED, UserWarning, stacklevel=3)
