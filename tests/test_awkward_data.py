"""Awkward but valid data fit correctly: expected answers are lme4's where lme4 fits the
data (tests/reference/awkward/*.json, written by make_awkward.R from
tests/data/awkward/*.csv), otherwise an exact transformation of an lme4 fit.
"""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklmixed import MixedLMRegressor, SingularFitWarning

from ._lme4 import DATA, REFERENCE, assert_matches_lme4, load_data, load_reference

AWKWARD_DATA = DATA / "awkward"
AWKWARD_REFERENCE = REFERENCE / "awkward"


def awkward_reference(name):
    return json.loads((AWKWARD_REFERENCE / f"{name}.json").read_text())


def awkward_data(name):
    return pd.read_csv(AWKWARD_DATA / f"{name}.csv")


def fit_quietly(model, *args, **kwargs):
    """Fit, recording warnings; returns (model, list of warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*args, **kwargs)
    return model, caught


def of_category(caught, category):
    return [w for w in caught if issubclass(w.category, category)]


def assert_same_optimum(model, ref, atol_loglik=1e-5):
    """lme4 reached the optimum too: the log-likelihoods agree both ways."""
    assert abs(model.log_likelihood_ - ref["logLik"]) < atol_loglik, (
        model.log_likelihood_,
        ref["logLik"],
    )


def assert_modes_match(model, ref, label_of=lambda level: level):
    """Conditional modes per level, lme4's level name mapped through ``label_of``."""
    for factor, lme4 in ref["ranef"].items():
        modes = model.random_effects_[factor]
        order = modes.index.get_indexer([label_of(lv) for lv in lme4["levels"]])
        assert (order >= 0).all(), "a level lme4 reports is missing"
        theirs = np.reshape(lme4["values"], (len(lme4["levels"]), -1))
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(modes.to_numpy()[order], theirs, atol=1e-4 * scale)


# ------------------------------------------------------- rank-deficient fixed part

ALIASED_COLUMNS = ["x1", "x2", "x3", "cA", "cB", "cC", "zero", "g"]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_aliased_fixed_columns_are_dropped_as_lme4_drops_them(method):
    ref = awkward_reference("aliased_fixed" if method == "REML" else "aliased_fixed_ML")
    assert "rank deficient so dropping 3 columns" in ref["notes"][0]
    data = awkward_data("aliased")
    with pytest.warns(UserWarning, match="rank deficient so dropping 3") as caught:
        model = MixedLMRegressor(group="g", method=method).fit(data[ALIASED_COLUMNS], data["y"])
    message = str(caught[0].message)
    for name in ref["dropped"]:
        assert repr(name) in message
    assert list(model.fixed_effects_.index) == list(ref["fixef"])
    assert list(model.result_.dropped_fixed) == ref["dropped"]
    assert model.converged_
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(data[ALIASED_COLUMNS]))
    assert_same_optimum(model, ref)
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=1e-4)


def test_dropping_aliased_columns_gives_the_fit_of_the_kept_columns():
    data = awkward_data("aliased")
    with pytest.warns(UserWarning, match="rank deficient"):
        full = MixedLMRegressor(group="g").fit(data[ALIASED_COLUMNS], data["y"])
    kept = MixedLMRegressor(group="g").fit(data[["x1", "x2", "cA", "cB", "g"]], data["y"])
    assert_matches_lme4(kept, awkward_reference("aliased_kept"), data["y"])
    np.testing.assert_allclose(full.fixed_effects_, kept.fixed_effects_, rtol=1e-9)
    np.testing.assert_allclose(full.fixed_effects_se_, kept.fixed_effects_se_, rtol=1e-9)
    np.testing.assert_allclose(full.log_likelihood_, kept.log_likelihood_, rtol=1e-12)
    np.testing.assert_allclose(full.theta_, kept.theta_, rtol=1e-9)


def test_predict_after_dropping_ignores_the_dropped_columns():
    data = awkward_data("aliased")
    with pytest.warns(UserWarning, match="rank deficient"):
        model = MixedLMRegressor(group="g").fit(data[ALIASED_COLUMNS], data["y"])
    new = data[ALIASED_COLUMNS].copy()
    reference = model.predict(new)
    # On new data the dropped columns need not obey the training relation.
    new[["x3", "cC", "zero"]] = np.random.default_rng(0).normal(size=(len(new), 3))
    np.testing.assert_array_equal(model.predict(new), reference)
    beta = model.fixed_effects_
    population = beta["(Intercept)"] + new[["x1", "x2", "cA", "cB"]] @ beta.iloc[1:]
    modes = model.random_effects_["g"]["(Intercept)"]
    np.testing.assert_allclose(reference, population + modes[new["g"]].to_numpy(), rtol=1e-12)


