"""The names sklmixed shares with R: one definition of each.

lme4 names the intercept ``(Intercept)``, writes a variable that is not a syntactic R
name in backquotes, and names a second term on one grouping factor ``g.1``. Every
module that prints or parses such a name uses these.
"""

from __future__ import annotations

import re

__all__ = [
    "INTERCEPT",
    "RESERVED",
    "is_name_part",
    "is_name_start",
    "r_interaction",
    "r_make_names",
    "r_make_unique",
    "r_name",
    "term_names",
]

INTERCEPT = "(Intercept)"

# Words R reserves: never names of columns or functions in a formula.
RESERVED = frozenset(
    "if else repeat while function for next break in NULL NA NA_integer_ NA_real_ "
    "NA_character_ Inf NaN".split()
)
_WORDS = RESERVED | {"TRUE", "FALSE"}
# The usual syntactic name, recognized without a character loop.
_ASCII_NAME = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*\Z")


def is_name_start(ch) -> bool:
    """Whether character ``ch`` may start an R name: a letter or ``.``."""
    # Never '_' or a digit. Python's identifier classes define "letter" for every
    # script, as they do for Python's own names.
    return ch == "." or (ch != "_" and ch.isidentifier())


def is_name_part(ch) -> bool:
    """Whether character ``ch`` may continue an R name: a letter, digit, ``.`` or ``_``."""
    return ch in "._" or ("a" + ch).isidentifier()


def r_name(name: str) -> str:
    """``name`` as R writes it in a formula: itself if syntactic, else in backticks.

    Examples
    --------
    >>> r_name("school"), r_name("my school"), r_name("if")
    ('school', '`my school`', '`if`')
    """
    if _ASCII_NAME.match(name) and name not in _WORDS:  # the usual name, quickly
        return name
    syntactic = (
        name
        and is_name_start(name[0])
        and all(is_name_part(c) for c in name)
        and not (name[0] == "." and len(name) > 1 and name[1].isdigit())
        and name not in _WORDS
    )
    return name if syntactic else "`" + name.replace("`", "\\`") + "`"


def r_interaction(names) -> str:
    """R's text of an interaction of variables: ``batch:cask``, each name quoted alone."""
    return ":".join(r_name(n) for n in names)


def r_make_names(name: str) -> str:
    """R's ``make.names(name)``: every character that cannot be part of a name becomes
    ``.``, an ``X`` goes before a name that cannot start one, a ``.`` after a reserved word.

    Examples
    --------
    >>> r_make_names("g:h"), r_make_names("1g"), r_make_names("if")
    ('g.h', 'X1g', 'if.')
    """
    out = "".join(c if is_name_part(c) else "." for c in name)
    if not out or not is_name_start(out[0]) or (out[0] == "." and out[1:2].isdigit()):
        out = "X" + out
    return out + "." if out in _WORDS else out


def r_make_unique(names) -> list:
    """R's ``make.unique(names)``: the second and later copies of a name get ``.1``,
    ``.2``, ..., the first number that makes a name not yet taken."""
    taken = set(names)
    seen, counters, out = set(), {}, []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        k = counters.get(name, 1)
        while f"{name}.{k}" in taken:
            k += 1
        counters[name] = k + 1
        taken.add(f"{name}.{k}")
        out.append(f"{name}.{k}")
    return out


def term_names(factor_names) -> list:
    """lme4's names of random-effect terms in order (``VarCorr``'s names).

    Where a factor has several terms, lme4 passes every name through R's
    ``make.names(unique = TRUE)``: a repeated factor gets ``.1``, ``.2``, and an
    interaction ``g:h`` is written ``g.h``; where none repeats, the names are the
    factors'.

    Examples
    --------
    >>> term_names(["school", "school", "schgend"])
    ['school', 'school.1', 'schgend']
    >>> term_names(["g:h", "g:h", "g"])
    ['g.h', 'g.h.1', 'g']
    >>> term_names(["g:h", "g"])
    ['g:h', 'g']
    """
    names = list(factor_names)
    if len(set(names)) == len(names):
        return names
    return r_make_unique([r_make_names(name) for name in names])
