"""Every lme4 reference model rebuilt through the array/DataFrame interface.

Interaction and dummy columns are computed here, as a user without formulas would;
``batch/cask`` is two group columns, crossed factors are two group columns and
``(1 | school) + (0 + standLRT | school)`` is ``covariance="diagonal"``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from sklmixed import MixedLMRegressor, SingularFitWarning

from ._lme4 import assert_matches_lme4, load_data, load_reference


def _exam():
    exam = load_data("Exam")
    exam["school"] = exam["school"].astype(str)
    exam["standLRT:schavg"] = exam["standLRT"] * exam["schavg"]
    exam["sexM"] = (exam["sex"] == "M").astype(float)
    # The reference fit used mlmRev's level order, where "mixed" is the baseline.
    exam["schgendboys"] = (exam["schgend"] == "boys").astype(float)
    exam["schgendgirls"] = (exam["schgend"] == "girls").astype(float)
    return exam


def _pastes():
    pastes = load_data("Pastes")
    return pastes


# name -> (data loader, response, X columns, estimator parameters)
CASES = {
    "exam_null": (_exam, "normexam", ["school"], dict(group="school")),
    "exam_ri_standLRT": (_exam, "normexam", ["standLRT", "school"], dict(group="school")),
    "exam_rs_ML": (
        _exam, "normexam", ["standLRT", "school"],
        dict(group="school", random_effects=["standLRT"], method="ML"),
    ),
    "exam_rs_schavg": (
        _exam, "normexam", ["standLRT", "schavg", "school"],
        dict(group="school", random_effects=["standLRT"]),
    ),
    "exam_cross_level": (
        _exam, "normexam", ["standLRT", "schavg", "standLRT:schavg", "school"],
        dict(group="school", random_effects=["standLRT"]),
    ),
    "exam_cross_level_ML": (
        _exam, "normexam", ["standLRT", "schavg", "standLRT:schavg", "school"],
        dict(group="school", random_effects=["standLRT"], method="ML"),
    ),
    "exam_categorical": (
        _exam, "normexam", ["standLRT", "sexM", "schgendboys", "schgendgirls", "school"],
        dict(group="school", random_effects=["standLRT"]),
    ),
    "exam_uncorrelated": (
        _exam, "normexam", ["standLRT", "school"],
        dict(group="school", random_effects=["standLRT"], covariance="diagonal"),
    ),
    "sleepstudy_rs": (
        lambda: load_data("sleepstudy"), "Reaction", ["Days", "Subject"],
        dict(group="Subject", random_effects=["Days"]),
    ),
    "sleepstudy_rs_ML": (
        lambda: load_data("sleepstudy"), "Reaction", ["Days", "Subject"],
        dict(group="Subject", random_effects=["Days"], method="ML"),
    ),
    "pastes_nested": (
        _pastes, "strength", ["batch", "sample"], dict(group=["batch", "sample"]),
    ),
    "penicillin_crossed": (
        lambda: load_data("Penicillin"), "diameter", ["plate", "sample"],
        dict(group=["plate", "sample"]),
    ),
    "dyestuff2_singular": (
        lambda: load_data("Dyestuff2"), "Yield", ["Batch"], dict(group="Batch"),
    ),
}


def _fit(name):
    loader, response, columns, params = CASES[name]
    data = loader()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        model = MixedLMRegressor(**params).fit(data[columns], data[response])
    return model, data, columns, response


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_lme4(name):
    ref = load_reference(name)
    model, data, columns, response = _fit(name)
    assert model.converged_
    assert_matches_lme4(model, ref, data[response], fitted=model.predict(data[columns]))
    assert model.is_singular_ == ref["singular"]
    # The criterion as lme4 reports it, and the information criteria.
    np.testing.assert_allclose(model.aic_, ref["AIC"], atol=2e-3)
    np.testing.assert_allclose(model.bic_, ref["BIC"], atol=2e-3)
    if ref["REML"]:
        np.testing.assert_allclose(model.reml_criterion_, ref["REMLcrit"], atol=2e-3)


@pytest.mark.parametrize("name", ["exam_cross_level", "sleepstudy_rs", "penicillin_crossed"])
def test_conditional_modes_match_lme4(name):
    ref = load_reference(name)
    model, *_ = _fit(name)
    for (factor, modes), lme4_name in zip(model.random_effects_.items(), ref["ranef"]):
        lme4 = ref["ranef"][lme4_name]
        order = modes.index.get_indexer([type(modes.index[0])(lv) for lv in lme4["levels"]])
        scale = np.abs(lme4["values"]).max()
        np.testing.assert_allclose(
            modes.to_numpy()[order], np.reshape(lme4["values"], modes.shape), atol=1e-3 * scale
        )
        ours = model.random_effects_cond_var_[factor][order]
        condvar = np.reshape(lme4["condvar"], ours.shape)
        np.testing.assert_allclose(ours, condvar, atol=1e-3 * np.abs(condvar).max())


def test_singular_fit_is_reported_with_a_warning():
    data = load_data("Dyestuff2")
    with pytest.warns(SingularFitWarning, match="singular"):
        model = MixedLMRegressor(group="Batch").fit(data[["Batch"]], data["Yield"])
    assert model.is_singular_
    batch = model.variance_components_.query("group == 'Batch'")
    assert batch["vcov"].item() == 0.0
    assert model.theta_.tolist() == [0.0]


def test_variance_components_layout_is_lme4s():
    model, *_ = _fit("exam_cross_level")
    vc = model.variance_components_
    assert list(vc.columns) == ["group", "var1", "var2", "vcov", "sdcor"]
    assert vc["group"].tolist() == ["school", "school", "school", "Residual"]
    assert vc["var1"].tolist()[:3] == ["(Intercept)", "standLRT", "(Intercept)"]
    assert vc["var2"].tolist()[2] == "standLRT"
    ref = load_reference("exam_cross_level")
    np.testing.assert_allclose(vc["sdcor"], [r["sdcor"] for r in ref["varcorr"]], rtol=2e-3)
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=2e-3, atol=1e-5)


def test_diagonal_covariance_names_second_block_like_lme4():
    model, *_ = _fit("exam_uncorrelated")
    assert model.variance_components_["group"].tolist() == ["school", "school.1", "Residual"]
