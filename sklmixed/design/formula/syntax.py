"""Formula text -> a tree of our own node types, by R's operator precedence.

No Python parser is involved: :func:`parse_expression` reads the tokens of
:mod:`.tokens` with a precedence-climbing parser and builds the frozen nodes below.
What a formula *means* (terms, bars, allowed functions) is decided later, on the
tree; this module only knows R's grammar.
"""

from __future__ import annotations

from typing import NamedTuple

from .tokens import quote_error, tokenize

__all__ = [
    "Argument",
    "Binary",
    "Call",
    "Logical",
    "Name",
    "Number",
    "Paren",
    "String",
    "Unary",
    "parse_expression",
]


class Name(NamedTuple):
    """A column name (``x``, ``school.id``, ```my var```)."""

    name: str
    quoted: bool
    start: int
    end: int


class Number(NamedTuple):
    """A numeric literal; ``integer`` for R's ``2L``."""

    value: float
    integer: bool
    start: int
    end: int


class String(NamedTuple):
    """A string literal (decoded)."""

    value: str
    start: int
    end: int


class Logical(NamedTuple):
    """``TRUE`` or ``FALSE``."""

    value: bool
    start: int
    end: int


class Argument(NamedTuple):
    """One argument of a call: ``name = value`` or a positional ``value``."""

    name: str | None
    value: object


class Call(NamedTuple):
    """``function(arguments)``; only a plain name can be called."""

    function: str
    args: tuple
    start: int
    end: int


class Binary(NamedTuple):
    """``left op right`` for every binary operator, formula and arithmetic alike."""

    op: str
    left: object
    right: object
    start: int
    end: int


class Unary(NamedTuple):
    """``op operand`` for prefix ``-``, ``+``, ``!`` and ``~``."""

    op: str
    operand: object
    start: int
    end: int


class Paren(NamedTuple):
    """Parentheses, kept: R keeps them too, and prints them in column names."""

    inner: object
    start: int
    end: int


# Binding powers (left, right) of binary operators, R's precedence (?Syntax) from
# loosest to tightest. Left-associative operators have right = left; '^' is
# right-associative (right < left).
_INFIX = {
    "~": (1, 1),
    "|": (3, 3),
    "||": (3, 3),
    "&": (5, 5),
    "==": (9, 9),
    "!=": (9, 9),
    "<": (9, 9),
    "<=": (9, 9),
    ">": (9, 9),
    ">=": (9, 9),
    "+": (11, 11),
    "-": (11, 11),
    "*": (13, 13),
    "/": (13, 13),
    "%in%": (15, 15),
    "%%": (15, 15),
    "%/%": (15, 15),
    ":": (17, 17),
    "^": (21, 20),
}
_COMPARISONS = frozenset(("==", "!=", "<", "<=", ">", ">="))
# Right binding power of prefix operators: unary minus binds tighter than ':' but
# looser than '^' (-x^2 is -(x^2)); '!' looser than comparisons; '~' loosest.
_PREFIX = {"-": 19, "+": 19, "!": 7, "~": 1}


_OPERAND_END = frozenset((")", ","))


