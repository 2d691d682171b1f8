"""lme4 formula text -> a fixed-effects matrix and random-effects terms.

The implementation lives in :mod:`sklmixed.design.formula`; this module keeps the
names the rest of the package imports. Its :class:`FormulaDesign` is the estimators'
door to it: they fit neither ``offset()`` terms nor a two-column ``cbind()``
response yet, so those are refused at fit instead of being silently ignored.
"""

from .design.formula import FormulaDesign as _FormulaDesign
from .design.formula import ParsedFormula, RandomBar, RandomTermData, parse_formula
from .design.formula.syntax import Call

__all__ = [
    "FormulaDesign",
    "ParsedFormula",
    "RandomBar",
    "RandomTermData",
    "parse_formula",
]


class FormulaDesign(_FormulaDesign):
    """:class:`sklmixed.design.formula.FormulaDesign`, refusing what the estimators
    cannot fit yet (offsets, ``cbind()`` responses).

    Parameters
    ----------
    formula : str
        An lme4 formula.
    """

    def fit_transform(self, data):
        """As :meth:`sklmixed.design.formula.FormulaDesign.fit_transform`.

        Raises
        ------
        ValueError
            For a formula with ``offset()`` terms or a ``cbind()`` response.
        """
        if self.parsed.offsets:
            raise ValueError(
                f"The formula {self.formula!r} has offset() terms, which this estimator does "
                "not fit yet: subtract the offset from the response instead."
            )
        node = self.parsed.response_node
        if isinstance(node, Call) and node.function == "cbind":
            raise ValueError(
                f"The response {self.response!r} of {self.formula!r} is a binomial "
                "(successes, failures) response; a linear mixed model needs one numeric column."
            )
        return super().fit_transform(data)
