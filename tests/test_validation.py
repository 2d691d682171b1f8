"""Bad input fails safe: a ValueError or TypeError naming the column or argument,
raised before any numerical work.

Every fit case runs with the numerical core replaced by a function that fails the
test if it is reached, so "before any numerical work" is checked, not assumed.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import sklmixed.estimators.linear as estimator_module
from sklmixed import MixedLMRegressor, SingularFitWarning, lmer
from sklmixed.datasets import load_exam
from sklmixed.exceptions import UnboundedLikelihoodWarning

N_GROUPS, PER_GROUP = 6, 10
N = N_GROUPS * PER_GROUP


def _frame():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    return pd.DataFrame({
        "x": rng.normal(size=N),
        "z": rng.normal(size=N),
        "g": g,
    })


def _y():
    rng = np.random.default_rng(1)
    x = _frame()["x"].to_numpy()
    intercepts, slopes = rng.normal(size=(2, N_GROUPS)).repeat(PER_GROUP, axis=1)
    return pd.Series(intercepts + (1 + slopes) * x + 0.5 * rng.normal(size=N), name="y")


def _with(df, column, index, value, dtype=None):
    df = df.copy()
    if dtype is not None:
        df[column] = df[column].astype(dtype)
    df.loc[index, column] = value
    return df


def _set(series, index, value, dtype=None):
    series = series.copy() if dtype is None else series.astype(dtype)
    series[index] = value
    return series


@pytest.fixture
def no_core(monkeypatch):
    """Replace the numerical core: reaching it is a test failure."""

    def refuse(*args, **kwargs):
        raise AssertionError("fit_lmm was called: validation came after numerical work")

    monkeypatch.setattr(estimator_module, "fit_lmm", refuse)


X, Y = _frame(), _y()
M = MixedLMRegressor

# id -> (fit call, error type, text the message must contain)
FIT_CASES = {
    # Missing or infinite values, named by column or argument.
    "y NaN": (lambda: M(group="g").fit(X, _set(Y, 3, np.nan)), ValueError, "y"),
    "y inf": (lambda: M(group="g").fit(X, _set(Y, 3, np.inf)), ValueError, "y"),
    "y -inf": (lambda: M(group="g").fit(X, _set(Y, 3, -np.inf)), ValueError, "y"),
    "y pandas NA (Float64)": (
        lambda: M(group="g").fit(X, _set(Y, 3, pd.NA, "Float64")), ValueError, "y"),
    "y pandas NA (boolean)": (
        lambda: M(group="g").fit(X, pd.array([True, None] * (N // 2), dtype="boolean")),
        ValueError, "y"),
    "y None in object": (
        lambda: M(group="g").fit(X, _set(Y.astype(object), 3, None)), ValueError, "y"),
    "y numpy NaN": (lambda: M(group="g").fit(X, _set(Y, 3, np.nan).to_numpy()), ValueError, "y"),
    "y text": (lambda: M(group="g").fit(X, "a" + Y.astype(str)), ValueError, "y"),
    "y 2 columns": (lambda: M(group="g").fit(X, np.c_[Y, Y]), ValueError, "y"),
    "feature NaN": (lambda: M(group="g").fit(_with(X, "x", 3, np.nan), Y), ValueError, "'x'"),
    "feature inf": (lambda: M(group="g").fit(_with(X, "z", 3, np.inf), Y), ValueError, "'z'"),
    "feature pandas NA (Float64)": (
        lambda: M(group="g").fit(_with(X, "x", 3, pd.NA, "Float64"), Y), ValueError, "'x'"),
    "feature pandas NA (Int64)": (
        lambda: M(group="g").fit(_with(X.assign(k=1), "k", 3, pd.NA, "Int64"), Y),
        ValueError, "'k'"),
    "random-effect feature NaN": (
        lambda: M(group="g", random_effects=["x"], fixed_effects=["z"]).fit(
            _with(X, "x", 3, np.nan), Y),
        ValueError, "'x'"),
    "feature NaN in array": (
        lambda: M(group=2).fit(_with(X, "x", 3, np.nan).to_numpy(), Y), ValueError, "X"),
    "group NaN": (lambda: M(group="g").fit(_with(X, "g", 3, np.nan, float), Y), ValueError, "'g'"),
    "group inf": (lambda: M(group="g").fit(_with(X, "g", 3, np.inf, float), Y), ValueError, "'g'"),
    "group pandas NA (Int64)": (
        lambda: M(group="g").fit(_with(X, "g", 3, pd.NA, "Int64"), Y), ValueError, "'g'"),
    "group None (strings)": (
        lambda: M(group="g").fit(_with(X, "g", 3, None, object), Y), ValueError, "'g'"),
    "group NA (categorical)": (
        lambda: M(group="g").fit(X.assign(g=pd.Categorical(X["g"].where(X.index != 3))), Y),
        ValueError, "'g'"),
    "groups= NaN": (
        lambda: M().fit(X[["x"]], Y, groups=_set(X["g"], 3, np.nan, float).rename("school")),
        ValueError, "'school'"),
    "groups= second column NA": (
        lambda: M().fit(
            X[["x"]], Y,
            groups=pd.DataFrame({"a": X["g"], "b": _set(X["g"] % 2, 3, pd.NA, "Int64")})),
        ValueError, "'b'"),
    "sample_weight NaN": (
        lambda: M(group="g").fit(X, Y, sample_weight=_set(pd.Series(np.ones(N)), 3, np.nan)),
        ValueError, "sample_weight"),
    "sample_weight pandas NA": (
        lambda: M(group="g").fit(
            X, Y, sample_weight=_set(pd.Series(np.ones(N)), 3, pd.NA, "Float64")),
        ValueError, "sample_weight"),
    "sample_weight all zero": (
        lambda: M(group="g").fit(X, Y, sample_weight=np.zeros(N)),
        ValueError, "sample_weight"),
    "prior weight zero": (
        lambda: M(group="g", weights="w").fit(X.assign(w=np.r_[0.0, np.ones(N - 1)]), Y),
        ValueError, "weights"),
    "sample_weight negative": (
        lambda: M(group="g").fit(X, Y, sample_weight=-np.ones(N)), ValueError, "sample_weight"),
    "sample_weight text": (
        lambda: M(group="g").fit(X, Y, sample_weight=np.array(["a"] * N)),
        ValueError, "sample_weight"),
    # Magnitudes whose squares overflow, a y with nothing left to model.
    "y beyond 1e150": (lambda: M(group="g").fit(X, Y * 1e200), ValueError, "y"),
    "feature beyond 1e150": (
        lambda: M(group="g").fit(X.assign(x=X["x"] * 1e200), Y), ValueError, "'x'"),
    "y constant": (lambda: M(group="g").fit(X, np.full(N, 3.5)), ValueError, "y"),
    "y too small to square": (lambda: M(group="g").fit(X, Y * 1e-300), ValueError, "y"),
    "y zero without fixed effects": (
        lambda: M(group="g", fixed_effects=[], fit_intercept=False).fit(X, np.zeros(N)),
        ValueError, "y"),
    # Labels that are not labels.
    "unhashable group labels": (
        lambda: M(group="g").fit(X.assign(g=[[v] for v in X["g"]]), Y), TypeError, "'g'"),
    # Text, categories and other non-numbers in a numeric feature.
    "text feature": (
        lambda: M(group="g").fit(X.assign(s=np.where(X["x"] > 0, "a", "b")), Y),
        ValueError, "'s'"),
    "pandas string feature": (
        lambda: M(group="g").fit(X.assign(s=pd.array(np.where(X["x"] > 0, "a", "b"), "string")), Y),
        ValueError, "'s'"),
    "categorical feature": (
        lambda: M(group="g").fit(X.assign(s=pd.Categorical(np.where(X["x"] > 0, "a", "b"))), Y),
        ValueError, "'s'"),
    "categorical feature of numbers": (
        lambda: M(group="g").fit(X.assign(s=pd.Categorical(np.arange(N) % 3)), Y),
        ValueError, "'s'"),
    "text in an object feature": (
        lambda: M(group="g").fit(X.assign(x=X["x"].astype(object).where(X.index != 3, "7,5")), Y),
        ValueError, "'x'"),
    "complex feature": (lambda: M(group="g").fit(X.assign(x=X["x"] + 1j), Y), ValueError, "'x'"),
    "datetime feature": (
        lambda: M(group="g").fit(X.assign(t=pd.Timestamp("2020-01-01")), Y), ValueError, "'t'"),
    "text random-effect feature": (
        lambda: M(group="g", random_effects=["s"], fixed_effects=["x"]).fit(
            X.assign(s=np.where(X["x"] > 0, "a", "b")), Y),
        ValueError, "'s'"),
    "text feature in an object array": (
        lambda: M(group=2).fit(
            np.column_stack([np.where(X["x"] > 0, "a", "b"), X["z"], X["g"]]).astype(object), Y),
        ValueError, "x0"),
    # Unknown columns.
    "unknown group column": (lambda: M(group="school").fit(X, Y), ValueError, "'school'"),
    "unknown group column in a list": (
        lambda: M(group=["g", "school"]).fit(X, Y), ValueError, "'school'"),
    "group position out of range": (lambda: M(group=7).fit(X.to_numpy(), Y), ValueError, "group"),
    "group name for an array": (lambda: M(group="g").fit(X.to_numpy(), Y), ValueError, "'g'"),
    "unknown random-effect column": (
        lambda: M(group="g", random_effects=["days"]).fit(X, Y), ValueError, "'days'"),
    "unknown random-effect column (dict)": (
        lambda: M(group="g", random_effects={"g": ["days"]}).fit(X, Y), ValueError, "'days'"),
    "unknown grouping factor in random_effects": (
        lambda: M(group="g", random_effects={"school": ["x"]}).fit(X, Y), ValueError, "school"),
    "unknown fixed-effect column": (
        lambda: M(group="g", fixed_effects=["days"]).fit(X, Y), ValueError, "'days'"),
    "group column listed twice": (lambda: M(group=["g", "g"]).fit(X, Y), ValueError, "'g'"),
    "random-effect column listed twice": (
        lambda: M(group="g", random_effects=["x", "x"]).fit(X, Y), ValueError, "'x'"),
    "fixed-effect column listed twice": (
        lambda: M(group="g", fixed_effects=["x", "x"]).fit(X, Y), ValueError, "'x'"),
    "group column as random effect": (
        lambda: M(group="g", random_effects=["g"]).fit(X, Y), ValueError, "'g'"),
    "group column as random effect (dict)": (
        lambda: M(group="g", random_effects={"g": ["g"]}).fit(X, Y), ValueError, "'g'"),
    "group column as fixed effect": (
        lambda: M(group="g", fixed_effects=["x", "g"]).fit(X, Y), ValueError, "'g'"),
    "groups twice": (lambda: M(group="g").fit(X, Y, groups=X["g"]), ValueError, "groups"),
    "no random effects at all": (
        lambda: M(group="g", random_intercept=False).fit(X, Y), ValueError, "'g'"),
    # Levels lme4 refuses.
    "single group": (lambda: M(group="g").fit(X.assign(g=0), Y), ValueError, "'g'"),
    "single group via groups=": (
        lambda: M().fit(X[["x"]], Y, groups=pd.Series(np.zeros(N), name="school")),
        ValueError, "'school'"),
    "as many levels as rows": (
        lambda: M(group="g").fit(X.assign(g=np.arange(N)), Y), ValueError, "'g'"),
    "as many random effects as rows": (
        # 30 levels x (intercept, slope) = 60 = n: lme4's check.nobs.vs.nRE refuses it.
        lambda: M(group="g", random_effects=["x"]).fit(X.assign(g=np.arange(N) // 2), Y),
        ValueError, "'g'"),
    "a second factor with a single level": (
        lambda: M(group=["g", "h"]).fit(X.assign(h="one"), Y), ValueError, "'h'"),
    # Lengths.
    "y shorter than X": (lambda: M(group="g").fit(X, Y[:-1]), ValueError, "y"),
    "y longer than X": (lambda: M(group="g").fit(X, pd.concat([Y, Y])), ValueError, "y"),
    "groups shorter than X": (
        lambda: M().fit(X[["x"]], Y, groups=X["g"][:-1]), ValueError, "groups"),
    "sample_weight shorter than X": (
        lambda: M(group="g").fit(X, Y, sample_weight=np.ones(N - 1)), ValueError, "sample_weight"),
    "sample_weight 2-D": (
        lambda: M(group="g").fit(X, Y, sample_weight=np.ones((N, 1))), ValueError, "sample_weight"),
    # Empty and degenerate data.
    "no rows (DataFrame)": (
        lambda: M(group="g").fit(X.iloc[:0], Y.iloc[:0]), ValueError, "0 sample"),
    "no rows (array)": (
        lambda: M(group=2).fit(X.to_numpy()[:0], Y.to_numpy()[:0]), ValueError, "0 sample"),
    "1-D X": (lambda: M(group="g").fit(X["x"].to_numpy(), Y), ValueError, "2D"),
    "one row": (lambda: M(group="g").fit(X.iloc[:1], Y.iloc[:1]), ValueError, "n_samples"),
    "y is None without formula": (lambda: M(group="g").fit(X, None), ValueError, "y"),
}

# The parameter, an invalid value: scikit-learn's _parameter_constraints refuses it.
BAD_PARAMETERS = {
    "method": "restricted",
    "covariance": "full",
    "tol": 0.0,
    "max_iter": 0,
    "fit_intercept": "yes",
    "random_intercept": 1.5,
    "check_convergence": None,
    "group": 1.5,
    "random_effects": "x",
    "fixed_effects": "x",
    "formula": 3,
}


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_bad_fit_input_names_its_column_or_argument(case, no_core):
    call, error, named = FIT_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the DataConversionWarning of a column vector
        with pytest.raises(error) as info:
            call()
    assert named in str(info.value), (case, str(info.value))


def test_polars_missing_values_are_named(no_core):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"x": X["x"].tolist(), "z": X["z"].tolist(), "g": X["g"].tolist()})
    y = pl.Series("y", Y.tolist())
    with_null = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None)
                                   .otherwise(pl.col("z")).alias("z"))
    with pytest.raises(ValueError, match="'z'"):
        M(group="g").fit(with_null, y)
    null_group = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None)
                                    .otherwise(pl.col("g")).alias("g"))
    with pytest.raises(ValueError, match="'g'"):
        M(group="g").fit(null_group, y)
    with pytest.raises(ValueError, match="y"):
        M(group="g").fit(frame, y.scatter(3, None))


def test_y_fitted_exactly_up_to_rounding_warns():
    """Not refused (scikit-learn's own checks fit y = x0), but said: sigma_ is ~0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        with pytest.warns(UserWarning, match="exact linear function"):
            model = M(group="g").fit(X, 1.0 + 2.0 * X["x"] - X["z"])
    assert model.sigma_ < 1e-10


@pytest.mark.parametrize("parameter", sorted(BAD_PARAMETERS))
def test_invalid_parameter_is_refused_by_name(parameter, no_core):
    model = MixedLMRegressor(**{"group": "g", parameter: BAD_PARAMETERS[parameter]})
    with pytest.raises(InvalidParameterError, match=re.escape(f"'{parameter}' parameter")):
        model.fit(X, Y)
    # InvalidParameterError is both: callers catching either still catch it.
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_parameter_validation_matches_scikit_learns(no_core):
    """The cached constraint checks accept and refuse exactly as scikit-learn's own
    validation does, with its message; a subclass's parameters are its own."""
    from sklearn.base import BaseEstimator
    from sklearn.utils._param_validation import validate_parameter_constraints

    for parameter, value in [*BAD_PARAMETERS.items(), ("tol", 1e-3), ("group", ["g"])]:
        model = MixedLMRegressor(**{parameter: value})
        try:
            validate_parameter_constraints(
                MixedLMRegressor._parameter_constraints,
                BaseEstimator.get_params(model, deep=False),
                caller_name="MixedLMRegressor",
            )
        except InvalidParameterError as error:
            with pytest.raises(InvalidParameterError, match=re.escape(str(error))):
                model._validate_params()
        else:
            model._validate_params()

    class Sub(MixedLMRegressor):
        _parameter_constraints = {**MixedLMRegressor._parameter_constraints, "extra": [int]}

        def __init__(self, *, extra=1, method="REML"):
            super().__init__(method=method)
            self.extra = extra

    assert sorted(Sub().get_params()) == ["extra", "method"]
    assert "extra" not in MixedLMRegressor().get_params()
    with pytest.raises(InvalidParameterError, match="'extra' parameter"):
        Sub(extra="no")._validate_params()


def test_valid_edge_values_are_accepted():
    """The boundaries of the constraints are not refused (max_iter=1 just warns)."""
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning):
        MixedLMRegressor(group="g", max_iter=1, tol=1e-300).fit(X, Y)