def test_aliased_columns_of_an_array_are_named_by_position():
    data = awkward_data("aliased")
    X = data[ALIASED_COLUMNS].to_numpy(dtype=object)
    with pytest.warns(UserWarning, match=r"dropping 3 column.*'x2', 'x5', 'x6'"):
        model = MixedLMRegressor(group=7).fit(X, data["y"])
    ref = awkward_reference("aliased_fixed")
    np.testing.assert_allclose(
        model.fixed_effects_.to_numpy(), list(ref["fixef"].values()), rtol=1e-6
    )
    np.testing.assert_allclose(model.predict(X), ref["fitted"], atol=1e-6)


def test_duplicated_feature_and_intercept_column_are_dropped():
    data = load_data("sleepstudy")
    X = data[["Days", "Subject"]].assign(Days_again=data["Days"], one=1.0)
    with pytest.warns(UserWarning, match=r"dropping 2 .*'Days_again', 'one'"):
        model = MixedLMRegressor(group="Subject", random_effects=["Days"]).fit(X, data["Reaction"])
    assert_matches_lme4(model, load_reference("sleepstudy_rs"), data["Reaction"])


# ------------------------------------------------ collinear random-effect columns


def _collinear_fit(fixed=("Days",)):
    data = awkward_data("sleepstudy_awkward")
    model = MixedLMRegressor(
        group="Subject", random_effects=["Days", "Days2"], fixed_effects=list(fixed)
    )
    return fit_quietly(model, data[["Days", "Days2", "Subject"]], data["Reaction"]) + (data,)


def test_collinear_random_effect_columns_fit_as_lme4_and_say_so():
    """(Days + Days2 | Subject) with Days2 = 2 Days.

    lme4 fits it (no boundary: isSingular is FALSE, it warns about convergence and
    unidentifiability). The likelihood only sees the covariance of (b0, b1 + 2 b2), so the
    fit is that of (Days | Subject): same log-likelihood, sigma, fixed effects, and that
    2 x 2 covariance. The 3 x 3 covariance itself is one of many: a warning names the
    collinear column.
    """
    model, caught, data = _collinear_fit()
    ref = awkward_reference("sleepstudy_collinear_re")
    twin = load_reference("sleepstudy_rs")
    collinear = [w for w in caught if "random-effect columns" in str(w.message)]
    assert len(collinear) == 1 and "'Days2'" in str(collinear[0].message)
    assert "'Subject'" in str(collinear[0].message)
    assert not of_category(caught, ConvergenceWarning)
    assert model.is_singular_ == ref["singular"]
    assert model.log_likelihood_ >= ref["logLik"] - 1e-6
    np.testing.assert_allclose(model.log_likelihood_, twin["logLik"], atol=1e-6)
    for expected in (ref, twin):
        np.testing.assert_allclose(model.sigma_, expected["sigma"], rtol=1e-4)
        np.testing.assert_allclose(
            model.fixed_effects_, list(expected["fixef"].values()), rtol=1e-6
        )
    # The identifiable covariance: A Sigma A' with A mapping (b0, b1, b2) to (b0, b1 + 2 b2).
    vc = model.variance_components_
    names = ["(Intercept)", "Days", "Days2"]
    sigma_b = np.zeros((3, 3))
    for _, row in vc[vc["group"] == "Subject"].iterrows():
        i = names.index(row["var1"])
        j = i if pd.isna(row["var2"]) else names.index(row["var2"])
        sigma_b[i, j] = sigma_b[j, i] = row["vcov"]
    A = np.array([[1.0, 0, 0], [0, 1, 2]])
    identifiable = A @ sigma_b @ A.T
    vt = {(r["var1"], r["var2"]): r["vcov"] for r in twin["varcorr"]}
    expected = np.array(
        [
            [vt[("(Intercept)", "")], vt[("(Intercept)", "Days")]],
            [vt[("(Intercept)", "Days")], vt[("Days", "")]],
        ]
    )
    np.testing.assert_allclose(identifiable, expected, atol=1e-3 * np.abs(expected).max())
    np.testing.assert_allclose(
        model.predict(data[["Days", "Days2", "Subject"]]), twin["fitted"], atol=1e-3
    )


