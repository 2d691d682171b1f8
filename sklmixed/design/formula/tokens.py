"""The one tokenizer of formula text: R's lexical rules, quote-aware, positions kept.

Every other module reads formulas through :func:`tokenize`, so a string, a
backtick-quoted name or an operator is recognized in exactly one way.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from ..._names import RESERVED, is_name_part, is_name_start

__all__ = [
    "RESERVED",
    "Token",
    "is_name_part",
    "is_name_start",
    "normalize_name",
    "quote_error",
    "tokenize",
]

# Longest first: "||" before "|", "<=" before "<", "**" before "*".
_OPERATORS = (
    "%in%", "%/%", "%%", "||", "**", "==", "!=", "<=", ">=",
    "~", "+", "-", "*", "/", "^", ":", "|", "<", ">", "!", "&", "(", ")", ",", "=",
)  # fmt: skip
# Operators by first character, longest first, so one dict look-up finds the candidates.
_BY_FIRST = {}
for _op in _OPERATORS:
    _BY_FIRST.setdefault(_op[0], []).append(_op)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "`": "`"}
_WORDS = RESERVED | {"TRUE", "FALSE"}


class Token(NamedTuple):
    """One lexical unit of a formula.

    Attributes
    ----------
    kind : str
        ``"name"``, ``"number"``, ``"string"``, ``"logical"`` or ``"op"``.
    value : object
        The name (NFKC-normalized, backticks removed), the number (float), the
        decoded string, True/False, or the operator text (``"**"`` read as ``"^"``).
    start, end : int
        Offsets of the token in the formula text.
    quoted : bool
        For a name: whether it was written in backticks.
    integer : bool
        For a number: whether it carried R's ``L`` suffix.
    """

    kind: str
    value: object
    start: int
    end: int
    quoted: bool = False
    integer: bool = False


# The common tokens of a long formula in one regular expression; anything it does not
# take (strings, backticks, non-ASCII names, errors) goes through the readers below.
_FAST = re.compile(
    r"(?P<ws>[ \t\n\r]+)"
    r"|(?P<name>[A-Za-z][A-Za-z0-9._]*)(?![^\x00-\x7f]|[A-Za-z0-9._])"  # a whole ASCII name
    r"|(?P<op>[+~*:|()^,-](?![|*]))"
)


def quote_error(text, start, end, message):
    """A ValueError quoting a piece of a formula.

    Parameters
    ----------
    text : str
        The formula.
    start, end : int
        The piece's offsets (an empty piece quotes the rest of the text).
    message : str

    Returns
    -------
    ValueError
    """
    piece = text[start:end] if end > start else text[start:] or text
    return ValueError(f"{message}: {piece!r} in the formula {text!r}.")


def normalize_name(name):
    """A name as Python normalizes identifiers (NFKC).

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        Fullwidth and mathematical letters folded to their plain forms, so that
        look-alikes name the same thing.
    """
    return unicodedata.normalize("NFKC", name)


def _read_name(text, pos):
    end = pos + 1
    while end < len(text) and is_name_part(text[end]):
        end += 1
    raw = text[pos:end]
    if raw.isascii():  # NFKC leaves ASCII alone: only the start needs checking
        name = raw
        if raw[0] == "_":
            raise quote_error(
                text, pos, end, "A name must start with a letter or '.', as in R (not '_')"
            )
        if name[0] == "." and len(name) > 1 and name[1].isdigit():
            raise quote_error(text, pos, end, "A name cannot start with '.' and a digit")
        if name in RESERVED:
            raise quote_error(text, pos, end, f"{name!r} is a reserved word of R, not allowed")
        return name, end
    name = normalize_name(raw)
    if not is_name_start(raw[0]):
        raise quote_error(
            text, pos, end, "A name must start with a letter or '.', as in R (not '_')"
        )
    if not name or not is_name_start(name[0]) or not all(is_name_part(c) for c in name):
        raise quote_error(text, pos, end, "Not a valid name after Unicode normalization")
    if name[0] == "." and len(name) > 1 and name[1].isdigit():
        raise quote_error(text, pos, end, "A name cannot start with '.' and a digit")
    if name in RESERVED:
        raise quote_error(text, pos, end, f"{name!r} is a reserved word of R, not allowed")
    return name, end


def _read_number(text, pos):
    end = pos
    while end < len(text) and text[end].isdigit() and text[end].isascii():
        end += 1
    if end < len(text) and text[end] == ".":
        end += 1
        while end < len(text) and text[end].isdigit() and text[end].isascii():
            end += 1
    if end < len(text) and text[end] in "eE":
        exp = end + 1
        if exp < len(text) and text[exp] in "+-":
            exp += 1
        digits = exp
        while exp < len(text) and text[exp].isdigit() and text[exp].isascii():
            exp += 1
        if exp == digits:
            raise quote_error(text, pos, exp, "A number's exponent has no digits")
        end = exp
    integer = end < len(text) and text[end] == "L"
    value = float(text[pos:end])
    if integer:
        end += 1
    if end < len(text) and (is_name_part(text[end]) and text[end] != "."):
        raise quote_error(text, pos, end + 1, "Cannot read the number")
    return value, end, integer


def _read_quoted(text, pos):
    """A string or backtick name starting at ``pos``: its decoded value and its end."""
    delimiter, out, i = text[pos], [], pos + 1
    while i < len(text):
        ch = text[i]
        if ch == delimiter:
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            code = text[i + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
                continue
            if code in "xuU":
                digits = {"x": 2, "u": 4, "U": 8}[code]
                hex_text = text[i + 2 : i + 2 + digits]
                if len(hex_text) == digits and all(c in "0123456789abcdefABCDEF" for c in hex_text):
                    out.append(chr(int(hex_text, 16)))
                    i += 2 + digits
                    continue
            raise quote_error(text, i, i + 2, "Unknown escape sequence")
        out.append(ch)
        i += 1
    what = "name in backticks" if delimiter == "`" else "string"
    raise quote_error(text, pos, len(text), f"A {what} is never closed")


def tokenize(text):
    """The tokens of formula ``text``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of Token

    Raises
    ------
    ValueError
        For a character that is no part of R's formula syntax (``[``, ``$``, ``@``,
        ``;``, ...), an unclosed string, a malformed number or an invalid name; the
        message quotes the text from the offending character on.

    Examples
    --------
    >>> [t.value for t in tokenize('log(`my x`, base = 2L) ~ "a"')]
    ['log', '(', 'my x', ',', 'base', '=', 2.0, ')', '~', 'a']
    """
    tokens, pos, n = [], 0, len(text)
    fast = _FAST.match
    while pos < n:
        match = fast(text, pos)
        if match is not None:
            end = match.end()
            group = match.lastgroup
            if group == "ws":
                pos = end
                continue
            if group == "op":
                tokens.append(Token("op", match.group(), pos, end))
                pos = end
                continue
            name = match.group()
            if name not in _WORDS:  # reserved words and TRUE/FALSE: the full reader
                tokens.append(Token("name", name, pos, end))
                pos = end
                continue
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif ch in "\"'":
            value, end = _read_quoted(text, pos)
            tokens.append(Token("string", value, pos, end))
            pos = end
        elif ch == "`":
            value, end = _read_quoted(text, pos)
            if not value:
                raise quote_error(text, pos, end, "An empty name in backticks")
            tokens.append(Token("name", value, pos, end, quoted=True))
            pos = end
        elif (ch.isdigit() and ch.isascii()) or (
            ch == "." and pos + 1 < n and text[pos + 1].isdigit() and text[pos + 1].isascii()
        ):
            value, end, integer = _read_number(text, pos)
            tokens.append(Token("number", value, pos, end, integer=integer))
            pos = end
        elif ch == "_" or is_name_start(ch):
            name, end = _read_name(text, pos)
            if name in ("TRUE", "FALSE"):
                tokens.append(Token("logical", name == "TRUE", pos, end))
            else:
                tokens.append(Token("name", name, pos, end))
            pos = end
        else:
            for op in _BY_FIRST.get(ch, ()):
                if text.startswith(op, pos):
                    value = "^" if op == "**" else op
                    tokens.append(Token("op", value, pos, pos + len(op)))
                    pos += len(op)
                    break
            else:
                if ch == "%":
                    close = text.find("%", pos + 1)
                    end = close + 1 if close > 0 else n
                    raise quote_error(text, pos, end, "Unknown operator (allowed: %in%, %%, %/%)")
                raise quote_error(
                    text,
                    pos,
                    n,
                    f"{ch!r} is not part of a formula (a formula holds names, numbers, strings "
                    "and the operators ~ + - * / ^ : | || %in% %% %/% == != < <= > >= ! & "
                    "( ) , =)",
                )
    return tokens