def test_formula_and_column_arguments_clash():
    with pytest.raises(ValueError, match="group"):
        MixedLMRegressor(formula="y ~ x + (1 | g)", group="g").fit(X.assign(y=Y), Y)


# ---------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def fitted_frame():
    return MixedLMRegressor(group="g", random_effects=["x"]).fit(X, Y)


@pytest.fixture(scope="module")
def fitted_array():
    return MixedLMRegressor(group=2, random_effects=[0]).fit(X.to_numpy(), Y)


@pytest.fixture(scope="module")
def fitted_groups():
    return MixedLMRegressor().fit(X[["x", "z"]], Y, groups=X["g"])


PREDICT_FRAME_CASES = {
    "feature column missing": (lambda: X[["z", "g"]], ValueError, "x"),
    "group column missing": (lambda: X[["x", "z"]], ValueError, "g"),
    "columns renamed": (lambda: X.rename(columns={"z": "w"}), ValueError, "w"),
    "feature NaN": (lambda: _with(X, "z", 3, np.nan), ValueError, "'z'"),
    "random-effect feature inf": (lambda: _with(X, "x", 3, np.inf), ValueError, "'x'"),
    "text feature": (lambda: X.assign(z=np.where(X["x"] > 0, "a", "b")), ValueError, "'z'"),
    "no rows": (lambda: X.iloc[:0], ValueError, "0 sample"),
}


