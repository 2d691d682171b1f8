"""R's term algebra: the formula operators of a right side -> ordered terms.

A term is a set of variables (an interaction); the intercept is kept apart as a
flag. The operators follow R's ``terms()``: ``+`` joins, ``-`` removes, ``:``
interacts every pair, ``*`` is ``a + b + a:b``, ``(a + b)^k`` keeps interactions up
to order k, ``b %in% a`` interacts each term of b with all variables of a, ``a/b``
is ``a + b %in% a``; ``0``/``-1`` remove the intercept and ``1`` restores it (the
last one written wins). Terms are ordered by degree, stably, and a term's variables
by their first appearance, so ``a + b:a`` names its second column ``a:b`` as R does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .deparse import deparse
from .syntax import Binary, Call, Logical, Number, Paren, String, Unary

__all__ = ["TermSpec", "expand_terms", "flatten_sum"]

_FORMULA_OPERATORS = frozenset(("+", "-", "*", "/", ":", "^", "%in%"))


@dataclass(frozen=True)
class TermSpec:
    """The terms of a formula side, as R's ``terms()`` lists them.

    Attributes
    ----------
    intercept : bool
        Whether the side has an intercept.
    terms : tuple of tuple of str
        Each term's variable keys (R's deparsed text), in variable order; terms
        ordered by degree.
    variables : tuple of str
        Every variable key, in order of first appearance.
    nodes : tuple
        The expression node of each key in ``variables`` (same order).
    """

    intercept: bool
    terms: tuple
    variables: tuple
    nodes: tuple

    def node(self, key):
        """The expression node of a variable.

        Parameters
        ----------
        key : str
            A key of :attr:`variables`.

        Returns
        -------
        node
        """
        return self._node_of[key]

    @cached_property
    def _node_of(self):
        return dict(zip(self.variables, self.nodes))

    def label(self, term):
        """R's label of a term.

        Parameters
        ----------
        term : tuple of str

        Returns
        -------
        str
            ``"a:b"``.
        """
        return ":".join(term)


class _Sum:
    """Intermediate result: terms (frozensets, ordered, unique) and an intercept mark
    (None: not said; True: ``+ 1``; False: ``+ 0`` or ``- 1``)."""

    __slots__ = ("intercept", "terms")

    def __init__(self, terms=(), intercept=None):
        self.terms = dict.fromkeys(terms)  # an ordered set
        self.intercept = intercept

    def add(self, other):
        """``self + other``, in place (a long sum stays linear in its length)."""
        self.terms.update(other.terms)
        if other.intercept is not None:
            self.intercept = other.intercept
        return self

    def remove(self, other):
        """``self - other``, in place: ``- 1`` drops the intercept, ``- 0`` keeps it."""
        for term in other.terms:
            self.terms.pop(term, None)
        if other.intercept is not None:
            self.intercept = not other.intercept
        return self


def _interact(a, b):
    return _Sum(x | y for x in a.terms for y in b.terms)


class _Expander:
    def __init__(self, text, where):
        self.text = text
        self.where = where
        self.keys = {}  # key -> node, in order of first appearance

    def fail(self, node, message):
        piece = self.text[node.start : node.end]
        return ValueError(f"{message}: {piece!r} in {self.where!r}.")

    def no_intercept_mark(self, result, node, op):
        if result.intercept is not None:
            raise self.fail(node, f"0 or 1 (the intercept) cannot be an operand of {op!r}")
        return result

    def expand(self, node):
        kind = type(node)
        if kind is Paren:
            return self.expand(node.inner)
        if kind is Number:
            if node.value in (0.0, 1.0):
                return _Sum((), node.value == 1.0)
            raise self.fail(node, "A number is not a term (wrap arithmetic in I())")
        if kind in (String, Logical):
            raise self.fail(node, "A constant is not a term")
        if kind is Unary and node.op in "+-":
            operand = self.expand(node.operand)
            return operand if node.op == "+" else _Sum().remove(operand)
        if kind is Call and node.function == "offset":
            raise self.fail(node, "offset() must be a term of its own, added to the formula")
        if kind is Binary and node.op in ("+", "-"):
            return self.sum(flatten_sum(node))
        if kind is Binary and node.op in _FORMULA_OPERATORS:
            return self.binary(node)
        if kind is Binary and node.op in ("|", "||"):
            raise self.fail(
                node,
                "A random-effects term must be in parentheses and added to the formula, "
                "as '+ (lhs | group)'",
            )
        if kind is Binary and node.op == "~":
            raise self.fail(node, "A formula has at most one '~', at its top level")
        key = deparse(node)  # a variable: a name, a call, or arithmetic R keeps whole
        if self.keys.get(key) is None:  # new, or the response (numbered first, no node)
            self.keys[key] = node
        return _Sum((frozenset((key,)),))

    def sum(self, pieces):
        total = _Sum()
        for sign, piece in pieces:
            part = self.expand(piece)
            total.add(part) if sign == "+" else total.remove(part)
        return total

    def binary(self, node):
        op = node.op
        left = self.expand(node.left)
        if op == "^":
            right = node.right.inner if isinstance(node.right, Paren) else node.right
            if not (isinstance(right, Number) and right.value >= 1 and right.value.is_integer()):
                raise self.fail(
                    node, "'^' in a formula needs a whole number (write I(x^2) for a power)"
                )
            base = self.no_intercept_mark(left, node, op)
            out = _Sum(base.terms)
            for _ in range(int(right.value) - 1):
                out.add(_interact(out, base))
            return out
        right = self.expand(node.right)
        left = self.no_intercept_mark(left, node, op)
        right = self.no_intercept_mark(right, node, op)
        if op == ":":
            return _interact(left, right)
        if op == "*":
            return _Sum(left.terms).add(right).add(_interact(left, right))
        everything = frozenset().union(*left.terms) if op == "/" else None
        if op == "%in%":
            inner = frozenset().union(*right.terms)
            return _Sum([t | inner for t in left.terms])
        return _Sum(left.terms).add(_Sum(t | everything for t in right.terms))  # a/b


def flatten_sum(node):
    """The top-level ``+``/``-`` pieces of a formula side.

    Parameters
    ----------
    node
        A node of :mod:`.syntax`.

    Returns
    -------
    list of (str, node)
        ``a + b - c`` gives ``[("+", a), ("+", b), ("-", c)]``; a leading unary sign
        belongs to its piece (``-1 + x``).
    """
    pieces = []
    stack = [("+", node)]
    while stack:  # iterative: 20,000 terms make a left spine 20,000 deep
        sign, current = stack.pop()
        if isinstance(current, Binary) and current.op in ("+", "-"):
            right_sign = sign if current.op == "+" else ("-" if sign == "+" else "+")
            stack.append((right_sign, current.right))
            stack.append((sign, current.left))
        elif isinstance(current, Unary) and current.op in ("+", "-"):
            stack.append(
                (sign if current.op == "+" else ("-" if sign == "+" else "+"), current.operand)
            )
        else:
            pieces.append((sign, current))
    return pieces


def expand_terms(pieces, text, where, response_key=None):
    """The :class:`TermSpec` of additive ``pieces`` (from :func:`flatten_sum`).

    Parameters
    ----------
    pieces : list of (str, node)
    text : str
        The formula, for error messages.
    where : str
        The part of the formula, for error messages.
    response_key : str, optional
        Variables numbered after the response, as R numbers them.

    Returns
    -------
    TermSpec
    """
    expander = _Expander(text, where)
    if response_key is not None:
        expander.keys[response_key] = None
    total = expander.sum(pieces)
    order = {key: i for i, key in enumerate(expander.keys)}
    terms = [tuple(sorted(t, key=order.__getitem__)) for t in total.terms if t]
    terms.sort(key=len)  # stable: R orders by degree, then as written
    keys = [k for k in expander.keys if expander.keys[k] is not None]
    return TermSpec(
        intercept=total.intercept is not False,
        terms=tuple(terms),
        variables=tuple(keys),
        nodes=tuple(expander.keys[k] for k in keys),
    )
