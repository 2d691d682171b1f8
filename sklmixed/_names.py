"""The names sklmixed shares with R: one definition of each.

lme4 names the intercept ``(Intercept)``, writes a variable that is not a syntactic R
name in backquotes, and names a second term on one grouping factor ``g.1``. Every
module that prints or parses such a name uses these.
"""

from __future__ import annotations

import re

__all__ = ["INTERCEPT", "r_name", "term_names"]

INTERCEPT = "(Intercept)"

# R's syntactic names: a letter, or a dot not followed by a digit, then letters,
# digits, dots and underscores.
_SYNTACTIC = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*")


def r_name(name: str) -> str:
    """``name`` as R writes it in a formula: backquoted unless syntactic.

    An interaction of grouping variables (``batch:cask``) keeps its colons: each
    part is quoted on its own.

    Examples
    --------
    >>> r_name("school"), r_name("my school"), r_name("batch:cask")
    ('school', '`my school`', 'batch:cask')
    """
    return ":".join(p if _SYNTACTIC.fullmatch(p) else f"`{p}`" for p in name.split(":"))


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