@pytest.mark.parametrize("case", sorted(PREDICT_FRAME_CASES))
def test_bad_predict_frame_names_its_column(case, fitted_frame):
    make, error, named = PREDICT_FRAME_CASES[case]
    with pytest.raises(error) as info:
        fitted_frame.predict(make())
    assert named in str(info.value), (case, str(info.value))


@pytest.mark.parametrize("n_columns", [1, 2, 4])
def test_predict_array_with_wrong_number_of_columns(n_columns, fitted_array):
    A = np.tile(X.to_numpy(), 2)[:, :n_columns]
    with pytest.raises(ValueError, match=f"X has {n_columns} features.*expecting 3"):
        fitted_array.predict(A)


def test_predict_groups_model_without_groups(fitted_groups):
    with pytest.raises(ValueError, match="groups"):
        fitted_groups.predict(X[["x", "z"]])


def test_predict_groups_of_wrong_length(fitted_groups):
    with pytest.raises(ValueError, match="groups"):
        fitted_groups.predict(X[["x", "z"]], groups=X["g"][:-1])


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MixedLMRegressor(group="g").predict(X)


def test_predict_array_on_a_frame_model_reads_columns_by_position(fitted_frame):
    """scikit-learn's convention: a warning, then the columns in fit's order."""
    with pytest.warns(UserWarning, match="feature names"):
        by_position = fitted_frame.predict(X.to_numpy())
    np.testing.assert_array_equal(by_position, fitted_frame.predict(X))


