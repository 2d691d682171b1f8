"""lme4 formulas as data: parsed by our own tokenizer and parser, never evaluated as code.

Modules, in the order a formula flows through them:

- :mod:`.tokens`: the one tokenizer (R's lexical rules, quote-aware, NFKC names);
- :mod:`.syntax`: tokens -> a tree of our own node types (R's precedence);
- :mod:`.deparse`: R's text of a node, for column names;
- :mod:`.terms`: R's term algebra (``+ - * : / ^ %in%``, intercept rules);
- :mod:`.parse`: lme4's structure (response, bars, ``||``, ``/``, offsets);
- :mod:`.expressions`: the allow-list, and the evaluator that walks the tree;
- :mod:`.transforms`: stateful pieces (factor levels, ``scale``, ``poly``);
- :mod:`.columns`: data columns read as meant (dtypes, missing values);
- :mod:`.model_matrix`: R's ``model.matrix`` coding and names;
- :mod:`.design`: :class:`FormulaTerms` (the formula's matrices, fitted once and reused
  on new data) and :class:`FormulaDesign` (the formula as a
  :class:`~sklmixed.design.base.Design`).
"""

from .design import FormulaDesign, FormulaTerms
from .parse import ParsedFormula, RandomBar, parse_formula

__all__ = ["FormulaDesign", "FormulaTerms", "ParsedFormula", "RandomBar", "parse_formula"]
