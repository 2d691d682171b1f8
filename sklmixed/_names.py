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


def term_names(factor_names) -> list:
    """lme4's names of random-effect terms in order: a repeated factor gets ``.1``, ``.2``.

    Examples
    --------
    >>> term_names(["school", "school", "schgend"])
    ['school', 'school.1', 'schgend']
    """
    seen: dict = {}
    out = []
    for name in factor_names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}.{k}")
    return out
