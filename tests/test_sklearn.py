"""MixedLMRegressor as a scikit-learn citizen.

scikit-learn's common checks; groups as a column of X (found by name after a
ColumnTransformer) or as ``groups=`` routed through Pipeline, cross-validation and
grid search; persistence; pandas, polars and numpy input; prior weights against lme4.
docs/sklearn.md says which routing combinations work and why the others cannot.
"""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklmixed import MixedLMRegressor, lmer
from sklmixed.datasets import load_exam

from ._lme4 import assert_matches_lme4, load_data, load_reference


# ----------------------------------------------------------- common checks
#
# One form meets scikit-learn's generic numeric arrays: a group column of X by
# position. (`MixedLMRegressor()` without any grouping factor used to be checked too,
# as ordinary least squares with a warning; it now refuses to fit, because that
# fallback is what `cross_val_score(model, X, y, groups=g)` quietly fitted:
# tests/test_newcomer.py.) With a group column the estimator declares the
#   `categorical` input tag (the column holds labels), and the checks then feed
#   integer-valued X, so column 0 has a few levels each seen several times and a
#   random-intercept model is fitted for real. (Random slopes are not: on the checks'
#   10-row data sets, levels x random effects per level reach the number of rows,
#   which lme4 refuses as unidentifiable, and so does the estimator.)
# The formula form needs a DataFrame holding the formula's variables and the checks
# pass arrays only, so it (and the DataFrame forms) get the equivalent checks below
# (`FRAME_FORMS`).

@parametrize_with_checks([MixedLMRegressor(group=0)])
@pytest.mark.filterwarnings("ignore:fixed-effect model matrix is rank deficient:UserWarning")
@pytest.mark.filterwarnings("ignore::sklmixed.SingularFitWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::sklmixed.exceptions.UnboundedLikelihoodWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def exam():
    frame = load_exam().frame
    frame["school"] = "s" + frame["school"].astype(str)  # string labels, as users have
    return frame


FEATURES = ["standLRT", "schavg", "sex"]


def _preprocess():
    """Scaling and one-hot encoding; every other column (the group) passes through by name."""
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["standLRT", "schavg"]),
            ("cat", OneHotEncoder(drop="if_binary", sparse_output=False), ["sex"]),
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def _mixed_pipeline(**params):
    params = {"group": "school", "random_effects": ["standLRT"], **params}
    return make_pipeline(_preprocess(), MixedLMRegressor(**params))


def _routed_pipeline(**params):
    """Groups outside X: requested for fit, predict and score (metadata routing)."""
    model = (
        MixedLMRegressor(random_effects=["standLRT"], **params)
        .set_fit_request(groups=True)
        .set_predict_request(groups=True)
        .set_score_request(groups=True)
    )
    return make_pipeline(_preprocess(), model)


def _linear_pipeline():
    return make_pipeline(_preprocess().set_params(remainder="drop"), LinearRegression())


# -------------------------------------------- equivalent checks on DataFrames
#
# form name -> (estimator, X columns, group labels passed as groups=?)
FRAME_FORMS = {
    "group-column": (
        lambda: MixedLMRegressor(group="school", random_effects=["standLRT"]),
        ["standLRT", "schavg", "school"],
        False,
    ),
    "groups-outside-X": (
        lambda: MixedLMRegressor(random_effects=["standLRT"]),
        ["standLRT", "schavg"],
        True,
    ),
    "formula": (
        lambda: MixedLMRegressor(formula="standLRT + schavg + (1 + standLRT | school)"),
        ["standLRT", "schavg", "school"],
        False,
    ),
}


def _frame_form(name, exam):
    make, columns, outside = FRAME_FORMS[name]
    X = exam[columns]
    kwargs = {"groups": exam["school"]} if outside else {}
    return make(), X, exam["normexam"], kwargs


frame_forms = pytest.mark.parametrize(
    "form",
    [
        "group-column",
        "groups-outside-X",
        "formula",
    ],
)


