"""The traps of a newcomer's first hour, each written as the user wrote it.

- grouped cross-validation with the groups outside X (the most common scikit-learn
  idiom for grouped data) never quietly fits ordinary least squares;
- metadata routing works with the README's pipeline and with named scorers;
- household ids reused across communities can be declared nested;
- warnings point at the user's line, not at scikit-learn's;
- rows with missing values: lmer omits them as R does (checked against lme4), the
  estimator refuses them unless asked.

R references: tests/reference/docs/ (make_missing.R) and tests/reference/pastes_nested.json.
"""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklmixed import MixedLMRegressor, SingularFitWarning, grouped_scorer, lmer
from sklmixed.datasets import load_exam

from ._lme4 import assert_matches_lme4, load_data, load_reference

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def exam():
    return load_exam().frame


def _readme_pipeline():
    prep = ColumnTransformer(
        [("num", StandardScaler(), ["standLRT", "schavg"]),
         ("cat", OneHotEncoder(drop="if_binary", sparse_output=False), ["sex"])],
        remainder="passthrough", verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    return make_pipeline(prep, MixedLMRegressor(group="school", random_effects=["standLRT"]))


# ------------------------------------------------- grouped CV, groups outside X
def test_cross_val_score_with_splitter_groups_fails_loudly(exam):
    """Without routing, groups= reaches the splitter only: every fit refuses, none is OLS."""
    X, y, g = exam[["standLRT"]], exam["normexam"], exam["school"]
    with pytest.raises(ValueError, match="no grouping factor") as error:
        cross_val_score(MixedLMRegressor(), X, y, cv=GroupKFold(5), groups=g)
    message = str(error.value)
    assert 'group="school"' in message and "enable_metadata_routing" in message


def test_fit_without_any_grouping_factor_says_both_remedies(exam):
    with pytest.raises(ValueError, match=r"group=.*metadata routing.*LinearRegression"):
        MixedLMRegressor(random_effects=["standLRT"]).fit(exam[["standLRT"]], exam["normexam"])
    with pytest.raises(ValueError, match="no random-effects term"):
        lmer("normexam ~ standLRT", data=exam)  # lme4 refuses this too


def test_cross_val_score_with_routed_groups_is_the_mixed_model(exam):
    """Routing on: the estimator requests groups by default, so params= reaches it."""
    X, y, g = exam[["standLRT"]], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(MixedLMRegressor(), X, y, cv=GroupKFold(5), params={"groups": g})
    in_X = cross_val_score(
        MixedLMRegressor(group="school"), exam[["standLRT", "school"]], y, cv=GroupKFold(5),
        groups=g,
    )
    np.testing.assert_allclose(routed, in_X, rtol=1e-9)


# --------------------------------------------------- routing with named scorers
def test_readme_pipeline_under_routing_with_r2(exam):
    """Groups in X: the splitter's routed groups pass the model by; any scorer works."""
    X, y, g = exam[["standLRT", "schavg", "sex", "school"]], exam["normexam"], exam["school"]
    plain = cross_val_score(_readme_pipeline(), X, y, cv=GroupKFold(5), groups=g, scoring="r2")
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(
            _readme_pipeline(), X, y, cv=GroupKFold(5), params={"groups": g}, scoring="r2"
        )
    assert np.isfinite(routed).all()
    np.testing.assert_allclose(routed, plain, rtol=1e-12)


def test_routed_groups_with_a_named_scorer(exam):
    X, y, g = exam[["standLRT", "schavg"]], exam["normexam"], exam["school"]
    model = MixedLMRegressor(random_effects=["standLRT"])
    with sklearn.config_context(enable_metadata_routing=True):
        # A named scorer calls predict(X) without groups: a clear error says what to use.
        with pytest.raises(ValueError, match="grouped_scorer"):
            cross_val_score(model, X, y, cv=KFold(3), params={"groups": g}, scoring="r2",
                            error_score="raise")
        r2 = cross_val_score(model, X, y, cv=KFold(3), params={"groups": g},
                             scoring=grouped_scorer("r2"))
        mse = cross_val_score(model, X, y, cv=KFold(3), params={"groups": g},
                              scoring=grouped_scorer("neg_mean_squared_error"))
        default = cross_val_score(model, X, y, cv=KFold(3), params={"groups": g})
        search = GridSearchCV(model, {"method": ["REML", "ML"]}, cv=GroupKFold(3),
                              scoring=grouped_scorer("r2")).fit(X, y, groups=g)
    in_X = MixedLMRegressor(group="school", random_effects=["standLRT"])
    Xg = exam[["standLRT", "schavg", "school"]]
    np.testing.assert_allclose(r2, cross_val_score(in_X, Xg, y, cv=KFold(3), scoring="r2"),
                               rtol=1e-9)
    np.testing.assert_allclose(
        mse, cross_val_score(in_X, Xg, y, cv=KFold(3), scoring="neg_mean_squared_error"),
        rtol=1e-9,
    )
    np.testing.assert_allclose(r2, default, rtol=1e-12)  # scoring=None is R² too
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_explicit_requests_override_the_defaults(exam):
    X, y, g = exam[["standLRT", "school"]], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        model = MixedLMRegressor(group="school").set_fit_request(groups=True)
        with pytest.raises(ValueError, match="given twice"):
            model.fit(X, y, groups=g)
        outside = MixedLMRegressor().set_predict_request(groups=False)
        pipe = make_pipeline(StandardScaler().set_output(transform="pandas"), outside)
        pipe.fit(X[["standLRT"]], y, groups=g)
        with pytest.raises(TypeError, match="not routed"):
            pipe.predict(X[["standLRT"]], groups=g)


# ---------------------------------------------------- nesting in the array interface
def test_reused_inner_ids_declared_nested_match_lme4():
    """Pastes: casks a, b, c reused in every batch; lme4's (1 | batch/cask)."""
    ref = load_reference("pastes_nested")
    data = load_data("Pastes")
    X, y = data[["batch", "cask"]], data["strength"]
    nested = MixedLMRegressor(group=["batch", "cask"], nested=True).fit(X, y)
    assert nested.n_groups_ == ref["ngroups"]
    assert_matches_lme4(nested, ref, y, fitted=nested.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        crossed = MixedLMRegressor(group=["batch", "cask"]).fit(X, y)
    assert crossed.n_groups_ == {"batch": 10, "cask": 3}  # what nested=True prevents


# ------------------------------------------------------ warnings at the user's line
def test_warnings_point_at_the_users_line():
    data = load_data("Dyestuff2")
    with pytest.warns(SingularFitWarning) as record:
        cross_val_score(MixedLMRegressor(group="Batch"), data[["Batch"]], data["Yield"],
                        cv=GroupKFold(3), groups=data["Batch"])
    assert {pathlib.Path(w.filename).resolve() for w in record} == {pathlib.Path(__file__).resolve()}


# ------------------------------------------------------------------ missing values
def _exam_with_missing(ref):
    data = load_data("Exam")
    data.loc[np.asarray(ref["na_standLRT"]) - 1, "standLRT"] = np.nan
    data.loc[np.asarray(ref["na_normexam"]) - 1, "normexam"] = np.nan
    data.loc[ref["na_schavg"] - 1, "schavg"] = np.nan  # not a variable of the model
    return data


def _missing_reference():
    return json.loads((HERE / "reference" / "docs" / "exam_missing.json").read_text())


def test_lmer_omits_missing_rows_as_lme4():
    ref = _missing_reference()
    data = _exam_with_missing(ref)
    fit = lmer(ref["formula"], data=data)
    np.testing.assert_array_equal(fit.na_dropped_, np.asarray(ref["na_action_rows"]) - 1)
    assert fit.result_.n_obs == ref["nobs"] and len(fit.fitted_) == ref["nobs"]
    np.testing.assert_allclose(fit.fixed_effects_.to_numpy(), list(ref["fixef"].values()),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(fit.fixed_effects_se_.to_numpy(), list(ref["fixef_se"].values()),
                               rtol=1e-4)
    np.testing.assert_allclose(fit.sigma_, ref["sigma"], rtol=1e-4)
    np.testing.assert_allclose(fit.reml_criterion_, ref["REMLcrit"], atol=2e-3)
    text = str(fit.summary())
    assert "Number of obs: 4037, groups:  school, 65\n  (22 observations deleted due to " \
           "missingness)\n" in text
    # R's na.fail, and the estimator's default, refuse them by name.
    with pytest.raises(ValueError, match="standLRT"):
        lmer(ref["formula"], data=data, na_action="fail")
    with pytest.raises(ValueError, match="standLRT"):
        MixedLMRegressor(formula=ref["formula"]).fit(data)
    with pytest.raises(ValueError, match="na_action must be"):
        lmer(ref["formula"], data=data, na_action="exclude")


def test_estimator_omits_on_request_and_reads_only_its_columns():
    ref = _missing_reference()
    data = _exam_with_missing(ref)
    X, y = data[["standLRT", "schavg", "school"]], data["normexam"]
    # schavg (one missing value) is not a feature here: only the model's columns count.
    model = MixedLMRegressor(group="school", fixed_effects=["standLRT"], na_action="omit")
    model.fit(X, y)
    np.testing.assert_array_equal(model.na_dropped_, np.asarray(ref["na_action_rows"]) - 1)
    np.testing.assert_allclose(model.sigma_, ref["sigma"], rtol=1e-4)
    assert "(22 observations deleted due to missingness)" in str(model.summary())
    with pytest.raises(ValueError, match="standLRT"):
        MixedLMRegressor(group="school", fixed_effects=["standLRT"]).fit(X, y)
    # Arrays (the group labels outside X) and a pandas index that is not 0..n-1.
    keep = ~data["normexam"].isna()
    arrays = MixedLMRegressor(na_action="omit").fit(
        data.loc[keep, ["standLRT"]].to_numpy(), y[keep].to_numpy(),
        groups=data.loc[keep, "school"].to_numpy(),
    )
    np.testing.assert_allclose(arrays.sigma_, ref["sigma"], rtol=1e-4)
    assert len(arrays.na_dropped_) == 20
    shifted = MixedLMRegressor(group="school", fixed_effects=["standLRT"], na_action="omit")
    shifted.fit(X.set_axis(X.index + 1000), y.set_axis(y.index + 1000))
    np.testing.assert_array_equal(shifted.na_dropped_, np.asarray(ref["na_action_rows"]) + 999)
    # predict never drops rows: a missing feature is an error.
    with pytest.raises(ValueError, match="standLRT"):
        model.predict(X)


def test_nothing_dropped_prints_nothing(exam):
    fit = lmer("normexam ~ standLRT + (1 | school)", data=exam)
    assert len(fit.na_dropped_) == 0 and "missingness" not in str(fit.summary())
    assert isinstance(fit.na_dropped_, pd.Index)
