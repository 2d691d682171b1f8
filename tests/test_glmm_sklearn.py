"""MixedLogisticRegression and MixedPoissonRegressor as scikit-learn citizens, and their
numbers against lme4's glmer (tests/reference/glmm, README there) and against
sklmixed.glmer on the same data.

Tolerances are those of the project's glmer parity tool (../shared/tools/glmer_parity.py):
log-likelihood no worse than lme4's by 1e-3; fixed effects 1e-3 relative (floor 1e-2);
their standard errors 2e-2 relative (lme4's come from a finite-difference Hessian);
variance components 5e-3 of the largest; fitted means 1e-3 of their sd.
"""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.metrics import d2_tweedie_score, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklmixed import MixedLogisticRegression, MixedPoissonRegressor, glmer
from sklmixed.datasets import load_cbpp, load_contraception, load_grouseticks

from ._lme4 import DATA, REFERENCE

# Districts with only failures, broods with only zero counts: said once per fit.
pytestmark = pytest.mark.filterwarnings("ignore:Grouping factor .* levels have only")

TOL = {"varcorr": 5e-3, "fixef": 1e-3, "fixef_se": 2e-2, "fitted": 1e-3, "loglik": 1e-3}


def reference(name):
    return json.loads((REFERENCE / "glmm" / f"{name}.json").read_text())


def reference_data(ref):
    """The CSV a reference was fitted on, its factors Categoricals in R's order."""
    factors = ref["factors"]
    data = pd.read_csv(DATA / f"{ref['dataset']}.csv", dtype={c: str for c in factors})
    for column, levels in factors.items():
        if column in data:
            data[column] = pd.Categorical(data[column], categories=[str(v) for v in levels])
    return data


def assert_matches_lme4(model, ref, fitted=None, loglik_constant=0.0, check_se=True):
    """The estimator's fit against lme4's, at the parity tool's tolerances.

    ``loglik_constant`` is added to our log-likelihood where the data are an exact
    re-expression of lme4's (Bernoulli rows for binomial counts differ by the log
    binomial coefficients only)."""
    ours = np.sort(model.variance_components_["vcov"].to_numpy(float))
    theirs = np.sort([row["vcov"] for row in ref["varcorr"]])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL["varcorr"] * np.abs(theirs).max())
    names = list(ref["fixef"])
    lme4 = np.array([ref["fixef"][k] for k in names])
    # Relative error of each estimate, its scale floored at 1e-2 (the parity tool's).
    error = np.abs(model.fixed_effects_[names].to_numpy() - lme4) / np.maximum(np.abs(lme4), 1e-2)
    assert error.max() <= TOL["fixef"], dict(zip(names, error))
    if check_se:
        se = np.array([ref["fixef_se"][k] for k in names])
        np.testing.assert_allclose(
            model.fixed_effects_se_[names].to_numpy(), se, rtol=TOL["fixef_se"]
        )
    if ref["nAGQ"] <= 1:
        assert model.log_likelihood_ + loglik_constant >= ref["logLik"] - TOL["loglik"]
        assert model.log_likelihood_ + loglik_constant == pytest.approx(ref["logLik"], abs=0.05)
    if fitted is not None:
        lme4_fitted = np.asarray(ref["fitted"], float)
        np.testing.assert_allclose(
            fitted, lme4_fitted, rtol=0, atol=TOL["fitted"] * np.std(lme4_fitted)
        )


# ------------------------------------------------------------------ common checks
#
# scikit-learn's generic data are arrays: the group is column 0 (the `categorical`
# tag makes the checks feed integer-valued X, so it has a few levels, each seen
# several times). Checks that cannot hold for a mixed model are listed with why.
_EXPECTED = {
    "MixedLogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the check's data are perfectly separated by the features: the likelihood has "
            "no maximum and the estimates (log-odds in the thousands) are where the "
            "optimizer stops, so two fits of the same likelihood need not agree; "
            "test_cbpp_as_weighted_bernoulli_rows_matches_lme4 and "
            "test_poisson_sample_weight_repeats_rows check sample_weight on data with an "
            "optimum"
        ),
    },
    "MixedPoissonRegressor": {},
}


def _expected_failures(estimator):
    return _EXPECTED[type(estimator).__name__]


