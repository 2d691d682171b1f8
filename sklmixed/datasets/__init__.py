"""Data sets bundled with sklmixed: the Exam data of the classic lme4 tutorial and
lme4's small classics, as CSV exports of R's lme4 1.1-31 and mlmRev 1.0-8.

The GLMM data sets (cbpp, grouseticks, Contraception) come with their factors as
pandas Categoricals in R's level order: their labels look like numbers (herd ``"1"``
to ``"15"``, year ``"95"``), and read as numbers they would be fitted as slopes."""

from importlib import resources

import pandas as pd
from sklearn.utils import Bunch

__all__ = [
    "load_exam",
    "load_sleepstudy",
    "load_dyestuff2",
    "load_pastes",
    "load_penicillin",
    "load_cbpp",
    "load_grouseticks",
    "load_contraception",
]

# Data set -> its factor columns (R's factors, read as labels).
_FACTORS = {
    "cbpp": ["herd", "period"],
    "grouseticks": ["INDEX", "BROOD", "YEAR", "LOCATION"],
    "contraception": ["woman", "district", "use", "livch", "urban"],
}


def _read(name):
    factors = _FACTORS.get(name, [])
    with resources.files(__package__).joinpath("data", f"{name}.csv").open("rb") as f:
        frame = pd.read_csv(f, dtype={c: str for c in factors})
    for column in factors:
        frame[column] = pd.Categorical(frame[column], categories=_r_levels(frame[column]))
    return frame


def _r_levels(labels):
    """R's level order of these data sets' factors: numeric order for labels that are
    integers (as the packages built them), sorted text otherwise."""
    unique = pd.unique(labels)
    if all(label.isdigit() for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


# Data set (CSV name, the loader's name without "load_") -> target and grouping columns.
_ROLES = {
    "exam": ("normexam", ["school"]),
    "sleepstudy": ("Reaction", ["Subject"]),
    "dyestuff2": ("Yield", ["Batch"]),
    "pastes": ("strength", ["batch", "sample"]),
    "penicillin": ("diameter", ["plate", "sample"]),
    "cbpp": ("incidence", ["herd"]),
    "grouseticks": ("TICKS", ["BROOD", "INDEX", "LOCATION"]),
    "contraception": ("use", ["district"]),
}


def _load(loader, *, as_frame, return_X_y):
    """The data set of a ``load_<name>`` function, in scikit-learn's loader conventions."""
    name = loader.__name__.removeprefix("load_")
    target, groups = _ROLES[name]
    frame = _read(name)
    X, y = frame.drop(columns=[target]), frame[target]
    if not as_frame:
        X, y = X.to_numpy(), y.to_numpy()
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame if as_frame else None,
        feature_names=[c for c in frame.columns if c != target],
        target_names=[target],
        group_names=list(groups),
        DESCR=loader.__doc__.split("\n\n")[0],
    )


def load_exam(*, as_frame=True, return_X_y=False):
    """Exam scores of 4,059 students in 65 inner-London schools (mlmRev's ``Exam``).

    The data of the classic lme4 tutorial: ``normexam`` (normalized exam score, the
    target), ``standLRT`` (standardized London Reading Test score at intake),
    ``schavg`` (the school's average intake score), ``sex``, ``schgend`` (mixed, boys'
    or girls' school), ``school`` and ``student`` labels, and banded intake columns.

    Parameters
    ----------
    as_frame : bool, default=True
        Return pandas objects (the columns are of mixed types, so the numpy form is
        an object array).
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (X), ``target`` (normexam), ``frame`` (both), ``feature_names``,
        ``target_names``, ``group_names`` (``["school"]``) and ``DESCR``.
    (X, y) : tuple
        When ``return_X_y`` is True.

    References
    ----------
    Goldstein, H., Rasbash, J., et al. (1993). A multilevel analysis of school
    examination results. Oxford Review of Education 19, 425-433.

    Examples
    --------
    >>> from sklmixed.datasets import load_exam
    >>> exam = load_exam()
    >>> exam.frame.shape
    (4059, 10)
    """
    return _load(load_exam, as_frame=as_frame, return_X_y=return_X_y)