def test_collinear_column_in_both_parts_is_dropped_from_the_fixed_part_only():
    model, caught, data = _collinear_fit(fixed=("Days", "Days2"))
    messages = " | ".join(str(w.message) for w in caught)
    assert "rank deficient so dropping 1" in messages and "random-effect columns" in messages
    assert list(model.fixed_effects_.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(
        model.log_likelihood_, load_reference("sleepstudy_rs")["logLik"], atol=1e-6
    )


# ----------------------------------------------------------- group column types


def _level_maps():
    levels = sorted(awkward_data("aliased")["g"].unique())
    code = {lv: i for i, lv in enumerate(levels)}
    mixed = [lambda k: k, lambda k: f"L{k}", lambda k: ("t", k), lambda k: k + 0.5]
    return {
        # name -> (label of lme4's level, how to build the column from the string labels)
        "str": (lambda lv: lv, lambda s: s),
        "object": (lambda lv: lv, lambda s: s.astype(object)),
        "pandas string": (lambda lv: lv, lambda s: s.astype("string")),
        "bytes": (lambda lv: lv.encode(), lambda s: s.map(str.encode).astype(object)),
        "int": (lambda lv: code[lv], lambda s: s.map(code).astype(np.int64)),
        "negative int": (lambda lv: -code[lv], lambda s: -s.map(code).astype(np.int64)),
        "uint8": (lambda lv: code[lv], lambda s: s.map(code).astype(np.uint8)),
        "float": (lambda lv: code[lv] / 4, lambda s: s.map(code) / 4),
        "Int64": (lambda lv: code[lv], lambda s: s.map(code).astype("Int64")),
        "Float64": (lambda lv: code[lv] / 2, lambda s: (s.map(code) / 2).astype("Float64")),
        "categorical": (lambda lv: lv, lambda s: pd.Categorical(s)),
        "categorical, unused and reordered categories": (
            lambda lv: lv,
            lambda s: pd.Categorical(s, categories=["unused"] + levels[::-1], ordered=True),
        ),
        "categorical of ints": (lambda lv: code[lv], lambda s: pd.Categorical(s.map(code))),
        "tuple": (
            lambda lv: ("grp", code[lv]),
            lambda s: s.map(lambda v: ("grp", code[v])).astype(object),
        ),
        "mixed types": (
            lambda lv: mixed[code[lv] % 4](code[lv]),
            lambda s: s.map(lambda v: mixed[code[v] % 4](code[v])).astype(object),
        ),
        "datetime": (
            lambda lv: pd.Timestamp("2020-01-01") + pd.Timedelta(days=code[lv]),
            lambda s: pd.Timestamp("2020-01-01") + pd.to_timedelta(s.map(code), "D"),
        ),
    }


LEVEL_MAPS = _level_maps()


@pytest.mark.parametrize("kind", sorted(LEVEL_MAPS))
@pytest.mark.parametrize("where", ["column", "groups="])
def test_group_labels_of_any_hashable_type(kind, where):
    """The same fit, whatever the labels: lme4's on the string labels."""
    label_of, build = LEVEL_MAPS[kind]
    data = awkward_data("aliased")
    labels = pd.Series(build(data["g"]), name="g")
    features = data[["x1", "x2"]]
    model = MixedLMRegressor(group="g" if where == "column" else None)
    if where == "column":
        X, kwargs = features.assign(g=labels.to_numpy() if kind != "Int64" else labels), {}
    else:
        X, kwargs = features, {"groups": labels}
    model.fit(X, data["y"], **kwargs)
    ref = awkward_reference("aliased_base")
    assert model.n_groups_ == {"g": 16}
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(X, **kwargs))
    assert_same_optimum(model, ref)
    assert_modes_match(model, ref, label_of)


@pytest.mark.parametrize("dtype", ["bool", "boolean", "object"])
def test_boolean_group_column(dtype):
    data = awkward_data("aliased")
    assert data["b"].dtype == bool
    X = data[["x1"]].assign(b=data["b"].astype(dtype))
    model = MixedLMRegressor(group="b").fit(X, data["y"])
    ref = awkward_reference("aliased_bool_group")
    assert model.n_groups_ == {"b": 2}
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(X))
    assert_modes_match(model, ref, {"FALSE": False, "TRUE": True}.get)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "uint64"])