@parametrize_with_checks(
    [MixedLogisticRegression(group=0), MixedPoissonRegressor(group=0)],
    expected_failed_checks=_expected_failures,
)
@pytest.mark.filterwarnings("ignore::sklmixed.SingularFitWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# -------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def contraception():
    data = load_contraception().frame.copy()
    data["urbanY"] = (data["urban"] == "Y").astype(float)
    return data


@pytest.fixture(scope="module")
def contraception_fit(contraception):
    """The classifier with a random slope on the data of contraception_rs_factor."""
    model = MixedLogisticRegression(group="district", random_effects=["urbanY"])
    return model.fit(contraception[["age", "urbanY", "district"]], contraception["use"])


def bernoulli_cbpp():
    """cbpp as 0/1 rows with frequency weights: each herd and period is two rows, the
    cases (y = 1, weight = incidence) and the others (y = 0, weight = size -
    incidence). The likelihood is lme4's binomial one less the log binomial
    coefficients, which the returned constant adds back."""
    cbpp = load_cbpp().frame
    rows = pd.concat([cbpp.assign(y=1, w=cbpp["incidence"]),
                      cbpp.assign(y=0, w=cbpp["size"] - cbpp["incidence"])])
    rows = rows[rows["w"] > 0].reset_index(drop=True)
    n, k = cbpp["size"].to_numpy(float), cbpp["incidence"].to_numpy(float)
    constant = float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))
    return rows, constant


# ------------------------------------------------------------------ lme4 parity
def test_contraception_random_slope_matches_lme4(contraception_fit):
    ref = reference("contraception_rs_factor")
    model = contraception_fit
    assert list(model.fixed_effects_.index) == list(ref["fixef"])
    assert_matches_lme4(model, ref, fitted=model.fitted_)
    assert model.classes_.tolist() == ["N", "Y"]  # R's first level is the failure
    assert model.n_groups_ == {"district": 60}


def test_contraception_formula_form_matches_lme4(contraception):
    ref = reference("contraception_slope")
    model = MixedLogisticRegression(formula=ref["formula"]).fit(contraception)
    assert_matches_lme4(model, ref, fitted=model.fitted_)
    np.testing.assert_allclose(
        model.predict_proba(contraception)[:, 1], ref["fitted"], atol=1e-3 * np.std(ref["fitted"])
    )


@pytest.mark.parametrize("labels", ["factor", "01", "logical"])
def test_contraception_response_forms_match_lme4(labels):
    ref = reference(f"contraception_rs_{labels}")
    data = reference_data(ref)
    response = ref["formula"].split(" ~")[0]
    model = MixedLogisticRegression(formula=ref["formula"]).fit(data)
    assert_matches_lme4(model, ref)
    assert len(model.classes_) == 2
    assert np.array_equal(model.predict(data[:5]), model.classes_[(model.fitted_[:5] > 0.5) * 1])
    assert set(model.classes_.tolist()) == set(pd.unique(data[response]).tolist())


@pytest.mark.parametrize("nagq, name", [(1, "cbpp_laplace"), (25, "cbpp_agq25")])
def test_cbpp_as_weighted_bernoulli_rows_matches_lme4(nagq, name):
    rows, constant = bernoulli_cbpp()
    period = pd.get_dummies(rows["period"], prefix="period", prefix_sep="", drop_first=True)
    X = period.astype(float).join(rows["herd"])
    model = MixedLogisticRegression(group="herd", nAGQ=nagq)
    model.fit(X, rows["y"], sample_weight=rows["w"])
    assert_matches_lme4(model, reference(name), loglik_constant=constant)


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_cbpp_links_match_lme4(link):
    rows, constant = bernoulli_cbpp()
    model = MixedLogisticRegression(formula="y ~ period + (1 | herd)", link=link)
    model.fit(rows, sample_weight=rows["w"])
    assert_matches_lme4(model, reference(f"cbpp_{link}"), loglik_constant=constant)


def test_grouseticks_poisson_matches_lme4():
    ref = reference("grouseticks_brood_centered_laplace")
    data = reference_data(ref)
    model = MixedPoissonRegressor(formula=ref["formula"]).fit(data)
    assert_matches_lme4(model, ref, fitted=model.fitted_)
    np.testing.assert_allclose(model.predict(data), model.fitted_, rtol=1e-10)


def test_exposure_column_is_lme4s_log_offset():
    ref = reference("poisson_offset_formula")
    data = reference_data(ref)
    X = pd.get_dummies(data[["x", "f"]], drop_first=True, dtype=float).join(data[["g", "exposure"]])
    X.columns = [c.replace("f_", "f") for c in X.columns]
    model = MixedPoissonRegressor(group="g", exposure="exposure").fit(X, data["y"])
    assert_matches_lme4(model, ref, fitted=model.fitted_)
    offset = MixedPoissonRegressor(group="g", offset="log_exposure").fit(
        X.assign(log_exposure=np.log(X["exposure"])).drop(columns="exposure"), data["y"]
    )
    np.testing.assert_allclose(offset.fixed_effects_, model.fixed_effects_, rtol=1e-8)
    # Predictions carry the new rows' own exposure: twice the exposure, twice the count.
    doubled = X.assign(exposure=2 * X["exposure"])
    np.testing.assert_allclose(model.predict(doubled), 2 * model.predict(X), rtol=1e-12)