def load_sleepstudy(*, as_frame=True, return_X_y=False):
    """Reaction times of 18 subjects over 10 days of sleep deprivation (lme4's ``sleepstudy``).

    Target ``Reaction`` (ms), features ``Days`` and ``Subject``. Parameters and
    returns as :func:`load_exam`.
    """
    return _load(load_sleepstudy, as_frame=as_frame, return_X_y=return_X_y)


def load_dyestuff2(*, as_frame=True, return_X_y=False):
    """Simulated yields of 6 batches whose between-batch variance is estimated as 0 (lme4's ``Dyestuff2``).

    Target ``Yield``, group ``Batch``. Parameters and returns as :func:`load_exam`.
    """
    return _load(load_dyestuff2, as_frame=as_frame, return_X_y=return_X_y)


def load_pastes(*, as_frame=True, return_X_y=False):
    """Paste strength, casks nested within batches (lme4's ``Pastes``).

    Target ``strength``; ``batch``, ``cask`` and ``sample`` (the ``batch:cask``
    label). Parameters and returns as :func:`load_exam`.
    """
    return _load(load_pastes, as_frame=as_frame, return_X_y=return_X_y)


def load_penicillin(*, as_frame=True, return_X_y=False):
    """Inhibition zone diameters, 24 plates crossed with 6 samples (lme4's ``Penicillin``).

    Target ``diameter``; groups ``plate`` and ``sample``. Parameters and returns as
    :func:`load_exam`.
    """
    return _load(load_penicillin, as_frame=as_frame, return_X_y=return_X_y)


def load_cbpp(*, as_frame=True, return_X_y=False):
    """Contagious bovine pleuropneumonia in 15 herds over 4 periods (lme4's ``cbpp``).

    ``incidence`` new cases (the target) out of ``size`` cattle per herd and period;
    ``herd`` and ``period`` are factors. lme4's classic binomial GLMM is
    ``cbind(incidence, size - incidence) ~ period + (1 | herd)``. Parameters and
    returns as :func:`load_exam`.

    References
    ----------
    Lesnoff, M., et al. (2004). Within-herd spread of contagious bovine
    pleuropneumonia in Ethiopian highlands. Preventive Veterinary Medicine 64, 27-40.
    """
    return _load(load_cbpp, as_frame=as_frame, return_X_y=return_X_y)


def load_grouseticks(*, as_frame=True, return_X_y=False):
    """Ticks counted on the heads of 403 red grouse chicks (lme4's ``grouseticks``).

    ``TICKS`` (the target, a count), ``BROOD`` (118 broods) within ``LOCATION`` (63),
    ``YEAR`` (95, 96, 97), ``HEIGHT`` of the location above sea level (m) and
    ``cHEIGHT`` (centred), ``INDEX`` (the chick). A Poisson GLMM:
    ``TICKS ~ YEAR + cHEIGHT + (1 | BROOD)``. Parameters and returns as
    :func:`load_exam`.

    References
    ----------
    Elston, D. A., Moss, R., Boulinier, T., Arrowsmith, C. and Lambin, X. (2001).
    Analysis of aggregation, a worked example: numbers of ticks on red grouse chicks.
    Parasitology 122, 563-569.
    """
    return _load(load_grouseticks, as_frame=as_frame, return_X_y=return_X_y)


def load_contraception(*, as_frame=True, return_X_y=False):
    """Contraceptive use of 1,934 women in 60 districts of Bangladesh (mlmRev's ``Contraception``).

    ``use`` (the target, ``N``/``Y``), ``age`` (centred, years), ``urban``
    (``N``/``Y``), ``livch`` (number of living children: 0, 1, 2, 3+), ``district``
    and ``woman`` labels. A binary GLMM with a random slope:
    ``use ~ age + urban + (1 + urban | district)``. Parameters and returns as
    :func:`load_exam`.

    References
    ----------
    Huq, N. M. and Cleland, J. (1990). Bangladesh Fertility Survey 1989. National
    Institute of Population Research and Training, Dhaka.
    """
    return _load(load_contraception, as_frame=as_frame, return_X_y=return_X_y)