@frame_forms
def test_frame_form_clone_and_params(form, exam):
    model, X, y, kw = _frame_form(form, exam)
    params = model.get_params()
    fitted = model.fit(X, y, **kw)
    assert fitted is model
    assert model.get_params() == params  # fit leaves the constructor parameters alone
    copy = clone(model)
    assert copy.get_params() == params
    assert not hasattr(copy, "result_")
    copy.set_params(method="ML", tol=1e-9)
    assert copy.get_params()["method"] == "ML" and model.method == "REML"
    copy.fit(X, y, **kw)
    assert copy.reml_criterion_ is None and model.reml_criterion_ is not None
    assert copy.log_likelihood_ != model.log_likelihood_


@frame_forms
def test_frame_form_does_not_modify_input(form, exam):
    model, X, y, kw = _frame_form(form, exam)
    X_before, y_before = X.copy(), y.copy()
    groups_before = {k: v.copy() for k, v in kw.items()}
    weights = np.linspace(1.0, 2.0, len(y))
    weights_before = weights.copy()
    model.fit(X, y, sample_weight=weights, **kw)
    model.predict(X, **kw)
    model.score(X, y, **kw)
    pd.testing.assert_frame_equal(X, X_before)
    pd.testing.assert_series_equal(y, y_before)
    for key, value in kw.items():
        pd.testing.assert_series_equal(value, groups_before[key])
    np.testing.assert_array_equal(weights, weights_before)


@frame_forms
def test_frame_form_fit_is_idempotent(form, exam):
    model, X, y, kw = _frame_form(form, exam)
    first = model.fit(X, y, **kw).predict(X, **kw)
    theta = model.theta_.copy()
    second = model.fit(X, y, **kw).predict(X, **kw)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(theta, model.theta_)


@frame_forms
def test_frame_form_pickle_and_joblib_round_trips(form, exam, tmp_path):
    model, X, y, kw = _frame_form(form, exam)
    model.fit(X, y, **kw)
    expected = model.predict(X, **kw)
    restored = pickle.loads(pickle.dumps(model))
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    for other in (restored, loaded):
        np.testing.assert_array_equal(other.predict(X, **kw), expected)
        pd.testing.assert_series_equal(other.fixed_effects_, model.fixed_effects_)
        assert other.score(X, y, **kw) == model.score(X, y, **kw)


@frame_forms
def test_frame_form_feature_names(form, exam):
    model, X, y, kw = _frame_form(form, exam)
    model.fit(X, y, **kw)
    assert model.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)
    renamed = X.rename(columns={"schavg": "school_average"})
    if form == "formula":
        # New data need only the formula's variables, found by name.
        with pytest.raises(ValueError, match="not columns of the data"):
            model.predict(renamed)
        np.testing.assert_array_equal(model.predict(X[X.columns[::-1]]), model.predict(X))
    else:
        with pytest.raises(ValueError, match="feature names"):
            model.predict(renamed, **kw)


@frame_forms
def test_frame_form_predictions_follow_rows(form, exam):
    """Sample-order and subset invariance: each row's prediction is its own."""
    model, X, y, kw = _frame_form(form, exam)
    model.fit(X, y, **kw)
    full = model.predict(X, **kw)
    order = np.random.default_rng(0).permutation(len(X))
    kw_shuffled = {k: v.iloc[order] for k, v in kw.items()}
    np.testing.assert_allclose(model.predict(X.iloc[order], **kw_shuffled), full[order], rtol=1e-12)
    subset = order[:50]
    kw_subset = {k: v.iloc[subset] for k, v in kw.items()}
    np.testing.assert_allclose(model.predict(X.iloc[subset], **kw_subset), full[subset], rtol=1e-12)
    assert model.score(X, y, **kw) == pytest.approx(r2_score(y, full), rel=1e-12)