def test_predict_frame_on_an_array_model_reads_columns_by_position(fitted_array):
    with pytest.warns(UserWarning, match="feature names"):
        by_position = fitted_array.predict(X)
    np.testing.assert_array_equal(by_position, fitted_array.predict(X.to_numpy()))


def test_predict_unseen_or_missing_group_is_the_population_prediction(fitted_frame):
    """lme4's predict(allow.new.levels = TRUE): unseen levels and NA get the fixed part."""
    new = X.iloc[:4].copy()
    new["g"] = new["g"].astype(float)
    new.loc[[0, 1], "g"] = [np.nan, 99.0]
    beta = fitted_frame.fixed_effects_
    population = beta["(Intercept)"] + beta["x"] * new["x"] + beta["z"] * new["z"]
    pred = fitted_frame.predict(new)
    np.testing.assert_allclose(pred[:2], population[:2], rtol=1e-12)
    np.testing.assert_allclose(pred[2:], fitted_frame.predict(X.iloc[2:4]), rtol=1e-12)


def test_predict_refuses_nothing_valid(fitted_frame, fitted_array, fitted_groups):
    """The bad cases above are bad for a reason: the same data, intact, predicts."""
    assert np.isfinite(fitted_frame.predict(X)).all()
    assert np.isfinite(fitted_array.predict(X.to_numpy())).all()
    assert np.isfinite(fitted_groups.predict(X[["x", "z"]], groups=X["g"])).all()