# ------------------------------------------------------------- glmer() equality
def test_classifier_equals_glmer(contraception):
    formula = "use ~ age + urban + (1 + urban | district)"
    fit = glmer(formula, data=contraception, family="binomial")
    model = MixedLogisticRegression(formula=formula).fit(contraception)
    np.testing.assert_allclose(model.fixed_effects_, fit.fixed_effects_, rtol=1e-10)
    np.testing.assert_allclose(model.theta_, fit.theta_, rtol=1e-10)
    assert model.log_likelihood_ == pytest.approx(fit.log_likelihood_, rel=1e-12)


def test_poisson_regressor_equals_glmer():
    ticks = load_grouseticks().frame
    formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)"
    fit = glmer(formula, data=ticks, family="poisson")
    model = MixedPoissonRegressor(formula=formula).fit(ticks)
    np.testing.assert_allclose(model.fixed_effects_, fit.fixed_effects_, rtol=1e-10)
    assert model.log_likelihood_ == pytest.approx(fit.log_likelihood_, rel=1e-12)


# ------------------------------------------------------------- labels, predict
@pytest.mark.parametrize(
    "labels, classes",
    [
        (["no", "yes"], ["no", "yes"]),
        ([-1, 1], [-1, 1]),
        ([False, True], [False, True]),
        (pd.Categorical(["yes", "no"], categories=["yes", "no"]), ["yes", "no"]),
    ],
)
def test_classes_of_any_two_labels(contraception, labels, classes):
    use = contraception["use"] == "Y"
    y = np.where(use, np.asarray(labels, dtype=object)[1], np.asarray(labels, dtype=object)[0])
    if isinstance(labels, pd.Categorical):
        y = pd.Categorical(y, categories=labels.categories)
    X = contraception[["age", "district"]]
    model = MixedLogisticRegression(group="district").fit(X, y)
    assert model.classes_.tolist() == classes
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The second column is the probability of classes_[1]; predict agrees with it.
    success = np.asarray(y, dtype=object) == model.classes_[1]
    assert roc_auc_score(success, proba[:, 1]) > 0.6
    assert np.array_equal(model.predict(X), model.classes_[(proba[:, 1] > 0.5).astype(int)])
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-10)
    assert model.score(X, y) == pytest.approx(np.mean(model.predict(X) == np.asarray(y)))


def test_more_than_two_classes_is_an_error(contraception):
    y = contraception["livch"]
    with pytest.raises(ValueError, match="Only binary classification.*4 class"):
        MixedLogisticRegression(group="district").fit(contraception[["age", "district"]], y)


def test_random_effects_choice_in_predict(contraception_fit, contraception):
    X = contraception[["age", "urbanY", "district"]]
    model = contraception_fit
    everything = model.decision_function(X)
    population = model.decision_function(X, random_effects="none")
    beta = model.fixed_effects_
    np.testing.assert_allclose(
        population, beta["(Intercept)"] + X[["age", "urbanY"]].to_numpy() @ beta[["age", "urbanY"]],
        rtol=1e-12,
    )
    np.testing.assert_allclose(model.decision_function(X, random_effects=["district"]), everything)
    np.testing.assert_allclose(model.linear_predictor(X), everything)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], model.fitted_, rtol=1e-8)
    # A district never seen gets the population-level prediction.
    new = X.assign(district="new district")
    np.testing.assert_allclose(model.decision_function(new), population)


def test_decision_function_is_the_log_odds_for_every_link():
    rows, _ = bernoulli_cbpp()
    model = MixedLogisticRegression(formula="y ~ period + (1 | herd)", link="cloglog")
    model.fit(rows, sample_weight=rows["w"])
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(model.decision_function(rows), np.log(p / (1 - p)), rtol=1e-10)
    np.testing.assert_allclose(p, 1 - np.exp(-np.exp(model.linear_predictor(rows))), rtol=1e-10)


def test_poisson_score_is_d2(contraception):
    ticks = load_grouseticks().frame
    model = MixedPoissonRegressor(formula="TICKS ~ YEAR + cHEIGHT + (1 | BROOD)").fit(ticks)
    expected = d2_tweedie_score(ticks["TICKS"], model.predict(ticks), power=1)
    assert model.score(ticks, ticks["TICKS"]) == pytest.approx(expected)
    assert 0 < expected < 1


