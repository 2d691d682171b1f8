"""Likelihood-ratio tests against lme4's ``anova(m0, m1)`` (tests/reference/inference/
anova_*.json, written by make_intervals.R with lme4 1.1-31)."""

import json

import numpy as np
import pandas as pd
import pytest

from sklmixed import lmer
from sklmixed.inference import NotNestedError, RefitWarning, anova, compare_models

from ._lme4 import REFERENCE, load_data

PAIRS = sorted((REFERENCE / "inference").glob("anova_*.json"))
DATASETS = {
    "exam": "Exam", "sleepstudy": "sleepstudy", "pastes": "Pastes", "penicillin": "Penicillin"
}
TOL_ANOVA = 1e-6  # the tolerance on anova(m0, m1)


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.stem)
def test_anova_matches_lme4(path):
    ref = json.loads(path.read_text())
    data = load_data(DATASETS[ref["name"].split("_")[0]])
    models = [lmer(f, data, REML=reml) for f, reml in zip(ref["formulas"], ref["REML"])]
    with pytest.warns(RefitWarning, match="refitting model"):
        table = anova(*models, names=ref["rownames"], data_name="data[[m[[1]]]]")
    assert table.message == ref["message"].strip()
    lme4 = pd.DataFrame(ref["table"], index=ref["rownames"]).astype(float)
    ours = table.to_frame()
    assert list(ours.columns) == list(lme4.columns)
    assert list(ours.index) == list(lme4.index)
    np.testing.assert_allclose(ours.astype(float), lme4, rtol=0, atol=TOL_ANOVA)
    assert table.lines() == ref["printed"]  # R's layout, digit for digit


@pytest.fixture(scope="module")
def sleep():
    return load_data("sleepstudy")


def test_refit_false_compares_reml_fits_with_the_same_fixed_effects(sleep):
    m0 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    m1 = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    table = anova(m0, m1, refit=False)
    assert table.refitted == ()
    reml = [m0.result_.reml_criterion, m1.result_.reml_criterion]
    np.testing.assert_allclose(table.table["deviance"], reml)


def test_refit_false_refuses_reml_fits_with_different_fixed_effects(sleep):
    m0 = lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="fixed effects differ"):
        anova(m0, m1, refit=False)


def test_different_data_is_refused(sleep):
    m0 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    fewer = lmer("Reaction ~ Days + (1 | Subject)", sleep.iloc[:-10])
    with pytest.raises(ValueError, match="same data: numbers of observations"):
        anova(m0, fewer, names=["all", "fewer"])
    other = sleep.assign(Reaction=sleep.Reaction[::-1].to_numpy())
    with pytest.raises(ValueError, match="different responses"):
        anova(m0, lmer("Reaction ~ Days + (1 | Subject)", other))


def test_models_with_the_same_number_of_parameters_are_not_nested():
    exam = load_data("Exam")
    a = lmer("normexam ~ standLRT + (1 | school)", exam, REML=False)
    b = lmer("normexam ~ schavg + (1 | school)", exam, REML=False)
    with pytest.raises(NotNestedError, match="same number of parameters"):
        anova(a, b)


def test_fewer_than_two_models_and_bad_names(sleep):
    m0 = lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.raises(ValueError, match="at least two"):
        compare_models(m0)
    with pytest.raises(ValueError, match="names"):
        anova(m0, m0, names=["a"])
    with pytest.raises(TypeError, match="model 2"):
        anova(m0, "not a model")