# ------------------------------------------- inputs untouched, results reproducible


def _awkward_frame():
    """Mixed dtypes: float, nullable Int64, bool, a categorical group, a string group."""
    rng = np.random.default_rng(3)
    n = 120
    g, h, x = rng.integers(0, 9, size=n), rng.integers(0, 4, size=n), rng.normal(size=n)
    u, v, s = rng.normal(size=9), rng.normal(size=4), 0.5 * rng.normal(size=9)
    y = u[g] + v[h] + (1 + s[g]) * x + 0.3 * rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "k": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
        "flag": rng.random(n) > 0.5,
        "g": pd.Categorical(g.astype(str)),
        "h": np.array(["a", "b", "c", "d"], dtype=object)[h],
    }), pd.Series(y, name="y"), rng.uniform(0.5, 2.0, size=n)


def test_fit_and_predict_never_modify_their_inputs():
    X, y, w = _awkward_frame()
    A = np.column_stack([X["x"], X["k"].astype(float), X["g"].cat.codes]).astype(float)
    groups = pd.Series(X["h"].to_numpy(), name="h")
    cases = [
        (MixedLMRegressor(group=["g", "h"], random_effects={"g": ["x"]}), (X, y),
         {"sample_weight": w}),
        (MixedLMRegressor(group=2, random_effects=[0]), (A, y.to_numpy()), {"sample_weight": w}),
        (MixedLMRegressor(), (X[["x", "k", "flag"]], y), {"groups": groups}),
    ]
    for model, (features, target), extra in cases:
        copies = [a.copy(deep=True) if hasattr(a, "iloc") else a.copy() for a in (features, target)]
        extra_copies = {k: v.copy() for k, v in extra.items()}
        labels = {"groups": extra["groups"]} if "groups" in extra else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(features, target, **extra)
            model.predict(features, **labels)
            model.score(features, target, **labels)
        for before, after in zip(copies, (features, target)):
            if isinstance(after, pd.DataFrame):
                pd.testing.assert_frame_equal(after, before, check_exact=True)
            elif isinstance(after, pd.Series):
                pd.testing.assert_series_equal(after, before, check_exact=True)
            else:
                np.testing.assert_array_equal(after, before)
        for key, before in extra_copies.items():
            if isinstance(before, pd.Series):
                pd.testing.assert_series_equal(extra[key], before, check_exact=True)
            else:
                np.testing.assert_array_equal(extra[key], before)