def test_poisson_sample_weight_repeats_rows():
    ticks = load_grouseticks().frame
    formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)"
    w = np.where(np.arange(len(ticks)) % 3 == 0, 2.0, 1.0)
    weighted = MixedPoissonRegressor(formula=formula).fit(ticks, sample_weight=w)
    repeated = MixedPoissonRegressor(formula=formula).fit(
        ticks.loc[ticks.index.repeat(w.astype(int))]
    )
    # The same likelihood: equal at the optimum, and two searches (tol 1e-6 on θ)
    # land on the same estimates within the parity tolerances.
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(weighted.fixed_effects_, repeated.fixed_effects_, rtol=TOL["fixef"])
    np.testing.assert_allclose(weighted.theta_, repeated.theta_, rtol=TOL["varcorr"])


def test_fitted_attributes_and_summary(contraception_fit):
    model = contraception_fit
    for name in ("fixed_effects_", "fixed_effects_se_", "variance_components_",
                 "random_effects_", "theta_", "log_likelihood_", "deviance_", "aic_",
                 "bic_", "is_singular_", "converged_", "fitted_", "n_groups_", "levels_"):
        assert hasattr(model, name), name
    assert model.converged_ and not model.is_singular_
    assert model.aic_ == pytest.approx(-2 * model.log_likelihood_ + 2 * 6)
    assert ((model.fitted_ > 0) & (model.fitted_ < 1)).all()
    pytest.importorskip("sklmixed.report.summary_glmm")  # glmm-core's glmer summary
    text = str(model.summary())
    assert "Generalized linear mixed model" in text and "binomial" in text and "logit" in text


