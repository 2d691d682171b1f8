"""Bad and awkward GLMM input: each a clear error or warning naming the column."""

import numpy as np
import pandas as pd
import pytest

from sklmixed import glmer
from sklmixed.design.response import read_response, separated_columns


def _binary_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), n // 20)
    x = rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(scale=0.7, size=20)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


def test_unknown_family_and_link():
    df = _binary_frame()
    with pytest.raises(ValueError, match="family must be one of"):
        glmer("y ~ x + (1 | g)", df, family="gamma")
    with pytest.raises(ValueError, match="link 'log' is not available for family 'binomial'"):
        glmer("y ~ x + (1 | g)", df, link="log")


def test_binomial_values_outside_01_name_the_column():
    df = _binary_frame().assign(y=lambda d: d.y * 3)
    with pytest.raises(ValueError, match=r"binomial response 'y' has values outside \[0, 1\]"):
        glmer("y ~ x + (1 | g)", df)


def test_proportion_without_weights_is_refused():
    df = _binary_frame().assign(y=lambda d: np.where(d.y == 1, 0.5, 0.25))
    with pytest.raises(ValueError, match="proportion needs the number of trials as weights"):
        glmer("y ~ x + (1 | g)", df)


def test_three_level_factor_is_refused():
    df = _binary_frame().assign(y=lambda d: np.array(["a", "b", "c"] * 70)[: len(d)])
    with pytest.raises(ValueError, match="factor with 3 level"):
        glmer("y ~ x + (1 | g)", df)


def test_text_levels_are_sorted_and_said():
    df = _binary_frame()
    text = df.assign(y=np.where(df.y == 1, "yes", "no"))
    with pytest.warns(UserWarning, match="the first, 'no', is the failure"):
        fit_text = glmer("y ~ x + (1 | g)", text)
    fit_01 = glmer("y ~ x + (1 | g)", df)
    np.testing.assert_allclose(fit_text.fixed_effects_, fit_01.fixed_effects_, rtol=1e-8)
    # A Categorical's order is R's factor order: the first category is the failure.
    cat = df.assign(y=pd.Categorical(np.where(df.y == 1, "no", "yes"), categories=["yes", "no"]))
    fit_cat = glmer("y ~ x + (1 | g)", cat)
    np.testing.assert_allclose(fit_cat.fixed_effects_, fit_01.fixed_effects_, rtol=1e-8)


def test_nan_and_inf_name_the_column():
    df = _binary_frame().astype({"y": float})
    df.loc[3, "y"] = np.inf
    with pytest.raises(ValueError, match="'y' has 1 NaN or infinite"):
        glmer("y ~ x + (1 | g)", df)
    with pytest.raises(ValueError, match="'y'"):
        glmer("y ~ x + (1 | g)", df.assign(y=lambda d: d.y.where(d.index != 3, np.nan)), na_action="fail")


def test_poisson_negative_and_non_integer_counts():
    df = _binary_frame().assign(c=lambda d: d.y * 2 + 1)
    with pytest.raises(ValueError, match="Poisson response 'c' has 1 negative"):
        glmer("c ~ x + (1 | g)", df.assign(c=lambda d: np.where(d.index == 5, -1, d.c)), family="poisson")
    with pytest.warns(UserWarning, match="Poisson response 'c' has non-integer values"):
        glmer("c ~ x + (1 | g)", df.assign(c=lambda d: d.c + 0.5), family="poisson")
    with pytest.raises(ValueError, match="Poisson response 'y' is categorical or text"):
        glmer("y ~ x + (1 | g)", df.assign(y=lambda d: d.y.map({0: "a", 1: "b"})), family="poisson")


def test_cbind_checks():
    df = _binary_frame().assign(s=lambda d: d.y + 1, f=2)
    with pytest.raises(ValueError, match="successes and failures must be non-negative"):
        glmer("cbind(s, f - 3) ~ x + (1 | g)", df)
    with pytest.raises(ValueError, match="no trials"):
        glmer("cbind(s * 0, f * 0) ~ x + (1 | g)", df)


def test_bad_offset_names_the_argument():
    df = _binary_frame().assign(c=lambda d: d.y + 1, e=0.0)
    with pytest.raises(ValueError, match="offset .* NaN or infinite"):
        glmer("c ~ x + (1 | g)", df, family="poisson", offset=np.log(df.e.to_numpy()))


def test_nagq_above_one_needs_one_scalar_term():
    df = _binary_frame()
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        glmer("y ~ x + (1 + x | g)", df, nAGQ=5)
    with pytest.raises(ValueError, match="nAGQ must be between 0 and 25"):
        glmer("y ~ x + (1 | g)", df, nAGQ=30)


def test_all_zero_groups_warn_with_their_names_and_fit_is_finite():
    df = _binary_frame()
    df.loc[df.g == "3", "y"] = 0
    with pytest.warns(UserWarning, match=r"Grouping factor .g.: \d+ of 20 levels have only failures \(.*3"):
        fit = glmer("y ~ x + (1 | g)", df)
    assert np.isfinite(fit.log_likelihood_) and np.isfinite(fit.fixed_effects_).all()
    assert fit.random_effects_["g"].loc["3"].iloc[0] < fit.random_effects_["g"].iloc[:, 0].median()


def test_perfect_separation_warns_naming_the_effect():
    df = _binary_frame()
    df["z"] = (df.y == 1).astype(float) - 0.5  # z > 0 exactly where y = 1
    with pytest.warns(UserWarning, match=r"separation: the fixed effects \[.*'z'"):
        fit = glmer("y ~ z + (1 | g)", df)
    assert np.isfinite(fit.log_likelihood_)
    assert abs(fit.fixed_effects_["z"]) > 5  # runs away along the separating direction


def test_no_separation_on_ordinary_data():
    df = _binary_frame()
    X = np.column_stack([np.ones(len(df)), df.x])
    assert separated_columns(X, df.y.to_numpy(float), ["(Intercept)", "x"]) == []


def test_read_response_kinds():
    assert read_response("binomial", np.array([True, False]), 2).kind == "logical"
    r = read_response("binomial", np.array([[1.0, 3.0], [2.0, 0.0]]), 2, "cbind(s, f)")
    np.testing.assert_allclose(r.y, [0.25, 1.0])
    np.testing.assert_allclose(r.weights, [4.0, 2.0])
    with pytest.raises(ValueError, match="X has 4 rows but the response .c. has 3"):
        read_response("poisson", np.arange(3.0), 4, "c")


def test_no_random_effects_is_a_clear_error():
    with pytest.raises(ValueError, match=r"needs a random-effects term such as \(1 \| g\)"):
        glmer("y ~ x", _binary_frame())


def test_missing_response_rows_are_omitted_and_counted():
    df = _binary_frame().astype({"y": float})
    df.loc[[3, 7], "y"] = np.nan
    fit = glmer("y ~ x + (1 | g)", df)
    assert fit.na_dropped_.tolist() == [3, 7]
    assert "(2 observations deleted due to missingness)" in str(fit.summary())
