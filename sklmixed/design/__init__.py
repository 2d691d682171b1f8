"""The design step: user data (arrays, DataFrames, a formula) to model arrays.

A design is fitted once on the training data and reused at predict time. It owns the
encoding of group levels, nested and crossed factors, the dropping of aliased
columns, every data check, and the unseen-level policy.
"""

from .arrays import ModelArrays, RandomFactor, RawTerm
from .base import Design
from .columns import ColumnDesign
from .formula import FormulaDesign

__all__ = ["ColumnDesign", "Design", "FormulaDesign", "ModelArrays", "RandomFactor", "RawTerm"]
