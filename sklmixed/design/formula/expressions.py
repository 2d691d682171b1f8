"""The allow-list of formula expressions, checked on the tree and evaluated by walking it.

Nothing here, or anywhere in sklmixed's formula code, hands formula text to Python:
a node is one of :mod:`.syntax`'s types, a function is looked up in the table below
by name, and a name is looked up among the data's columns. Whatever is not listed
is a ValueError quoting it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .columns import MixedColumn
from .deparse import deparse, format_level
from .syntax import Argument, Binary, Call, Logical, Name, Number, Paren, String, Unary
from .transforms import (
    FactorValue,
    Levels,
    MatrixValue,
    learn_levels,
    poly_fit,
    poly_predict,
    scale_fit,
)

__all__ = ["FUNCTIONS", "Evaluator", "check_expression", "names_in"]

_ARITHMETIC = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "^": np.power,
    "%%": np.mod,  # R's %% and %/% round towards -Inf, as numpy's mod and floor_divide
    "%/%": np.floor_divide,
}
_COMPARE = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_MATH = {
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
}


@dataclass(frozen=True)
class _Signature:
    params: tuple  # argument names, in R's positional order
    required: int = 1
    variadic: bool = False
    stateful: bool = False
    literal: tuple = ()  # params that must be literals: degree, raw, center, scale, digits
    where: str = "anywhere"  # "term" (offset: a top-level term), "response" (cbind)


FUNCTIONS = {
    "I": _Signature(("x",)),
    "log": _Signature(("x", "base")),
    **{name: _Signature(("x",)) for name in _MATH},
    "pmin": _Signature((), variadic=True),
    "pmax": _Signature((), variadic=True),
    "round": _Signature(("x", "digits"), literal=("digits",)),
    "factor": _Signature(("x", "levels"), stateful=True, literal=("levels",)),
    "as.factor": _Signature(("x",), stateful=True),
    "C": _Signature(("x", "levels"), stateful=True, literal=("levels",)),
    "as.numeric": _Signature(("x",)),
    "center": _Signature(("x",), stateful=True),
    "scale": _Signature(("x", "center", "scale"), stateful=True, literal=("center", "scale")),
    "poly": _Signature(("x", "degree", "raw"), stateful=True, literal=("degree", "raw")),
    "offset": _Signature(("x",), where="term"),
    "cbind": _Signature((), required=2, variadic=True, where="response"),
}
"""Every function a formula may call, with its arguments (R's names and order)."""

_ALLOWED_TEXT = (
    "allowed: arithmetic (+ - * / ^ %% %/%), comparisons, & and ! , numbers, strings, "
    "TRUE/FALSE, column names and the functions " + ", ".join(sorted(FUNCTIONS))
)


def _fail(text, node, message):
    piece = text[node.start : node.end]
    return ValueError(f"{message}: {piece!r} in the formula {text!r}.")


def _bind(node, text):
    """``{param: node}`` of a call, R's matching: names first, then positions."""
    sig = FUNCTIONS[node.function]
    if sig.variadic:
        named = [a for a in node.args if a.name is not None]
        if named:
            raise _fail(text, node, f"{node.function}() takes no named arguments")
        if len(node.args) < max(sig.required, 1):
            raise _fail(text, node, f"{node.function}() needs at least {sig.required} arguments")
        return {i: a.value for i, a in enumerate(node.args)}
    bound = {}
    for arg in node.args:
        if arg.name is not None:
            if arg.name not in sig.params:
                raise _fail(
                    text,
                    node,
                    f"{node.function}() has no argument {arg.name!r} "
                    f"(arguments: {', '.join(sig.params)})",
                )
            if arg.name in bound:
                raise _fail(text, node, f"Argument {arg.name!r} given twice")
            bound[arg.name] = arg.value
    free = [p for p in sig.params if p not in bound]
    positional = [a.value for a in node.args if a.name is None]
    if len(positional) > len(free):
        raise _fail(text, node, f"Too many arguments for {node.function}()")
    bound.update(zip(free, positional))
    if any(p not in bound for p in sig.params[: sig.required]):
        raise _fail(text, node, f"{node.function}() needs its argument {sig.params[0]!r}")
    return bound


def _check_literal(node, param, value, text):
    inner = value.inner if isinstance(value, Paren) else value
    if param in ("degree", "digits"):
        ok = (
            isinstance(inner, Number)
            and inner.value.is_integer()
            and inner.value >= (param == "degree")
        )
        if not ok:
            raise _fail(text, node, f"{param} must be a whole number")
    elif param in ("raw", "center", "scale"):
        if not isinstance(inner, Logical):
            raise _fail(text, node, f"{param} must be TRUE or FALSE")
    elif param == "levels":
        items = (
            inner.args
            if isinstance(inner, Call) and inner.function == "c"
            else [Argument(None, inner)]
        )
        if any(
            a.name is not None or not isinstance(a.value, (Number, String, Logical)) for a in items
        ):
            raise _fail(text, node, "levels must be c() of numbers, strings or TRUE/FALSE")


def check_expression(node, text, where="term", stateless=False):
    """Raise ValueError unless ``node`` uses only allowed constructs.

    Parameters
    ----------
    node
        An expression node of :mod:`.syntax`.
    text : str
        The formula, quoted in messages.
    where : {"term", "response", "expression"}
        ``"term"``: a variable of a term (``offset()`` allowed at its top);
        ``"response"``: the left side (``cbind()`` allowed at its top).
    stateless : bool
        Refuse the functions that learn from the training data.

    Raises
    ------
    ValueError
        Quoting the first construct outside the allow-list, left to right.
    """
    stack = [(node, where)]  # popped last-in first-out: children pushed right to left
    while stack:
        current, place = stack.pop()
        kind = type(current)
        if kind is Name and current.name == "." and not current.quoted:
            raise _fail(text, current, "'.' (all other columns) is not supported; name the columns")
        if kind in (Name, Number, String, Logical):
            continue
        if kind is Paren:
            stack.append((current.inner, "expression"))
        elif kind is Unary and current.op in ("-", "+", "!"):
            stack.append((current.operand, "expression"))
        elif kind is Binary and (
            current.op in _ARITHMETIC or current.op in _COMPARE or current.op == "&"
        ):
            stack.extend([(current.right, "expression"), (current.left, "expression")])
        elif kind is Binary and current.op in ("|", "||"):
            raise _fail(
                text,
                current,
                f"{current.op!r} inside an expression reads as a random-effects "
                "bar in lme4; for a logical 'or' write pmax(a, b) > 0",
            )
        elif kind is Call:
            sig = FUNCTIONS.get(current.function)
            if sig is None:
                raise _fail(
                    text, current, f"Unknown function {current.function!r} ({_ALLOWED_TEXT})"
                )
            if sig.where == "term" and place != "term":
                raise _fail(text, current, "offset() must be a term of its own")
            if sig.where == "response" and place != "response":
                raise _fail(text, current, "cbind() is only allowed as the whole response")
            if stateless and sig.stateful:
                raise _fail(
                    text,
                    current,
                    f"{current.function}() learns from the training data and "
                    "is not allowed in the response or an offset",
                )
            later = []
            for param, value in _bind(current, text).items():
                if param in sig.literal:
                    _check_literal(current, param, value, text)
                else:
                    later.append((value, "expression"))
            stack.extend(reversed(later))  # left to right: the first problem is reported
        else:
            op = getattr(current, "op", "")
            raise _fail(
                text, current, f"Operator {op!r} is not allowed in an expression ({_ALLOWED_TEXT})"
            )


def names_in(node):
    """The column names an expression reads.

    Parameters
    ----------
    node
        A checked expression node.

    Returns
    -------
    list of str
        In order of appearance.
    """
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind is Name:
            if current.name not in out:
                out.append(current.name)
        elif kind is Paren:
            stack.append(current.inner)
        elif kind is Unary:
            stack.append(current.operand)
        elif kind is Binary:
            stack.extend([current.right, current.left])
        elif kind is Call:
            args = FUNCTIONS.get(current.function, _Signature(()))
            stack.extend(a.value for a in reversed(current.args) if a.name not in args.literal)
    return out


def _literal(node):
    inner = node.inner if isinstance(node, Paren) else node
    if isinstance(inner, Call):
        return [_literal(a.value) for a in inner.args]
    return inner.value


class Evaluator:
    """Evaluates checked expressions on data columns.

    Parameters
    ----------
    column : callable
        ``column(name)`` -> the column's values (numbers, logicals, strings or a
        pandas Categorical), checked and typed.
    state : dict
        Training state of stateful calls, keyed by their R text; filled when
        ``fitting``, read otherwise.
    fitting : bool
    """

    def __init__(self, column, state, fitting):
        self.column = column
        self.state = state
        self.fitting = fitting

    def __call__(self, node):
        """The value of a checked expression ``node``: numbers, logicals, text, a
        Categorical, a :class:`~.transforms.FactorValue` or a
        :class:`~.transforms.MatrixValue`."""
        with np.errstate(all="ignore"):  # log(0), 1/0: the model-column check names them
            return self._eval(node)

    def _eval(self, node):
        kind = type(node)
        if kind is Name:
            return self.column(node.name)
        if kind in (Number, String, Logical):
            return node.value
        if kind is Paren:
            return self._eval(node.inner)
        if kind is Unary:
            value = self._eval(node.operand)
            if node.op == "!":
                return ~self._logical(value, node)
            number = self.number(value, node)
            return -number if node.op == "-" else number
        if kind is Binary:
            return self._binary(node)
        if kind is Call:
            return self._call(node)
        raise ValueError(f"Not an allowed expression: {node!r}")  # checked before: unreachable

    def _binary(self, node):
        left, right = self._eval(node.left), self._eval(node.right)
        if node.op in _ARITHMETIC:
            a, b = self.number(left, node.left), self.number(right, node.right)
            return _ARITHMETIC[node.op](np.asarray(a, dtype=np.float64), b)
        if node.op == "&":
            return self._logical(left, node.left) & self._logical(right, node.right)
        if _is_text(left) or _is_text(right):  # R compares as character
            return _COMPARE[node.op](_as_text(left), _as_text(right))
        return _COMPARE[node.op](self.number(left, node.left), self.number(right, node.right))

    def number(self, value, node):
        """An evaluated value as float64 numbers (logicals as 0/1).

        Parameters
        ----------
        value
            What :meth:`__call__` returned.
        node
            Its expression, named in the error.

        Returns
        -------
        ndarray or float

        Raises
        ------
        ValueError
            For text, a factor, or a several-column value.
        """
        if isinstance(value, np.ndarray) and value.dtype.kind in "iufb":
            return value if value.dtype.kind == "f" else value.astype(np.float64)
        if isinstance(value, (bool, int, float)) and not isinstance(value, str):
            return float(value)
        if isinstance(value, MatrixValue):
            raise ValueError(f"{deparse(node)!r} has several columns; arithmetic needs one.")
        if isinstance(value, MixedColumn):
            raise value.error()
        raise ValueError(
            f"{deparse(node)!r} is not numeric, so it cannot be used in arithmetic "
            '(compare it, e.g. sex == "M", or use it as a factor).'
        )

    def _logical(self, value, node):
        if isinstance(value, np.ndarray) and value.dtype.kind == "b":
            return value
        if isinstance(value, bool):
            return np.bool_(value)
        return self.number(value, node) != 0

    def _call(self, node):
        name = node.function
        sig = FUNCTIONS[name]
        if sig.variadic:
            values = [self._eval(a.value) for a in node.args]
            if name == "cbind":
                return np.column_stack([self.number(v, a.value) for v, a in zip(values, node.args)])
            numbers = [self.number(v, a.value) for v, a in zip(values, node.args)]
            reduce = np.minimum if name == "pmin" else np.maximum
            out = numbers[0]
            for other in numbers[1:]:
                out = reduce(out, other)
            return out
        args = _bind(node, "")
        if name in ("factor", "as.factor", "C"):
            return self._factor(node, args)
        if name in ("I", "offset"):
            return self._eval(args["x"])
        x = self._eval(args["x"])
        if name == "as.numeric":
            if isinstance(x, FactorValue):
                return (x.codes + 1).astype(np.float64)  # R: a factor's codes
            if isinstance(x, pd.Categorical):
                raise ValueError(
                    f"as.numeric({deparse(args['x'])}) of a categorical column would give "
                    "its level codes, which depend on the level order of each data set: "
                    "convert the column in the data instead."
                )
            if _is_text(x):
                return _parse_numbers(x, deparse(args["x"]))
            return self.number(x, args["x"])
        x = self.number(x, args["x"])
        if name in _MATH:
            return _MATH[name](x)
        if name == "log":
            base = args.get("base")
            out = np.log(x)
            return out if base is None else out / np.log(self.number(self._eval(base), base))
        if name == "round":
            return np.round(x, int(_literal(args["digits"])) if "digits" in args else 0)
        return self._stateful(node, name, args, x)

    def _stateful(self, node, name, args, x):
        key = deparse(node)
        degree = int(_literal(args["degree"])) if "degree" in args else 1
        raw = "raw" in args and _literal(args["raw"])
        fitted = None
        if self.fitting and key not in self.state:
            if name == "center":
                self.state[key] = (float(np.mean(x)), None)
            elif name == "scale":
                center = _literal(args["center"]) if "center" in args else True
                scale = _literal(args["scale"]) if "scale" in args else True
                self.state[key] = scale_fit(x, center, scale)
            elif raw:
                self.state[key] = None
            else:
                fitted, coefs = poly_fit(x, degree)
                self.state[key] = (degree, coefs)
        state = self.state[key]
        if name in ("center", "scale"):
            center, scale = state
            out = x if center is None else x - center
            return out if scale is None else out / scale
        if raw:
            values = np.column_stack([x**k for k in range(1, degree + 1)])
        elif fitted is not None:
            values = fitted  # R's poly() on the training data: the QR basis itself
        else:
            values = poly_predict(x, state[1], degree)  # R's predict(poly): the recurrence
        return MatrixValue(values, tuple(str(k) for k in range(1, degree + 1)))

    def _factor(self, node, args):
        key = deparse(node)
        x = self._eval(args["x"])
        source = deparse(args["x"])
        if isinstance(x, MatrixValue):
            raise ValueError(f"{source!r} has several columns and cannot be a factor.")
        if isinstance(x, MixedColumn):
            x = x.as_text()  # as R's factor() of a character column
        if self.fitting and key not in self.state:
            if "levels" in args:
                wanted = _literal(args["levels"])
                wanted = wanted if isinstance(wanted, list) else [wanted]
                given = Levels(tuple(wanted), tuple(format_level(v) for v in wanted))
                # Unused given levels are dropped, as lme4's model frame drops them.
                levels, _ = learn_levels(FactorValue(given.codes(x, source), given))
            else:
                levels, _ = learn_levels(x, logical_both=False)
            self.state[key] = levels
        levels = self.state[key]
        return FactorValue(levels.codes(x, source), levels)


def _is_text(value):
    return isinstance(value, (str, FactorValue, pd.Categorical, MixedColumn)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "OU"
    )


def _as_text(value):
    if isinstance(value, FactorValue):
        return value.labels()
    if isinstance(value, pd.Categorical):
        return np.asarray(value, dtype=object)
    if isinstance(value, MixedColumn):
        return value.as_text()
    return value


def _parse_numbers(values, source):
    out = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy()
    bad = np.flatnonzero(np.isnan(out))
    if bad.size:
        raise ValueError(
            f"as.numeric({source}): {np.asarray(values, dtype=object)[bad[0]]!r} (row "
            f"{int(bad[0])}) is not a number."
        )
    return out.astype(np.float64)