def test_read_only_inputs_are_accepted():
    X, y, w = _awkward_frame()
    A = np.column_stack([X["x"], X["g"].cat.codes]).astype(float)
    target = y.to_numpy().copy()
    for array in (A, target, w):
        array.setflags(write=False)
    model = MixedLMRegressor(group=1, random_effects=[0]).fit(A, target, sample_weight=w)
    assert np.isfinite(model.predict(A)).all()


def test_fitted_model_does_not_alias_its_training_data():
    """Changing X after fit in place changes nothing the model reports or predicts."""
    X, y, _ = _awkward_frame()
    A = np.column_stack([X["x"], X["g"].cat.codes]).astype(float)
    target = y.to_numpy().copy()
    model = MixedLMRegressor(group=1, random_effects=[0]).fit(A, target)
    before = (model.predict(A.copy()), model.fixed_effects_.copy(), model.scaled_residuals_.copy())
    A[:, 0] = 0.0
    target[:] = 0.0
    after = (model.predict(np.column_stack([X["x"], X["g"].cat.codes]).astype(float)),
             model.fixed_effects_, model.scaled_residuals_)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _fingerprint(model):
    return (
        model.fixed_effects_.to_numpy(),
        model.fixed_effects_cov_.to_numpy(),
        model.theta_,
        np.array([model.sigma_, model.log_likelihood_]),
        *[m.to_numpy() for m in model.random_effects_.values()],
        *model.random_effects_cond_var_.values(),
        model.variance_components_["vcov"].to_numpy(),
    )