def test_integer_group_ids_encode_as_factorize(dtype):
    """Integer labels, compact (a presence table) or spread out (hashing): codes and
    sorted levels as pandas' factorize gives them, at the extremes of the dtype too."""
    from sklmixed.design.levels import encode_levels

    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    for labels in [
        rng.integers(0, 40, 200).astype(dtype),
        np.array([info.min, info.min + 3, info.min, info.min + 1], dtype=dtype),
        np.array([info.max, info.max - 3, info.max], dtype=dtype),
        np.array([info.max, info.min, info.max], dtype=dtype),
        np.arange(6, dtype=dtype)[::-2],
    ]:
        before = labels.copy()
        codes, levels = encode_levels(labels, "g")
        expected_codes, expected_levels = pd.factorize(labels, sort=True)
        np.testing.assert_array_equal(codes, expected_codes)
        assert codes.dtype == np.intp
        pd.testing.assert_index_equal(levels, pd.Index(expected_levels))
        np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize(
    "labels",
    [
        pd.Categorical(["b", "a", "c", "a"], categories=["c", "b", "a", "z"]),  # unused "z"
        pd.Categorical([3, 1, 2, 1]),
        pd.Categorical([1.5, 2.5, 1.5]),
        pd.Categorical(pd.to_datetime(["2020-01-02", "2020-01-01"])),
        pd.Categorical(["x", "y"], categories=["y", "x"], ordered=True),
    ],
)
def test_categorical_labels_encoded_as_factorize_does(labels):
    """A Categorical's codes and used categories, in the categories' order: what
    pandas' factorize gives, without its sort."""
    from sklmixed.design.levels import encode_levels

    codes, levels = encode_levels(labels, "g")
    expected_codes, expected_levels = pd.factorize(labels, sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    assert codes.dtype == np.intp
    pd.testing.assert_index_equal(levels, pd.Index(np.asarray(expected_levels)))


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (pd.Categorical(["a", None]), "missing values"),
        (pd.Categorical([1.0, np.inf]), "infinite values"),
    ],
)
def test_categorical_labels_missing_or_infinite(labels, match):
    from sklmixed.design.levels import encode_levels

    with pytest.raises(ValueError, match=f"'g' has {match}"):
        encode_levels(labels, "g")


def test_polars_group_and_feature_columns():
    pl = pytest.importorskip("polars")
    data = awkward_data("aliased")
    X = pl.DataFrame(
        {
            "x1": data["x1"].to_numpy(),
            "x2": data["x2"].to_numpy(),
            "g": data["g"].astype(str).tolist(),
        }
    )
    model = MixedLMRegressor(group="g").fit(X, pl.Series("y", data["y"].to_numpy()))
    ref = awkward_reference("aliased_base")
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(X))


# ------------------------------------------- groups of one, very unbalanced groups


def test_groups_of_one_row_among_others():
    data = awkward_data("aliased")
    sizes = data["g"].value_counts()
    singletons = sorted(sizes.index[sizes == 1])
    assert len(singletons) == 3
    for name, params in [("aliased_base", {}), ("aliased_slope", {"random_effects": ["x1"]})]:
        ref = awkward_reference(name)
        X = data[["x1", "x2", "g"]]
        model = MixedLMRegressor(group="g", **params).fit(X, data["y"])
        assert_matches_lme4(model, ref, data["y"], fitted=model.predict(X))
        assert_same_optimum(model, ref)
        assert_modes_match(model, ref)
        # A group of one row still gets its own (shrunken) mode, and is predicted with it.
        modes = model.random_effects_["g"].loc[singletons, "(Intercept)"]
        assert (modes != 0).all()


@pytest.mark.parametrize(
    "name, params",
    [
        ("unbalanced_ri", {}),
        ("unbalanced_rs", {"random_effects": ["x"]}),
    ],
)
def test_one_group_with_ninety_percent_of_the_rows(name, params):
    data = awkward_data("unbalanced")
    assert (data["g"] == "big").mean() == 0.9
    ref = awkward_reference(name)
    model, caught = fit_quietly(MixedLMRegressor(group="g", **params), data[["x", "g"]], data["y"])
    assert not of_category(caught, ConvergenceWarning)
    assert len(of_category(caught, SingularFitWarning)) == int(ref["singular"])
    assert model.is_singular_ == ref["singular"]
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(data[["x", "g"]]))
    assert_same_optimum(model, ref)
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=1e-4, atol=1e-6)
    assert_modes_match(model, ref)