# ------------------------------------------------------- scikit-learn integration
def test_pipeline_with_column_transformer_in_grouped_cv(contraception):
    preprocess = ColumnTransformer(
        [("num", StandardScaler(), ["age"]),
         ("cat", OneHotEncoder(drop="first", sparse_output=False), ["livch", "urban"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    pipeline = make_pipeline(preprocess, MixedLogisticRegression(group="district"))
    X, y = contraception[["age", "livch", "urban", "district"]], contraception["use"]
    cv = GroupKFold(n_splits=3)
    auc = cross_val_score(pipeline, X, y, groups=contraception["district"], cv=cv,
                          scoring="roc_auc")
    loss = cross_val_score(pipeline, X, y, groups=contraception["district"], cv=cv,
                           scoring="neg_log_loss")
    assert auc.shape == (3,) and (auc > 0.6).all()
    assert (loss < 0).all() and (loss > -0.7).all()
    # Held-out districts are unseen levels: the population-level probability.
    fitted = clone(pipeline).fit(X, y)
    assert 0 < log_loss(y, fitted.predict_proba(X)) < -loss.mean()


def test_grid_search_over_link_and_random_effects(contraception):
    X, y = contraception[["age", "urbanY", "district"]], contraception["use"]
    grid = GridSearchCV(
        MixedLogisticRegression(group="district"),
        {"link": ["logit", "probit"], "random_effects": [None, ["urbanY"]]},
        cv=GroupKFold(n_splits=3),
        scoring="neg_log_loss",
    )
    grid.fit(X, y, groups=contraception["district"])
    assert set(grid.best_params_) == {"link", "random_effects"}
    assert grid.best_estimator_.classes_.tolist() == ["N", "Y"]


def test_calibrated_classifier(contraception):
    X, y = contraception[["age", "urbanY", "district"]], contraception["use"]
    # Shuffled folds: every district is seen in training (the rows are sorted by
    # district, so unshuffled folds would hold out whole districts).
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    calibrated = CalibratedClassifierCV(MixedLogisticRegression(group="district"), cv=cv)
    calibrated.fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert calibrated.classes_.tolist() == ["N", "Y"]
    assert roc_auc_score(y == "Y", proba[:, 1]) > 0.6


@pytest.mark.parametrize("make", [
    lambda d: MixedLogisticRegression(group="district").fit(d[["age", "district"]], d["use"]),
    lambda d: MixedPoissonRegressor(formula="TICKS ~ YEAR + cHEIGHT + (1 | BROOD)").fit(
        load_grouseticks().frame
    ),
])
def test_pickle_round_trip(contraception, make):
    model = make(contraception)
    again = pickle.loads(pickle.dumps(model))
    X = contraception[["age", "district"]] if hasattr(model, "classes_") else load_grouseticks().frame
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    pd.testing.assert_series_equal(again.fixed_effects_, model.fixed_effects_)


def test_inputs_are_not_modified(contraception):
    X = contraception[["age", "urbanY", "district"]].copy()
    before = X.copy()
    MixedLogisticRegression(group="district", random_effects=["urbanY"]).fit(X, contraception["use"])
    pd.testing.assert_frame_equal(X, before)


def test_formula_and_offset_columns_clash():
    with pytest.raises(ValueError, match="offset"):
        MixedPoissonRegressor(formula="TICKS ~ 1 + (1 | BROOD)", exposure="HEIGHT").fit(
            load_grouseticks().frame
        )


def test_negative_exposure_is_refused():
    ticks = load_grouseticks().frame.assign(exposure=-1.0)
    with pytest.raises(ValueError, match="exposure"):
        MixedPoissonRegressor(group="BROOD", exposure="exposure").fit(
            ticks[["cHEIGHT", "BROOD", "exposure"]], ticks["TICKS"]
        )



# ------------------------------------------------ standard errors of predictions
def test_population_standard_errors_are_lme4s_pirls_vcov():
    """Without random effects, the linear predictor's variance is ``xᵀ V x`` with V lme4's
    ``vcov(fit, use.hessian = FALSE)`` (the final PIRLS step's (RX'RX)⁻¹)."""
    ref = reference("cbpp_proportion_weights")  # the cbpp Laplace fit, with vcov_fixef_rx
    rows, _ = bernoulli_cbpp()
    model = MixedLogisticRegression(formula="y ~ period + (1 | herd)")
    model.fit(rows, sample_weight=rows["w"])
    eta, std = model.linear_predictor(rows, random_effects="none", return_std=True)
    X = np.column_stack([np.ones(len(rows))] + [(rows["period"] == k).to_numpy(float)
                                                for k in ("2", "3", "4")])
    lme4 = np.sqrt(np.einsum("ij,jk,ik->i", X, np.asarray(ref["vcov_fixef_rx"]), X))
    np.testing.assert_allclose(std, lme4, rtol=TOL["fixef"])
    np.testing.assert_allclose(eta, model.linear_predictor(rows, random_effects="none"))


def test_conditional_standard_errors_from_the_dense_pirls_system():
    """With the herd effects, ``aᵀ C⁻¹ a`` of the dense penalized weighted system
    ``C = [[ΛZᵀWZΛ + I, ΛZᵀWX], [XᵀWZΛ, XᵀWX]]`` at the fitted θ and means (W the
    logit's working weights), written out here without the blocked factor."""
    rows, _ = bernoulli_cbpp()
    model = MixedLogisticRegression(formula="y ~ period + (1 | herd)")
    model.fit(rows, sample_weight=rows["w"])
    _, std = model.linear_predictor(rows, return_std=True)
    X = np.column_stack([np.ones(len(rows))] + [(rows["period"] == k).to_numpy(float)
                                                for k in ("2", "3", "4")])
    Z = pd.get_dummies(rows["herd"]).to_numpy(float) * np.asarray(model.theta_).item()
    mu = model.fitted_
    w = rows["w"].to_numpy(float) * mu * (1 - mu)
    A = np.hstack([Z, X])
    C = A.T @ (w[:, None] * A)
    C[: Z.shape[1], : Z.shape[1]] += np.eye(Z.shape[1])
    dense = np.sqrt(np.einsum("ij,ij->i", A, np.linalg.solve(C, A.T).T))
    np.testing.assert_allclose(std, dense, rtol=1e-4)
    # Intervals: the link-scale interval mapped through the logistic function.
    lower, upper = model.predict_interval(rows, level=0.9).T
    p = model.predict_proba(rows)[:, 1]
    assert ((lower < p) & (p < upper)).all()
    eta = model.linear_predictor(rows)
    np.testing.assert_allclose(lower, 1 / (1 + np.exp(-(eta - 1.6448536269514722 * std))))


def test_unseen_level_standard_error_adds_the_prior_variance():
    ticks = load_grouseticks().frame
    model = MixedPoissonRegressor(formula="TICKS ~ YEAR + cHEIGHT + (1 | BROOD)").fit(ticks)
    new = ticks.head(5).assign(BROOD=pd.Categorical(["new"] * 5))
    _, unseen = model.linear_predictor(new, return_std=True)
    _, population = model.linear_predictor(new, random_effects="none", return_std=True)
    variance = model.variance_components_["vcov"].iloc[0]
    np.testing.assert_allclose(unseen**2, population**2 + variance, rtol=1e-10)
    interval = model.predict_interval(new)
    assert (interval[:, 0] < model.predict(new)).all() and (model.predict(new) < interval[:, 1]).all()