def test_fitting_twice_is_bit_identical():
    from sklearn.base import clone

    X, y, w = _awkward_frame()
    model = MixedLMRegressor(group=["g", "h"], random_effects={"g": ["x"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = _fingerprint(model.fit(X, y, sample_weight=w))
        second = _fingerprint(model.fit(X, y, sample_weight=w))
        third = _fingerprint(clone(model).fit(X.copy(), y.copy(), sample_weight=w.copy()))
    for a, b, c in zip(first, second, third):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_predict_from_several_threads_equals_serial():
    from concurrent.futures import ThreadPoolExecutor

    X, y, _ = _awkward_frame()
    model = MixedLMRegressor(group=["g", "h"], random_effects={"g": ["x"]}).fit(X, y)
    chunks = [X.sample(frac=0.7, random_state=i) for i in range(40)]
    serial = [model.predict(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(model.predict, chunks))
    for s, t in zip(serial, threaded):
        assert np.array_equal(s, t)


def test_fits_from_several_threads_equal_serial():
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.base import clone

    X, y, _ = _awkward_frame()
    model = MixedLMRegressor(group=["g", "h"], random_effects={"g": ["x"]})
    frames = [(X.iloc[i:], y.iloc[i:]) for i in range(0, 8)]
    serial = [_fingerprint(clone(model).fit(a, b)) for a, b in frames]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda ab: _fingerprint(clone(model).fit(*ab)), frames))
    for s, t in zip(serial, threaded):
        assert all(np.array_equal(a, b) for a, b in zip(s, t))


def test_a_fit_with_an_infinite_likelihood_says_so():
    """5 rows, 4 fixed effects, 4 groups: y is fitted exactly and the likelihood has
    no maximum. lme4 would report logLik = Inf; so does the fit, with a warning that
    says why (an error would make scikit-learn's own checks, whose y is often a
    function of the group column, fail)."""
    X5 = pd.DataFrame({
        "f0": [0.12573, 0.12573, -0.132105, 0.640423, 0.1049],
        "f1": [-0.535669, -0.535669, 0.361595, 1.304, 0.947081],
        "f2": [1.0, 1.0, 1.0, 2.0, 0.0],
        "g": [0, 0, 1, 2, 3],
    })
    model = MixedLMRegressor(group="g")
    with pytest.warns(UnboundedLikelihoodWarning, match="log-likelihood.*y leaves no residual"):
        model.fit(X5, np.array([1.0, 1.0, 0.0, 0.0, 1.0]))
    assert model.log_likelihood_ == np.inf


@pytest.mark.parametrize("seed", range(20))
def test_y_constant_within_groups_is_said_on_every_machine(seed):
    """y constant within every group: no maximum of the likelihood, on any BLAS kernel
    (the rule is scaled to yᵀy, far from rounding), whatever the data's seed."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(12), 8)
    frame = pd.DataFrame({"x": rng.normal(size=codes.size), "g": codes})
    y = rng.normal(size=12)[codes]
    with pytest.warns(UnboundedLikelihoodWarning):
        model = MixedLMRegressor(group="g", fixed_effects=[]).fit(frame, y)
    assert model.log_likelihood_ == np.inf


def test_a_school_level_response_is_said_to_have_no_maximum():
    """The tutorial readers' question: a school-level variable (schavg) as the response."""
    exam = load_exam().frame
    with pytest.warns(UnboundedLikelihoodWarning, match="no maximum"):
        fit = lmer("schavg ~ 1 + (1 | school)", exam)
    assert fit.log_likelihood_ == np.inf