def test_formula_form_matches_group_column_form(exam):
    formula_model, X, y, _ = _frame_form("formula", exam)
    column_model, X_col, _, _ = _frame_form("group-column", exam)
    formula_model.fit(X, y)
    column_model.fit(X_col, y)
    np.testing.assert_allclose(formula_model.sigma_, column_model.sigma_, rtol=1e-6)
    np.testing.assert_allclose(
        formula_model.predict(X), column_model.predict(X_col), rtol=0, atol=1e-6
    )


# ------------------------------------------------ tags, repr, default form
def test_sklearn_tags():
    assert is_regressor(MixedLMRegressor())
    tags = get_tags(MixedLMRegressor())
    assert tags.estimator_type == "regressor"
    assert tags.target_tags.required
    assert not tags.input_tags.allow_nan and not tags.input_tags.sparse
    assert not tags.input_tags.categorical and not tags.input_tags.string
    assert get_tags(MixedLMRegressor(group="school")).input_tags.categorical
    formula_tags = get_tags(MixedLMRegressor(formula="x + (1 | g)")).input_tags
    assert formula_tags.categorical and formula_tags.string


def test_html_repr_is_informative(exam):
    model = MixedLMRegressor(group="school", random_effects=["standLRT"], method="ML")
    unfitted = model._repr_html_()
    assert "MixedLMRegressor" in unfitted and "school" in unfitted and "ML" in unfitted
    model.fit(exam[["standLRT", "school"]], exam["normexam"])
    fitted = model._repr_html_()
    assert "Fitted" in fitted
    for attribute in ("fixed_effects_", "sigma_", "variance_components_", "n_groups_"):
        assert attribute in fitted


def test_no_grouping_factor_is_an_error(exam):
    # Formerly ordinary least squares with a warning (what a grouped cross-validation
    # with the groups given to the splitter only quietly fitted); now refused.
    X, y = exam[["standLRT", "schavg"]], exam["normexam"]
    with pytest.raises(ValueError, match="no grouping factor"):
        MixedLMRegressor().fit(X, y)


# ---------------------------------------------- pipelines and cross-validation
both_splitters = pytest.mark.parametrize(
    "cv", [GroupKFold(5), KFold(5, shuffle=True, random_state=0)], ids=["GroupKFold", "KFold"]
)


@both_splitters
def test_pipeline_with_scaling_and_one_hot_in_cross_val_score(cv, exam):
    X, y = exam[FEATURES + ["school"]], exam["normexam"]
    groups = {"groups": exam["school"]} if isinstance(cv, GroupKFold) else {}
    scores = cross_val_score(_mixed_pipeline(), X, y, cv=cv, **groups)
    assert np.isfinite(scores).all() and scores.min() > 0.2
    # Groups in X work with any scorer: predict needs nothing but X.
    mse = cross_val_score(
        _mixed_pipeline(), X, y, cv=cv, scoring="neg_mean_squared_error", **groups
    )
    assert np.isfinite(mse).all() and (mse < 0).all()


def test_group_column_is_found_by_name_after_column_transformer(exam):
    X, y = exam[["school"] + FEATURES], exam["normexam"]  # the group column first
    pipe = _mixed_pipeline().fit(X, y)
    model = pipe[-1]
    assert model.feature_names_in_.tolist() == ["standLRT", "schavg", "sex_M", "school"]
    assert model.n_groups_ == {"school": 65}
    assert model.fixed_effects_.index.tolist() == ["(Intercept)", "standLRT", "schavg", "sex_M"]
    # The same model fitted on the transformed frame directly.
    direct = MixedLMRegressor(group="school", random_effects=["standLRT"])
    direct.fit(pipe[0].transform(X), y)
    np.testing.assert_array_equal(pipe.predict(X), direct.predict(pipe[0].transform(X)))


