"""Benchmark data: the Exam data and seeded simulations of three model shapes.

Every generator returns a :class:`Dataset`: a DataFrame whose grouping columns are
pandas categoricals (so every tool, including those that treat integer columns as
numbers, reads them as factors), the names of those columns, and, for simulations,
the true parameters. The same arguments always give the same frame.

The simulated shapes:

``single``
    One grouping factor ``g``; ten fixed features ``x1`` ... ``x10``; a correlated
    random intercept and random slopes on ``x1`` and ``x2`` with covariance
    :data:`SINGLE_COVARIANCE`; residual standard deviation 1.
``crossed``
    A course-evaluation survey shaped like lme4's ``InstEval``: students ``s`` and
    instructors ``d`` fully crossed, each instructor in one of a few departments
    ``dept``; skewed numbers of ratings per student and per instructor.
``nested``
    Units nested in areas (a three-level model: rows in units in areas); unit
    labels are unique across areas, so ``(1 | area/unit)`` and ``(1 | area) +
    (1 | unit)`` are the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "SINGLE_COVARIANCE",
    "exam",
    "single",
    "crossed",
    "nested",
]

#: True covariance of (intercept, x1 slope, x2 slope) in :func:`single`: standard
#: deviations 1, 0.5, 0.3 and correlations 0.4, -0.3, 0.2.
SINGLE_COVARIANCE = np.array(
    [
        [1.00, 0.20, -0.09],
        [0.20, 0.25, 0.03],
        [-0.09, 0.03, 0.09],
    ]
)


@dataclass(frozen=True)
class Dataset:
    """A benchmark data set.

    Attributes
    ----------
    name : str
        Short label used in the results table.
    frame : pandas.DataFrame
        The response, the features and the grouping columns.
    factors : tuple of str
        Grouping columns (pandas categoricals), outermost first.
    truth : dict
        True parameters of a simulation (empty for real data).
    """

    name: str
    frame: pd.DataFrame
    factors: tuple
    truth: dict = field(default_factory=dict)

    @property
    def n_levels(self) -> dict:
        """Number of levels of each grouping factor, in ``factors`` order."""
        return {f: int(self.frame[f].nunique()) for f in self.factors}


def _labels(prefix, codes, n_levels):
    """Categorical labels ``prefix0001`` ... for integer codes, all levels declared."""
    width = len(str(n_levels - 1))
    categories = [f"{prefix}{i:0{width}d}" for i in range(n_levels)]
    return pd.Categorical.from_codes(codes, categories=categories)


def _used_levels_only(frame, factors):
    """Drop declared levels that no row uses (R's ``droplevels``)."""
    for f in factors:
        frame[f] = frame[f].cat.remove_unused_categories()
    return frame


def exam() -> Dataset:
    """The Exam data (4,059 students in 65 schools) bundled with sklmixed.

    Returns
    -------
    Dataset
        ``school`` as a categorical; the other columns as loaded.
    """
    from sklmixed.datasets import load_exam

    frame = load_exam(as_frame=True).frame.copy()
    frame["school"] = pd.Categorical(frame["school"].astype(str))
    return Dataset("exam", frame, ("school",))


def single(n_rows: int, n_levels: int, *, seed: int = 0, n_features: int = 10) -> Dataset:
    """One grouping factor with a correlated random intercept and two random slopes.

    ``y = 1 + x @ beta + b0[g] + b1[g] x1 + b2[g] x2 + e`` with ``x ~ N(0, I)``,
    ``beta = (0.5, -0.25, 0.1, ...)`` alternating in sign, ``(b0, b1, b2) ~ N(0,
    SINGLE_COVARIANCE)`` per level and ``e ~ N(0, 1)``. Rows are spread over the
    levels uniformly at random, so group sizes vary around ``n_rows / n_levels``.

    Parameters
    ----------
    n_rows, n_levels : int
        Size of the data set.
    seed : int, default=0
        Seed of the generator; with the same ``n_levels`` and ``seed`` the random
        effects are the same, whatever ``n_rows``.
    n_features : int, default=10
        Number of fixed features ``x1`` ... (at least 2).

    Returns
    -------
    Dataset
        Columns ``y, x1 ... x{n_features}, g``.
    """
    level_rng = np.random.default_rng([seed, n_levels])
    b = level_rng.multivariate_normal(np.zeros(3), SINGLE_COVARIANCE, size=n_levels)
    rng = np.random.default_rng([seed, n_levels, n_rows])
    codes = rng.integers(0, n_levels, size=n_rows)
    x = rng.standard_normal((n_rows, n_features))
    beta = 0.5 * (-0.5) ** np.arange(n_features)
    y = (
        1.0
        + x @ beta
        + b[codes, 0]
        + b[codes, 1] * x[:, 0]
        + b[codes, 2] * x[:, 1]
        + rng.standard_normal(n_rows)
    )
    frame = pd.DataFrame({"y": y} | {f"x{j + 1}": x[:, j] for j in range(n_features)})
    frame["g"] = _labels("g", codes, n_levels)
    frame = _used_levels_only(frame, ["g"])
    truth = {"intercept": 1.0, "beta": beta.tolist(), "covariance": SINGLE_COVARIANCE.tolist(),
             "sigma": 1.0}
    return Dataset(f"single {n_rows:,}x{n_levels:,}", frame, ("g",), truth)


def crossed(
    n_rows: int = 73_421,
    n_students: int = 2_972,
    n_instructors: int = 1_128,
    n_departments: int = 14,
    *,
    seed: int = 0,
) -> Dataset:
    """Crossed students and instructors, shaped like lme4's ``InstEval``.

    Each row is one student's rating of one instructor. The number of ratings per
    student and per instructor is skewed (gamma and log-normal weights), and each
    instructor belongs to one department. ``y = 3.2 + 0.1 x1 - 0.2 x2 + s + d +
    dept + e`` with standard deviations 0.32 (students), 0.52 (instructors), 0.08
    (departments) and 1.18 (residual), close to the InstEval estimates; ``x1`` is a
    standardized continuous covariate and ``x2`` a 0/1 indicator.

    Parameters
    ----------
    n_rows, n_students, n_instructors, n_departments : int
        Size of the data set (defaults: InstEval's).
    seed : int, default=0
        Seed of the generator.

    Returns
    -------
    Dataset
        Columns ``y, x1, x2, s, d, dept``.
    """
    rng = np.random.default_rng([seed, 2])
    sd = {"s": 0.32, "d": 0.52, "dept": 0.08, "residual": 1.18}
    p_student = rng.gamma(2.0, size=n_students)
    p_instructor = rng.lognormal(0.0, 1.0, size=n_instructors)
    student = rng.choice(n_students, size=n_rows, p=p_student / p_student.sum())
    instructor = rng.choice(n_instructors, size=n_rows, p=p_instructor / p_instructor.sum())
    dept_of = rng.integers(0, n_departments, size=n_instructors)
    department = dept_of[instructor]
    x1 = rng.standard_normal(n_rows)
    x2 = (rng.random(n_rows) < 0.4).astype(float)
    y = (
        3.2
        + 0.1 * x1
        - 0.2 * x2
        + sd["s"] * rng.standard_normal(n_students)[student]
        + sd["d"] * rng.standard_normal(n_instructors)[instructor]
        + sd["dept"] * rng.standard_normal(n_departments)[department]
        + sd["residual"] * rng.standard_normal(n_rows)
    )
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2})
    frame["s"] = _labels("s", student, n_students)
    frame["d"] = _labels("d", instructor, n_instructors)
    frame["dept"] = _labels("dept", department, n_departments)
    factors = ("s", "d", "dept")
    frame = _used_levels_only(frame, factors)
    return Dataset(f"crossed {n_rows:,}", frame, factors, {"sd": sd, "beta": [3.2, 0.1, -0.2]})