# ------------------------------------------------------------- badly scaled data


def test_response_near_1e6_and_feature_near_1e_6_as_lme4():
    """lme4 warns about the scales but fits; so do we, without a warning."""
    data = awkward_data("sleepstudy_awkward")
    ref = awkward_reference("sleepstudy_scaled_ri")
    model, caught = fit_quietly(
        MixedLMRegressor(group="Subject"), data[["Dsmall", "Subject"]], data["Rbig"]
    )
    assert not caught
    assert_matches_lme4(model, ref, data["Rbig"], fitted=model.predict(data[["Dsmall", "Subject"]]))
    assert_same_optimum(model, ref, atol_loglik=1e-4)


def test_badly_scaled_fit_is_the_rescaled_fit_transformed():
    """y' = 1e6 + y, x' = 1e-6 x: intercept + 1e6, slope x 1e6, same variances; the REML
    log-likelihood moves by -log(1e-6) (|X'V⁻¹X| scales by the square of the factor)."""
    data = awkward_data("sleepstudy_awkward")
    good = MixedLMRegressor(group="Subject").fit(data[["Days", "Subject"]], data["Reaction"])
    bad = MixedLMRegressor(group="Subject").fit(data[["Dsmall", "Subject"]], data["Rbig"])
    assert_matches_lme4(good, awkward_reference("sleepstudy_ri"), data["Reaction"])
    b0, b1 = good.fixed_effects_
    np.testing.assert_allclose(bad.fixed_effects_, [1e6 + b0, 1e6 * b1], rtol=1e-9)
    np.testing.assert_allclose(bad.theta_, good.theta_, rtol=1e-6)
    np.testing.assert_allclose(bad.sigma_, good.sigma_, rtol=1e-7)
    np.testing.assert_allclose(
        bad.log_likelihood_, good.log_likelihood_ - math.log(1e-6), atol=1e-6
    )


@pytest.mark.parametrize("method, twin", [("REML", "sleepstudy_rs"), ("ML", "sleepstudy_rs_ML")])
@pytest.mark.parametrize("scale, shift", [(1e6, 1e6), (1e-6, 0.0), (1e3, -1e9)])
def test_scaled_and_shifted_response_with_random_slopes(method, twin, scale, shift):
    """y' = shift + scale y: theta unchanged, sigma and fixed effects scale, the intercept
    shifts, variances scale by scale², logLik moves by the Jacobian -(n - p) log(scale)
    for REML, -n log(scale) for ML."""
    data = load_data("sleepstudy")
    ref = load_reference(twin)
    model, caught = fit_quietly(
        MixedLMRegressor(group="Subject", random_effects=["Days"], method=method),
        data[["Days", "Subject"]],
        shift + scale * data["Reaction"],
    )
    assert not caught
    n, p = len(data), 2
    b0, b1 = ref["fixef"].values()
    np.testing.assert_allclose(model.fixed_effects_, [shift + scale * b0, scale * b1], rtol=1e-6)
    np.testing.assert_allclose(model.sigma_, scale * ref["sigma"], rtol=1e-5)
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(
        np.sort(model.variance_components_["vcov"]),
        np.sort([scale**2 * r["vcov"] for r in ref["varcorr"]]),
        rtol=2e-3,
    )
    jacobian = (n - p if method == "REML" else n) * math.log(scale)
    np.testing.assert_allclose(model.log_likelihood_, ref["logLik"] - jacobian, atol=1e-5)


def _random_slope_on_tiny_feature():
    data = awkward_data("sleepstudy_awkward")
    model, caught = fit_quietly(
        MixedLMRegressor(group="Subject", random_effects=["Dsmall"]),
        data[["Dsmall", "Subject"]],
        data["Rbig"],
    )
    return model, caught


def _matches_rescaled_twin(model):
    twin = load_reference("sleepstudy_rs")
    b0, b1 = twin["fixef"].values()
    expected_theta = np.array(twin["theta"]) * [1.0, 1e6, 1e6]
    return (
        abs(model.log_likelihood_ - (twin["logLik"] - math.log(1e-6))) < 1e-4
        and np.allclose(model.fixed_effects_, [1e6 + b0, 1e6 * b1], rtol=1e-5)
        and np.allclose(model.theta_, expected_theta, rtol=1e-3)
        and math.isclose(model.sigma_, twin["sigma"], rel_tol=1e-5)
    )