class _Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.match = self._match_parentheses()

    def _match_parentheses(self):
        match, stack = {}, []
        for i, tok in enumerate(self.tokens):
            if tok.kind != "op":
                continue
            if tok.value == "(":
                stack.append(i)
            elif tok.value == ")":
                if not stack:
                    raise ValueError(
                        f"Unbalanced parentheses: ')' without '(' in {self.text[: tok.end]!r}."
                    )
                j = stack.pop()
                match[i], match[j] = j, i
        if stack:
            start = self.tokens[stack[0]].start
            raise ValueError(
                f"Unbalanced parentheses: '(' is never closed in {self.text[start:]!r}."
            )
        return match

    # -- errors quote the innermost parenthesized group around the offending token

    def error(self, message, index=None):
        index = self.pos if index is None else index
        best = None
        for j, tok in enumerate(self.tokens):
            if tok.kind == "op" and tok.value == "(" and j <= index <= self.match[j]:
                best = j  # later '(' that still encloses: an inner group
        if best is None:
            return ValueError(f"{message} in {self.text!r}.")
        lo, hi = self.tokens[best].start, self.tokens[self.match[best]].end
        return ValueError(f"{message} in {self.text[lo:hi]!r}.")

    def peek(self, offset=0):
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def is_op(self, tok, *values):
        return tok is not None and tok.kind == "op" and tok.value in values

    # -- grammar

    def expression(self, min_bp=0):
        left = self.operand()
        tokens, n = self.tokens, len(self.tokens)
        while True:
            if self.pos >= n:
                return left
            tok = tokens[self.pos]
            bp = _INFIX.get(tok.value) if tok.kind == "op" else None
            if bp is None:
                if tok.kind == "op" and tok.value in _OPERAND_END:
                    return left
                raise self.unexpected(tok)
            lbp, rbp = bp
            if lbp <= min_bp:
                return left
            self.pos += 1
            right = self.operand_after(tok, rbp)
            left = Binary(tok.value, left, right, left.start, right.end)
            if tok.value in _COMPARISONS and self.is_op(self.peek(), *_COMPARISONS):
                raise self.error("Comparisons cannot be chained (write (a < b) & (b < c))")

    def unexpected(self, tok):
        if tok.kind == "op" and tok.value == "(":
            return self.error("Only a function name can be called")
        shown = self.text[tok.start : tok.end]
        if tok.kind == "op":
            return self.error(f"{shown!r} is not allowed here")
        previous = self.tokens[self.pos - 1]
        before = self.text[previous.start : previous.end]
        return self.error(f"Missing operator between {before!r} and {shown!r}")

    def operand_after(self, op_token, rbp):
        if self.peek() is None:
            raise self.error(f"Missing term after {self.text[op_token.start : op_token.end]!r}")
        return self.expression(rbp)

    def operand(self):
        tok = self.peek()
        if tok is None:
            raise self.error("Missing term at the end", len(self.tokens) - 1)
        self.pos += 1
        if tok.kind == "name":
            after = self.tokens[self.pos] if self.pos < len(self.tokens) else None
            if after is not None and after.kind == "op" and after.value == "(":
                return self.call(tok)
            return Name(tok.value, tok.quoted, tok.start, tok.end)
        if tok.kind == "number":
            return Number(tok.value, tok.integer, tok.start, tok.end)
        if tok.kind == "string":
            return String(tok.value, tok.start, tok.end)
        if tok.kind == "logical":
            return Logical(tok.value, tok.start, tok.end)
        if tok.value == "(":
            if self.is_op(self.peek(), ")"):
                raise self.error("Empty parentheses", self.pos - 1)
            inner = self.expression(0)
            close = self.peek()
            if not self.is_op(close, ")"):
                raise self.error("Expected ')'", self.pos - 1)
            self.pos += 1
            return Paren(inner, tok.start, close.end)
        if tok.value in _PREFIX:
            operand = self.operand_after(tok, _PREFIX[tok.value])
            return Unary(tok.value, operand, tok.start, operand.end)
        self.pos -= 1
        shown = self.text[tok.start : tok.end]
        raise self.error(f"Missing term before {shown!r}")

    def call(self, name_token):
        open_index = self.pos
        self.pos += 1  # "("
        args = []
        while not self.is_op(self.peek(), ")"):
            if args:
                if not self.is_op(self.peek(), ","):
                    raise self.error("Expected ',' between arguments", open_index)
                self.pos += 1
            tok, after = self.peek(), self.peek(1)
            if self.is_op(tok, ",", ")"):
                raise self.error("Empty argument", open_index)
            name = None
            if tok.kind == "name" and self.is_op(after, "="):
                name = tok.value
                self.pos += 2
                if self.is_op(self.peek(), ",", ")"):
                    raise self.error(f"Missing value for argument {name!r}", open_index)
            args.append(Argument(name, self.expression(0)))
        close = self.peek()
        self.pos += 1
        return Call(name_token.value, tuple(args), name_token.start, close.end)


def parse_expression(text):
    """The tree of formula ``text``.

    Parameters
    ----------
    text : str

    Returns
    -------
    node
        One of the node types of this module (``Binary("~", ...)`` for a formula).

    Raises
    ------
    ValueError
        For text that is not an R expression; the message quotes the innermost
        parenthesized group around the problem.

    Examples
    --------
    >>> parse_expression("-x^2").op, parse_expression("-x^2").operand.op
    ('-', '^')
    """
    parser = _Parser(text)
    if not parser.tokens:
        raise ValueError(f"The formula {text!r} is empty.")
    node = parser.expression(0)
    tok = parser.peek()
    if tok is not None:  # a stray ')' or ','
        raise quote_error(text, tok.start, tok.end, "Unexpected")
    return node
