"""The benchmark cases: which models are fitted to which data.

A :class:`Model` describes one linear mixed model twice: as lme4 formula text (for
the tools that parse formulas) and as structured fields (fixed columns, grouping
factors, random slopes) from which the tools without an lme4 formula parser build
their own inputs. A :class:`Problem` is one data set with the models fitted to it;
a case is a list of problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import data

__all__ = ["Model", "Problem", "CASES", "build_case"]

#: Rows of the frame on which ``predict`` is timed in the ``single`` case.
PREDICT_ROWS = 1_000_000


@dataclass(frozen=True)
class Model:
    """One linear mixed model.

    Attributes
    ----------
    name : str
        Short label for the table.
    formula : str
        lme4 formula, e.g. ``"y ~ x1 + (1 + x1 | g)"``.
    reml : bool
        REML (True) or maximum likelihood (False).
    response : str
        Response column.
    fixed : tuple of str
        Fixed-effect columns besides the intercept; ``"a:b"`` is the product of
        columns ``a`` and ``b``.
    groups : tuple of str
        Grouping factors, each with a random intercept; outermost first.
    slopes : tuple of str
        Columns with random slopes, correlated with the intercept, on a single
        grouping factor (``groups`` must then have one element).
    nested : bool
        Whether ``groups[1]`` is nested in ``groups[0]`` (with labels unique across
        ``groups[0]``); otherwise several groups are crossed.
    """

    name: str
    formula: str
    reml: bool
    response: str
    fixed: tuple = ()
    groups: tuple = ()
    slopes: tuple = ()
    nested: bool = False

    def __post_init__(self):
        if self.slopes and len(self.groups) != 1:
            raise ValueError("random slopes are only described for one grouping factor")
        if self.nested and len(self.groups) != 2:
            raise ValueError("nested models have exactly two grouping factors")


@dataclass(frozen=True)
class Problem:
    """One data set and the models fitted to it.

    Attributes
    ----------
    case : str
        Case name (``exam``, ``single``, ...).
    dataset : data.Dataset
        The data.
    models : tuple of Model
        Models fitted to ``dataset``, in order.
    predict : data.Dataset or None
        Data on which ``predict`` is timed after the fit, if any.
    per_eval : bool
        Whether to estimate the time of one deviance evaluation.
    """

    case: str
    dataset: data.Dataset
    models: tuple
    predict: data.Dataset | None = None
    per_eval: bool = False


def _exam(quick):
    """The five Exam models of the lme4 tutorial."""
    fixed_slope = ("standLRT",)
    models = (
        Model("null", "normexam ~ 1 + (1 | school)", True, "normexam",
              (), ("school",)),
        Model("intercept", "normexam ~ standLRT + (1 | school)", True, "normexam",
              fixed_slope, ("school",)),
        Model("slope ML", "normexam ~ standLRT + (standLRT | school)", False, "normexam",
              fixed_slope, ("school",), fixed_slope),
        Model("schavg", "normexam ~ standLRT + schavg + (1 + standLRT | school)", True,
              "normexam", ("standLRT", "schavg"), ("school",), fixed_slope),
        Model("interaction", "normexam ~ standLRT * schavg + (1 + standLRT | school)", True,
              "normexam", ("standLRT", "schavg", "standLRT:schavg"), ("school",), fixed_slope),
    )
    return [Problem("exam", data.exam(), models)]


def _single(quick):
    """One factor, ten features, correlated intercept and two slopes; 100k and 1M rows."""
    features = tuple(f"x{j}" for j in range(1, 11))
    model = Model(
        "3 RE corr", "y ~ " + " + ".join(features) + " + (1 + x1 + x2 | g)", True, "y",
        features, ("g",), ("x1", "x2"),
    )
    sizes = [(100_000, 1_000)] if quick else [(100_000, 1_000), (1_000_000, 10_000)]
    return [
        Problem("single", data.single(n_rows, n_levels), (model,),
                predict=data.single(PREDICT_ROWS, n_levels), per_eval=True)
        for n_rows, n_levels in sizes
    ]


def _crossed(quick):
    """Students x instructors (+ departments): InstEval-sized, quarter-sized when quick.

    lme4 needs about a minute on the full size (its sparse Cholesky factor of the
    crossed students and instructors fills in) but a second or two on a quarter.
    """
    model = Model("3 crossed", "y ~ x1 + x2 + (1 | s) + (1 | d) + (1 | dept)", True, "y",
                  ("x1", "x2"), ("s", "d", "dept"))
    dataset = data.crossed(18_355, 743, 282) if quick else data.crossed()
    return [Problem("crossed", dataset, (model,))]


def _nested(quick):
    """Rows in units in areas."""
    model = Model("area/unit", "y ~ x1 + x2 + (1 | area/unit)", True, "y",
                  ("x1", "x2"), ("area", "unit"), nested=True)
    return [Problem("nested", data.nested(), (model,))]


#: Case name -> function ``(quick) -> list of Problem``.
CASES = {"exam": _exam, "single": _single, "crossed": _crossed, "nested": _nested}


def build_case(name: str, quick: bool) -> list:
    """Problems of case ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`CASES`.
    quick : bool
        Leave out the slowest sizes.

    Returns
    -------
    list of Problem
    """
    return CASES[name](quick)