def test_random_slope_on_a_feature_near_1e_6_is_the_rescaled_fit():
    """lme4 fails here (logLik -879.4 instead of -858.0, 'degenerate Hessian'); the core
    optimizes θ for unit-RMS random-effect columns and reaches the rescaled optimum."""
    model, caught = _random_slope_on_tiny_feature()
    assert _matches_rescaled_twin(model)
    assert model.converged_ and not of_category(caught, ConvergenceWarning)
    lme4 = awkward_reference("sleepstudy_scaled_rs")
    assert model.log_likelihood_ > lme4["logLik"] + 20


def test_random_slope_on_a_feature_near_1e_6_is_told_truthfully():
    """Either the rescaled fit is reached, or the estimator says it was not."""
    model, caught = _random_slope_on_tiny_feature()
    if not _matches_rescaled_twin(model):
        assert not model.converged_
        assert len(of_category(caught, ConvergenceWarning)) == 1


# ------------------------------------------------------ convergence, told truthfully


def _reference_cases():
    from .test_reference_arrays import CASES

    return CASES


@pytest.mark.parametrize("name", sorted(_reference_cases()))
def test_reference_fits_raise_no_convergence_warning(name):
    loader, response, columns, params = _reference_cases()[name]
    data = loader()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", SingularFitWarning)
        model = MixedLMRegressor(**params).fit(data[columns], data[response])
    assert model.converged_
    assert model.optimizer_record_.converged
    assert model.convergence_check_ is not None and model.convergence_check_.ok
    assert model.convergence_check_.predicted_decrease <= 1e-3
    assert model.n_iter_ == model.optimizer_record_.n_evals > 0


REFERENCE_FORMULAS = sorted(p.stem for p in REFERENCE.glob("*.json")) + sorted(
    f"extra/{p.stem}" for p in (REFERENCE / "extra").glob("*.json")
)