def test_exam_cross_validated_r2_against_linear_regression(exam):
    """Known schools: the school effects help. New schools: no worse than OLS."""
    X, y, schools = exam[FEATURES + ["school"]], exam["normexam"], exam["school"]
    kfold = KFold(5, shuffle=True, random_state=0)
    mixed = cross_val_score(_mixed_pipeline(), X, y, cv=kfold).mean()
    linear = cross_val_score(_linear_pipeline(), X, y, cv=kfold).mean()
    assert mixed > linear
    group_kfold = GroupKFold(5)
    mixed = cross_val_score(_mixed_pipeline(), X, y, cv=group_kfold, groups=schools).mean()
    linear = cross_val_score(_linear_pipeline(), X, y, cv=group_kfold, groups=schools).mean()
    assert mixed >= linear - 0.01


def test_grid_search_over_method_and_random_effects(exam):
    X, y = exam[FEATURES + ["school"]], exam["normexam"]
    grid = {
        "mixedlmregressor__method": ["REML", "ML"],
        "mixedlmregressor__random_effects": [None, ["standLRT"]],
        "mixedlmregressor__covariance": ["unstructured", "diagonal"],
    }
    search = GridSearchCV(_mixed_pipeline(), grid, cv=KFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_[-1]
    for key, value in search.best_params_.items():
        assert getattr(best, key.split("__")[1]) == value
    # Random slopes fit these schools better than intercepts alone.
    assert search.best_params_["mixedlmregressor__random_effects"] == ["standLRT"]


def test_grid_search_over_formula(exam):
    X, y = exam[["standLRT", "schavg", "school"]], exam["normexam"]
    grid = {
        "formula": ["standLRT + (1 | school)", "standLRT + schavg + (1 + standLRT | school)"],
        "method": ["REML", "ML"],
    }
    search = GridSearchCV(MixedLMRegressor(), grid, cv=KFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.formula in grid["formula"]


# -------------------------------------------------------- metadata routing
def test_routed_groups_through_pipeline(exam):
    X, y, schools = exam[FEATURES], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _routed_pipeline().fit(X, y, groups=schools)
        predicted = pipe.predict(X, groups=schools)
        score = pipe.score(X, y, groups=schools)
    model = pipe[-1]
    assert model.n_groups_ == {"school": 65}
    direct = MixedLMRegressor(random_effects=["standLRT"])
    direct.fit(pipe[0].transform(X), y, groups=schools)
    np.testing.assert_array_equal(predicted, direct.predict(pipe[0].transform(X), groups=schools))
    assert score == pytest.approx(r2_score(y, predicted), rel=1e-12)


def test_routing_requests_groups_only_where_the_model_needs_them(exam):
    """Default requests: groups outside X are requested by fit, predict and score;
    with a group column (or a formula) they are declined, so a splitter's routed
    groups pass the model by. (Formerly every request had to be set by hand, and a
    model with its groups in X raised UnsetMetadataPassedError under routing.)"""
    def requests(model):
        routing = model.get_metadata_routing()
        return [getattr(routing, m).requests["groups"] for m in ("fit", "predict", "score")]

    assert requests(MixedLMRegressor()) == [True, True, True]
    assert requests(MixedLMRegressor(group="school")) == [False, False, False]
    assert requests(MixedLMRegressor(formula="x + (1 | g)")) == [False, False, False]
    X, y, schools = exam[FEATURES], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        declined = MixedLMRegressor().set_score_request(groups=False)
        assert requests(declined) == [True, True, False]
        pipe = make_pipeline(_preprocess(), MixedLMRegressor()).fit(X, y, groups=schools)
        assert pipe[-1].n_groups_ == {"school": 65}
        assert np.isfinite(pipe.predict(X, groups=schools)).all()
        in_X = cross_validate(MixedLMRegressor(group="school"), exam[["standLRT", "school"]],
                              y, cv=GroupKFold(3), params={"groups": schools})
    assert np.isfinite(in_X["test_score"]).all()


@both_splitters
def test_routed_groups_in_cross_validate_equal_groups_in_X(cv, exam):
    """scoring=None: the estimator's score(X, y, groups=...) gets each test fold's groups."""
    X, y, schools = exam[FEATURES + ["school"]], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_validate(
            _routed_pipeline(), X[FEATURES], y, cv=cv, params={"groups": schools}
        )["test_score"]
        # Groups in X need no request; with routing on, `groups` is meant for the
        # splitter only, so the estimator says it does not want it.
        in_X = _mixed_pipeline()
        in_X[-1].set_fit_request(groups=False).set_score_request(groups=False)
        params = {"groups": schools} if isinstance(cv, GroupKFold) else {}
        column = cross_validate(in_X, X, y, cv=cv, params=params)["test_score"]
    np.testing.assert_allclose(routed, column, rtol=1e-9)


def test_named_scorers_do_not_pass_groups_to_predict(exam):
    """The documented gap: a named scorer calls predict(X) without metadata."""
    X, y, schools = exam[FEATURES], exam["normexam"], exam["school"]
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="pass the group labels"):
            cross_validate(
                _routed_pipeline(), X, y, cv=GroupKFold(3), params={"groups": schools},
                scoring="r2", error_score="raise",
            )


def test_groups_without_routing_reach_fit_but_not_score(exam):
    """Without routing, cross_validate's params go to fit only: score cannot get groups."""
    X, y, schools = exam[FEATURES], exam["normexam"], exam["school"]
    pipe = make_pipeline(_preprocess(), MixedLMRegressor())
    with pytest.raises(ValueError, match="pass the group labels"):
        cross_validate(
            pipe, X, y, groups=schools, cv=GroupKFold(3),
            params={"mixedlmregressor__groups": schools}, error_score="raise",
        )
    # Pipeline.fit and Pipeline.predict forward step parameters without routing.
    pipe.fit(X, y, mixedlmregressor__groups=schools)
    assert pipe[-1].n_groups_ == {"school": 65}
    assert np.isfinite(pipe.predict(X, groups=schools)).all()


def test_routed_groups_in_nested_cross_validation(exam):
    X, y, schools = exam[FEATURES + ["school"]], exam["normexam"], exam["school"]
    grid = {"mixedlmregressor__method": ["REML", "ML"]}
    with sklearn.config_context(enable_metadata_routing=True):
        inner = GridSearchCV(_routed_pipeline(), grid, cv=GroupKFold(3))
        routed = cross_validate(
            inner, X[FEATURES], y, cv=GroupKFold(3), params={"groups": schools},
            return_estimator=True,
        )
        in_X = _mixed_pipeline()
        in_X[-1].set_fit_request(groups=False).set_score_request(groups=False)
        column = cross_validate(
            GridSearchCV(in_X, grid, cv=GroupKFold(3)), X, y, cv=GroupKFold(3),
            params={"groups": schools},
        )
    assert np.isfinite(routed["test_score"]).all()
    np.testing.assert_allclose(routed["test_score"], column["test_score"], rtol=1e-9)
    # GridSearchCV.predict takes no metadata: predict through best_estimator_.
    best = routed["estimator"][0].best_estimator_
    assert np.isfinite(best.predict(X[FEATURES], groups=schools)).all()


# -------------------------------------------------------------- input types
def test_numpy_input_matches_pandas(exam):
    frame = exam[["standLRT", "schavg", "school"]]
    y = exam["normexam"]
    reference = MixedLMRegressor(group="school", random_effects=["standLRT"]).fit(frame, y)
    expected = reference.predict(frame)
    # Object array: numeric features and string labels side by side.
    array = frame.to_numpy(dtype=object)
    model = MixedLMRegressor(group=2, random_effects=[0]).fit(array, y.to_numpy())
    assert model.n_features_in_ == 3 and not hasattr(model, "feature_names_in_")
    np.testing.assert_allclose(model.predict(array), expected, rtol=1e-10)
    # Numeric features only, labels as groups=.
    numeric = frame[["standLRT", "schavg"]].to_numpy()
    model = MixedLMRegressor(random_effects=[0]).fit(numeric, y, groups=exam["school"].to_numpy())
    np.testing.assert_allclose(
        model.predict(numeric, groups=exam["school"].to_numpy()), expected, rtol=1e-10
    )


def test_polars_input_matches_pandas(exam):
    pl = pytest.importorskip("polars")
    columns = ["standLRT", "schavg", "school"]
    frame = exam[columns]
    # Built column by column: no pyarrow needed, and none used by the estimator.
    polars_X = pl.DataFrame({c: frame[c].to_numpy() for c in columns})
    polars_y = pl.Series("normexam", exam["normexam"].to_numpy())
    assert polars_X.schema["school"] == pl.String
    model = MixedLMRegressor(group="school", random_effects=["standLRT"]).fit(polars_X, polars_y)
    pandas_model = MixedLMRegressor(group="school", random_effects=["standLRT"])
    pandas_model.fit(frame, exam["normexam"])
    np.testing.assert_array_equal(model.predict(polars_X), pandas_model.predict(frame))
    assert model.feature_names_in_.tolist() == columns
    # Groups as a polars Series keep their name.
    outside = MixedLMRegressor().fit(
        polars_X.select("standLRT", "schavg"), polars_y, groups=polars_X["school"]
    )
    assert outside.n_groups_ == {"school": 65}


# ----------------------------------------------------------- unseen groups
def test_unseen_groups_get_the_fixed_effects_prediction_exactly(exam):
    held_out = exam["school"].isin(["s1", "s2", "s3"])
    train, test = exam[~held_out], exam[held_out]
    columns = ["standLRT", "schavg", "school"]
    model = MixedLMRegressor(group="school", random_effects=["standLRT"])
    model.fit(train[columns], train["normexam"])
    fixed_part = np.column_stack([np.ones(len(test)), test[["standLRT", "schavg"]]])
    population = fixed_part @ model.fixed_effects_.to_numpy()
    np.testing.assert_array_equal(model.predict(test[columns]), population)
    # The same with groups= outside X, and known schools do get their own effect.
    outside = MixedLMRegressor(random_effects=["standLRT"])
    outside.fit(train[["standLRT", "schavg"]], train["normexam"], groups=train["school"])
    np.testing.assert_array_equal(
        outside.predict(test[["standLRT", "schavg"]], groups=test["school"]), population
    )
    known = np.column_stack([np.ones(len(train)), train[["standLRT", "schavg"]]])
    assert not np.allclose(model.predict(train[columns]), known @ model.fixed_effects_.to_numpy())


# ----------------------------------------------------- prior weights (lme4)
@pytest.mark.parametrize("name", ["sleepstudy_weighted", "sleepstudy_weighted_ML"])
def test_weights_column_is_lme4_prior_weights(name):
    ref = load_reference(name)
    data = load_data("sleepstudy_weighted")
    X, y = data[["Days", "Subject", ref["weights"]]], data["Reaction"]
    model = MixedLMRegressor(
        group="Subject", random_effects=["Days"], weights=ref["weights"],
        method="REML" if ref["REML"] else "ML",
    ).fit(X, y)
    assert model.converged_
    assert list(model.fixed_effects_.index) == ["(Intercept)", "Days"]  # w is no feature
    assert_matches_lme4(model, ref, y, fitted=model.predict(X))
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(model.aic_, ref["AIC"], atol=2e-3)
    np.testing.assert_allclose(model.bic_, ref["BIC"], atol=2e-3)
    if ref["REML"]:
        np.testing.assert_allclose(model.reml_criterion_, ref["REMLcrit"], atol=2e-3)
    else:  # deviance_ML of a REML reference is that of the model refitted by ML
        np.testing.assert_allclose(model.deviance_, ref["deviance_ML"], atol=2e-3)
    # New data need not hold the weights: they are not a feature.
    np.testing.assert_array_equal(model.predict(X[["Days", "Subject"]]), model.predict(X))


def test_lmer_weights_are_prior_weights():
    ref = load_reference("sleepstudy_weighted")
    data = load_data("sleepstudy_weighted")
    by_name = lmer(ref["formula"], data, weights="w")
    by_values = lmer(ref["formula"], data.drop(columns="w"), weights=data["w"].to_numpy())
    assert_matches_lme4(by_name, ref, data["Reaction"], fitted=by_name.fitted_)
    np.testing.assert_array_equal(by_values.theta_, by_name.theta_)


def test_prior_weights_pass_through_a_pipeline():
    ref = load_reference("sleepstudy_weighted")
    data = load_data("sleepstudy_weighted")
    X, y = data[["Days", "Subject", "w"]], data["Reaction"]
    model = MixedLMRegressor(group="Subject", random_effects=["Days"], weights="w")
    pipe = make_pipeline(
        ColumnTransformer([], remainder="passthrough", verbose_feature_names_out=False)
        .set_output(transform="pandas"),
        model,
    ).fit(X, y)
    assert_matches_lme4(pipe[-1], ref, y, fitted=pipe.predict(X))


def test_routed_sample_weight_through_pipeline_is_repeating_rows():
    data = load_data("sleepstudy_weighted")
    X, y, w = data[["Days", "Subject"]], data["Reaction"], data["w"]
    repeated = data.loc[data.index.repeat(w)]
    with sklearn.config_context(enable_metadata_routing=True):
        model = MixedLMRegressor(group="Subject", random_effects=["Days"])
        model.set_fit_request(sample_weight=True, groups=False)
        pipe = make_pipeline(
            ColumnTransformer([], remainder="passthrough", verbose_feature_names_out=False)
            .set_output(transform="pandas"),
            model,
        ).fit(X, y, sample_weight=w)
    copies = MixedLMRegressor(group="Subject", random_effects=["Days"]).fit(
        repeated[["Days", "Subject"]], repeated["Reaction"]
    )
    np.testing.assert_allclose(pipe[-1].theta_, copies.theta_, rtol=1e-6)
    np.testing.assert_allclose(pipe.predict(X), copies.predict(X), rtol=1e-8)


def test_prior_weights_are_not_frequency_weights():
    """sample_weight (scikit-learn's frequency weights) is k copies of a row; lme4's
    prior weights (the weights column) are not."""
    data = load_data("sleepstudy_weighted")
    X, y, w = data[["Days", "Subject", "w"]], data["Reaction"], data["w"].to_numpy()
    repeated = data.loc[data.index.repeat(w)]
    copies = MixedLMRegressor(group="Subject", random_effects=["Days"])
    copies.fit(repeated[["Days", "Subject"]], repeated["Reaction"])
    frequency = MixedLMRegressor(group="Subject", random_effects=["Days"])
    frequency.fit(X[["Days", "Subject"]], y, sample_weight=w)
    np.testing.assert_allclose(frequency.theta_, copies.theta_, rtol=1e-6)
    np.testing.assert_allclose(frequency.sigma_, copies.sigma_, rtol=1e-8)
    assert frequency.result_.n_obs == copies.result_.n_obs == w.sum()
    prior = MixedLMRegressor(group="Subject", random_effects=["Days"], weights="w").fit(X, y)
    assert not np.allclose(prior.theta_, copies.theta_, rtol=1e-3)
    assert not np.allclose(prior.predict(X), copies.predict(X[["Days", "Subject"]]), rtol=1e-6)
    with pytest.raises(ValueError, match="zero weight"):
        MixedLMRegressor(group="Subject", weights="w").fit(X.assign(w=np.where(w == 1, 0.0, w)), y)
    # A frequency weight of 0 leaves the row out.
    kept = w != 1
    dropped = MixedLMRegressor(group="Subject").fit(X[["Days", "Subject"]], y,
                                                    sample_weight=kept.astype(float))
    subset = MixedLMRegressor(group="Subject").fit(X.loc[kept, ["Days", "Subject"]], y[kept])
    np.testing.assert_allclose(dropped.theta_, subset.theta_, rtol=1e-6)