def nested(
    n_rows: int = 30_000,
    n_units: int = 2_400,
    n_areas: int = 130,
    *,
    seed: int = 0,
) -> Dataset:
    """Rows in units in areas: a three-level nested model.

    Units are spread over areas at random (about ``n_units / n_areas`` per area)
    and rows over units at random (about ``n_rows / n_units`` per unit). ``y = 2 +
    0.3 x1 + 0.5 x2 + area + unit + e`` with standard deviations 0.6 (areas), 0.4
    (units) and 1 (residual).

    Parameters
    ----------
    n_rows, n_units, n_areas : int
        Size of the data set.
    seed : int, default=0
        Seed of the generator.

    Returns
    -------
    Dataset
        Columns ``y, x1, x2, area, unit``; unit labels are unique across areas.
    """
    rng = np.random.default_rng([seed, 3])
    sd = {"area": 0.6, "unit": 0.4, "residual": 1.0}
    # Every area gets at least one unit, every unit at least one row.
    area_of = np.concatenate([np.arange(n_areas), rng.integers(0, n_areas, n_units - n_areas)])
    unit = np.concatenate([np.arange(n_units), rng.integers(0, n_units, n_rows - n_units)])
    unit = np.sort(unit)
    area = area_of[unit]
    x1 = rng.standard_normal(n_rows)
    x2 = rng.standard_normal(n_rows)
    y = (
        2.0
        + 0.3 * x1
        + 0.5 * x2
        + sd["area"] * rng.standard_normal(n_areas)[area]
        + sd["unit"] * rng.standard_normal(n_units)[unit]
        + sd["residual"] * rng.standard_normal(n_rows)
    )
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2})
    frame["area"] = _labels("a", area, n_areas)
    frame["unit"] = _labels("u", unit, n_units)
    factors = ("area", "unit")
    frame = _used_levels_only(frame, factors)
    return Dataset(f"nested {n_rows:,}", frame, factors, {"sd": sd, "beta": [2.0, 0.3, 0.5]})