@pytest.mark.parametrize("name", REFERENCE_FORMULAS)
def test_reference_formulas_raise_no_convergence_warning(name):
    """Every lme4 reference model through lmer: no ConvergenceWarning, and exactly one
    SingularFitWarning when (and only when) lme4 calls the fit singular."""
    from sklmixed import lmer

    ref = json.loads((REFERENCE / f"{name}.json").read_text())
    data = load_data(ref["dataset"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", ConvergenceWarning)
        model = lmer(ref["formula"], data=data, REML=ref["REML"], weights=ref.get("weights"))
    assert model.converged_ and model.convergence_check_.ok
    assert len(of_category(caught, SingularFitWarning)) == int(ref["singular"])
    assert model.is_singular_ == ref["singular"]


@pytest.mark.parametrize("name", sorted(_reference_cases()))
def test_optimizer_record_holds_evaluations_criterion_and_boundary(name):
    loader, response, columns, params = _reference_cases()[name]
    data = loader()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        model = MixedLMRegressor(**params).fit(data[columns], data[response])
    record, check = model.optimizer_record_, model.convergence_check_
    k = model.theta_.size
    # One grouping factor: L-BFGS-B with the analytic gradient; several: BOBYQA.
    assert record.optimizer in {"nlopt LN_BOBYQA", "scipy L-BFGS-B, analytic gradient"}
    assert isinstance(record.n_evals, int) and record.n_evals == model.n_iter_ > k
    assert record.message and record.converged
    np.testing.assert_array_equal(record.theta, model.theta_)
    assert record.theta_start.shape == (k,) and np.isfinite(record.theta_start).all()
    # The final criterion: -2 log-likelihood as fitted (REML criterion or ML deviance).
    np.testing.assert_allclose(record.fmin, -2 * model.log_likelihood_, rtol=1e-10)
    # Boundary parameters: diagonal entries of T at exactly 0, as lme4 reports a singular fit.
    assert record.on_boundary.dtype == bool and record.on_boundary.shape == (k,)
    np.testing.assert_array_equal(record.on_boundary, model.theta_ == 0.0)
    assert model.is_singular_ == load_reference(name)["singular"]
    assert model.is_singular_ or not record.on_boundary.any()
    assert check.gradient.shape == (k,) and check.hessian.shape == (k, k)
    assert check.n_evals >= 2 * k and np.isfinite(check.predicted_decrease)


@pytest.mark.parametrize("max_iter", [1, 3])
def test_fit_stopped_early_warns_and_is_not_converged(max_iter):
    data = load_data("sleepstudy")
    model = MixedLMRegressor(group="Subject", random_effects=["Days"], max_iter=max_iter)
    with pytest.warns(ConvergenceWarning, match="did not converge.*max_iter") as caught:
        model.fit(data[["Days", "Subject"]], data["Reaction"])
    assert len(of_category(caught, ConvergenceWarning)) == 1
    assert not model.converged_ and not model.optimizer_record_.converged
    assert "maximum number of evaluations" in model.optimizer_record_.message
    # The budget is the optimizer's; lme4's boundary check may add one evaluation per θ.
    assert max_iter <= model.n_iter_ <= max_iter + model.theta_.size
    # What was reached is still reported, finite, as the record says.
    assert np.isfinite(model.log_likelihood_)
    np.testing.assert_allclose(model.optimizer_record_.fmin, -2 * model.log_likelihood_, rtol=1e-10)


def test_fit_stopped_early_without_the_check_still_warns():
    data = load_data("sleepstudy")
    model = MixedLMRegressor(
        group="Subject", random_effects=["Days"], max_iter=3, check_convergence=False
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(data[["Days", "Subject"]], data["Reaction"])
    assert model.convergence_check_ is None and not model.converged_


@pytest.mark.parametrize("case", ["dyestuff2", "unbalanced_rs", "exam_categorical_slope"])
def test_singular_fit_gives_one_singular_warning_and_no_convergence_warning(case):
    if case == "dyestuff2":
        data, X, y = (d := load_data("Dyestuff2")), d[["Batch"]], d["Yield"]
        model = MixedLMRegressor(group="Batch")
    elif case == "unbalanced_rs":
        data = awkward_data("unbalanced")
        X, y = data[["x", "g"]], data["y"]
        model = MixedLMRegressor(group="g", random_effects=["x"])
    else:  # lme4: (1 + sex | school), correlation -0.9999997, singular
        data = load_data("Exam")
        X = data[["standLRT", "school"]].assign(sexM=(data["sex"] == "M").astype(float))
        y = data["normexam"]
        model = MixedLMRegressor(group="school", random_effects=["sexM"])
    model, caught = fit_quietly(model, X, y)
    assert [w.category for w in caught] == [SingularFitWarning], [str(w.message) for w in caught]
    assert model.is_singular_ and model.converged_
    # On the boundary, or (exam_categorical_slope, as in lme4) a diagonal θ below 1e-4.
    assert np.abs(model.theta_).min() < 1e-4


# ------------------------------------------------------- core bugs found here (fixed)
# Cases the property tests found; each stays as a regression test.


def test_crossed_terms_that_never_share_a_row():
    """(0 + treated | g) + (0 + control | h), treated * control = 0 on every row: Z2'Z1 = 0.

    Was a core crash (blocks._gram: np.bincount of no level pairs returned int64)."""
    data = awkward_data("disjoint_slopes")
    ref = awkward_reference("disjoint_slopes")
    X = data[["treated", "control", "g", "h"]]
    model = MixedLMRegressor(
        group=["g", "h"],
        random_effects={"g": ["treated"], "h": ["control"]},
        random_intercept=False,
        fixed_effects=["treated"],
    )
    model.fit(X, data["y"])
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(X))
    assert_same_optimum(model, ref)


def test_tiny_design_with_a_huge_random_slope():
    """4 rows, fixed 0 + f0 with f0 ~ 1e7, (1 + f0 || g). Was a core crash (LinAlgError
    from the Cholesky of the [X y] Schur complement, which rounding made indefinite)."""
    data = awkward_data("tiny_huge_slope")
    ref = awkward_reference("tiny_huge_slope")
    model, caught = fit_quietly(
        MixedLMRegressor(
            group="g", random_effects=["f0"], covariance="diagonal", fit_intercept=False
        ),
        data[["f0", "g"]],
        data["y"],
    )
    assert model.log_likelihood_ >= ref["logLik"] - 1e-3
    # lme4 warns too (roundoff-limited optimizer); whatever is said must match converged_.
    assert bool(of_category(caught, ConvergenceWarning)) == (not model.converged_)


def _reorder_fit(order):
    data = awkward_data("reorder_singular")
    X = data[["x1", "x2", "g"]]
    model, caught = fit_quietly(MixedLMRegressor(group="g", random_effects=order), X, data["y"])
    return model, caught


def test_reordered_random_effect_columns_first_order_reaches_lme4():
    model, _ = _reorder_fit(["x1", "x2"])
    for name in ("reorder_singular_x1x2", "reorder_singular_x2x1"):
        assert_same_optimum(model, awkward_reference(name))


def test_reordered_random_effect_columns_second_order_reaches_lme4():
    """Was a stop at a singular non-optimum (θ = (12.10, 2.52, 3.65, 0, 0.341, 0.240),
    logLik -3.97362, reported converged): with T[1,1] = 0, negating T[2,1] gives the
    same T Tᵀ, from which raising T[1,1] lowers the criterion."""
    model, caught = _reorder_fit(["x2", "x1"])
    assert_same_optimum(model, awkward_reference("reorder_singular_x2x1"))


def _crossed_reorder_fit(order):
    data = awkward_data("reorder_singular_crossed")
    model = MixedLMRegressor(group=["g", "h"], random_effects={"g": order})
    return fit_quietly(model, data[["x1", "x2", "g", "h"]], data["y"])


def test_singular_fit_second_order_reaches_lme4():
    model, _ = _crossed_reorder_fit(["x2", "x1"])
    assert_same_optimum(model, awkward_reference("reorder_singular_crossed_x2x1"))


def test_singular_fit_first_order_reaches_lme4():
    """Was a stop at θ = (1.4825, 0.1981, 0.0503, 0, 0.5254, 1.1652, 0), logLik -38.4953,
    reported converged: with T[1,1] = 0, negating T[2,1] gives the same T Tᵀ, and from
    there raising T[1,1] lowers the criterion; lme4 reaches -37.9707 in both orders."""
    model, _ = _crossed_reorder_fit(["x1", "x2"])
    assert_same_optimum(model, awkward_reference("reorder_singular_crossed_x1x2"))


def _intercept_reorder_fit(order):
    data = awkward_data("reorder_singular_intercept")
    model = MixedLMRegressor(group="g", random_effects=order)
    return fit_quietly(model, data[["x1", "x2", "g"]], data["y"])


def test_singular_intercept_second_order_reaches_lme4():
    model, _ = _intercept_reorder_fit(["x2", "x1"])
    assert_same_optimum(model, awkward_reference("reorder_singular_intercept_x2x1"))


def test_singular_intercept_first_order_reaches_lme4():
    """Was stuck at T[0,0] = 0 with logLik -30.8586: negating the column below the zero
    diagonal gives the same T Tᵀ on another face of the bound, from which the criterion
    falls; the restart from the sign-flipped optimum reaches lme4's -30.4271."""
    model, _ = _intercept_reorder_fit(["x1", "x2"])
    assert_same_optimum(model, awkward_reference("reorder_singular_intercept_x1x2"))


def test_reordered_random_effect_columns_stuck_fit_is_not_better_than_lme4():
    """Whatever the second order reaches, it is never reported as better than the optimum."""
    model, _ = _reorder_fit(["x2", "x1"])
    assert model.log_likelihood_ <= awkward_reference("reorder_singular_x1x2")["logLik"] + 1e-6


def test_degenerate_crossed_design_fits_or_refuses_clearly():
    """6 rows, duplicated random-effect columns around 1e7, crossed factors; lme4 stops
    with 'Downdated VtV is not positive definite'. Was a core crash (scipy LinAlgError
    from the Cholesky of block 2); now a fit with a finite log-likelihood or our own
    ValueError, never a bare LinAlgError."""
    data = awkward_data("huge_collinear_crossed")
    model = MixedLMRegressor(
        group=["g", "h"], random_effects=["f0", "f1"], random_intercept=False, fit_intercept=False
    )
    try:
        fit_quietly(model, data[["f0", "f1", "g", "h"]], data["y"])
    except ValueError as error:
        assert not isinstance(error, np.linalg.LinAlgError), repr(error)
    else:
        assert np.isfinite(model.log_likelihood_)


def test_convergence_check_survives_a_hessian_singular_up_to_rounding():
    """Was a LinAlgError: eigvalsh gave +5e-17 where LU met an exact zero pivot."""
    from sklmixed._core.check import check_optimum

    H = np.array([[6.875, 6.0], [6.0, 6.0 * (6.0 / 6.875)]])
    assert np.linalg.eigvalsh(H).min() > 0

    def quadratic(theta):
        return 0.5 * theta @ H @ theta

    check = check_optimum(quadratic, np.zeros(2), 0.0, np.full(2, -np.inf), step=2.0**-10)
    assert check.ok
