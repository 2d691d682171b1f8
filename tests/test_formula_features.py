"""What the formula engine adds: R's response rules, offsets, cbind, column types,
complete rows, long formulas, and fitted state that survives pickling."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import sklmixed
from sklmixed.design.formula import FormulaTerms, parse_formula


@pytest.fixture
def small():
    return pd.DataFrame(
        {
            "y": [0.3, -0.1, 1.2, 0.8, -0.5, 0.0, 0.9, 1.1],
            "x": [0.5, -1.0, 2.0, 1.5, -0.5, 0.0, 1.0, 3.0],
            "z": [1.0, 2.0, 0.5, 1.0, 3.0, 2.0, 1.0, 0.5],
            "n": [10, 12, 8, 9, 11, 10, 7, 12],
            "k": [3, 5, 2, 6, 1, 4, 7, 2],
            "sex": ["F", "M", "M", "F", "F", "M", "M", "F"],
            "school": [1, 1, 2, 2, 3, 3, 4, 4],
        }
    )


# -- the response --------------------------------------------------------------------


def test_response_on_the_right_is_dropped_with_rs_warning(small):
    # R: model.matrix(y ~ y + x, d) warns "the response appeared on the right-hand side
    # and was dropped" and has columns (Intercept), x; an interaction with it stays.
    with pytest.warns(UserWarning, match="the response appeared on the right-hand side"):
        design = FormulaTerms("y ~ y + x + (1 | school)").fit(small)
    assert design.fixed_names == ["(Intercept)", "x"]
    assert "y" not in design.variables
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        design = FormulaTerms("y ~ y:x + x + (1 | school)").fit(small)
    assert design.fixed_names == ["(Intercept)", "x", "y:x"]
    np.testing.assert_allclose(design.fixed_matrix(small)[:, 2], small.y * small.x)


def test_expression_responses(small):
    design = FormulaTerms("log(z) ~ x + (1 | school)").fit(small)
    assert design.response == "log(z)"
    np.testing.assert_allclose(design.response_vector(small), np.log(small.z))
    design = FormulaTerms("k/n ~ x + (1 | school)").fit(small)
    np.testing.assert_allclose(design.response_vector(small), small.k / small.n)
    design = FormulaTerms("cbind(k, n - k) ~ x + (1 | school)").fit(small)
    assert design.response == "cbind(k, n - k)"
    np.testing.assert_array_equal(
        design.response_vector(small), np.column_stack([small.k, small.n - small.k])
    )


def test_lmer_with_an_expression_response_equals_the_precomputed_column(small):
    data = small.assign(log_z=np.log(small.z))
    direct = sklmixed.lmer("log(z) ~ x + (1 | school)", data)
    column = sklmixed.lmer("log_z ~ x + (1 | school)", data)
    np.testing.assert_allclose(direct.fixed_effects_, column.fixed_effects_, rtol=1e-10)


@pytest.mark.parametrize(
    "text, message",
    [
        ("y + z ~ x", "reads as several terms"),
        ("scale(y) ~ x", "learns from the training data"),
        ("y ~ cbind(x, z)", "only allowed as the whole response"),
    ],
)
def test_malformed_responses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_formula(text)


def test_lmer_fits_offsets_and_refuses_a_binomial_response(small):
    """An offset is a known part of the linear predictor: the fit is that of y - offset,
    and predictions add it back (R's lmer does the same)."""
    with_offset = sklmixed.lmer("y ~ x + offset(2 * z) + (1 | school)", small)
    shifted = sklmixed.lmer("y ~ x + (1 | school)", small.assign(y=small.y - 2 * small.z))
    assert with_offset.log_likelihood_ == pytest.approx(shifted.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(with_offset.fixed_effects_, shifted.fixed_effects_, rtol=1e-9)
    np.testing.assert_allclose(
        with_offset.predict(small), shifted.predict(small) + 2 * small.z, rtol=1e-9
    )
    with pytest.raises(ValueError, match="binomial"):
        sklmixed.lmer("cbind(k, n - k) ~ x + (1 | school)", small)


# -- offsets -------------------------------------------------------------------------


def test_offsets_are_summed_at_fit_and_predict(small):
    design = FormulaTerms("y ~ x + offset(log(n)) + offset(2 * z) + (1 | school)")
    X, _ = design.fit_transform(small)
    assert design.fixed_names == ["(Intercept)", "x"]  # an offset is no column
    np.testing.assert_array_equal(X[:, 1], small.x)
    assert design.variables == ["x", "n", "z", "school"]
    np.testing.assert_allclose(design.offset_vector(small), np.log(small.n) + 2 * small.z)
    new = pd.DataFrame({"x": [0.0], "n": [np.e], "z": [1.5], "school": [9]})
    np.testing.assert_allclose(design.offset_vector(new), [1.0 + 3.0])
    assert FormulaTerms("y ~ x + (1 | school)").fit(small).offset_vector(small) is None
    with pytest.raises(ValueError, match="'n'"):
        design.offset_vector(new.drop(columns="n"))


@pytest.mark.parametrize(
    "text", ["y ~ x - offset(z)", "y ~ x:offset(z)", "y ~ (offset(z) | school)"]
)
def test_offsets_only_as_added_terms(text):
    with pytest.raises(ValueError, match="offset"):
        parse_formula(text)


# -- column types --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0.5, -1, 2, 1.5, -0.5, 0, 1, 3], dtype=object),
        pd.Series([np.float64(0.5), -1, 2, 1.5, np.int64(0), 0, 1, 3], dtype=object),
        pd.array([0.5, -1, 2, 1.5, -0.5, 0, 1, 3], dtype="Float64"),
    ],
    ids=["object floats and ints", "object numpy numbers", "Float64"],
)
def test_columns_of_numbers_are_numeric_whatever_their_dtype(small, values):
    data = small.assign(x=values)
    design = FormulaTerms("y ~ x + (1 | school)").fit(data)
    assert design.fixed_names == ["(Intercept)", "x"]
    np.testing.assert_allclose(design.fixed_matrix(data)[:, 1], np.asarray(values, dtype=float))


def test_nullable_dtypes_read_as_their_plain_equivalents(small):
    plain = small.assign(big=small.x > 0.7)
    nullable = plain.assign(
        n=plain.n.astype("Int64"),
        sex=plain.sex.astype("string"),
        big=plain.big.astype("boolean"),
        school=plain.school.astype("Int64"),
    )
    formula = "y ~ n + sex + big + (1 + sex | school)"
    X, (bar,) = FormulaTerms(formula).fit_transform(plain)
    X2, (bar2,) = FormulaTerms(formula).fit_transform(nullable)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(bar.Z, bar2.Z)
    np.testing.assert_array_equal(np.asarray(bar.labels), np.asarray(bar2.labels))


def test_a_stray_string_in_a_numeric_column_is_named(small):
    data = small.assign(x=pd.Series([0.5, -1, "n/a", 1.5, -0.5, "?", 1, 3], dtype=object))
    with pytest.raises(ValueError) as info:
        FormulaTerms("y ~ x + (1 | school)").fit(data)
    message = str(info.value)
    for piece in ("'x'", "'n/a'", "'?'", "row(s) 2, 5", "pd.to_numeric", "factor(x)"):
        assert piece in message
    # Asked for as a factor, the column is text, as R's factor() reads it (sorted as text).
    design = FormulaTerms("y ~ factor(x) + (1 | school)").fit(data)
    assert design.fixed_names[:3] == ["(Intercept)", "factor(x)-1", "factor(x)0.5"]


def test_other_mixed_object_columns_are_refused(small):
    data = small.assign(x=pd.Series([0.5, True, 2, 1.5, -0.5, 0, 1, 3], dtype=object))
    with pytest.raises(ValueError, match="'x' holds values of types"):
        FormulaTerms("y ~ x + (1 | school)").fit(data)


def test_factor_calls_and_their_levels(small):
    design = FormulaTerms('y ~ factor(sex, levels = c("M", "F")) + C(school) + (1 | sex)')
    design.fit(small)
    assert design.fixed_names == [
        "(Intercept)",
        'factor(sex, levels = c("M", "F"))F',
        "C(school)2",
        "C(school)3",
        "C(school)4",
    ]
    with pytest.raises(ValueError, match="'sex'.*'U'"):
        design.fixed_matrix(small.assign(sex="U"))


def test_logicals_at_predict_match_levels_by_value(small):
    data = small.assign(big=small.x > 0.7)
    design = FormulaTerms("y ~ big + sex + (1 | school)").fit(data)
    new = pd.DataFrame({"big": [True, False], "sex": ["M", "F"], "school": [1, 1]})
    np.testing.assert_array_equal(design.fixed_matrix(new), [[1, 1, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="'sex' has level"):
        design.fixed_matrix(new.assign(sex=[True, False]))


def test_group_columns_of_object_numbers(small):
    data = small.assign(school=small.school.astype(object))
    (bar,) = FormulaTerms("y ~ x + (1 | school)").fit(data).random_terms(data)
    assert bar.labels.dtype.kind == "i"
    data = small.assign(school=pd.Series([1, 1, 2, "n/a", 3, 3, 4, 4], dtype=object))
    with pytest.raises(ValueError, match="'school' mixes numbers and text"):
        FormulaTerms("y ~ x + (1 | school)").fit(data)


# -- missing values ------------------------------------------------------------------


def test_complete_rows_is_rs_na_omit(small):
    data = small.assign(
        x=small.x.where(small.index != 1), sex=small.sex.where(small.index != 4), y=np.nan
    )
    data.loc[6, "y"] = 0.0
    design = FormulaTerms("y ~ x + (1 + sex | school)")
    keep = design.complete_rows(data.assign(y=0.0))
    np.testing.assert_array_equal(keep, [True, False, True, True, False, True, True, True])
    keep = design.complete_rows(data)  # the response counts when present
    np.testing.assert_array_equal(keep, [False] * 6 + [True, False])
    keep = design.complete_rows(data.drop(columns="y"))
    np.testing.assert_array_equal(keep, [True, False, True, True, False, True, True, True])
    fitted = design.fit(data.assign(y=0.0)[keep])
    assert fitted.fixed_matrix(data.assign(y=0.0)[keep]).shape == (6, 2)
    with pytest.raises(ValueError, match=r"\['school'\]"):
        design.complete_rows(data.drop(columns="school"))


# -- long formulas, pickling -----------------------------------------------------------


def test_a_20000_term_formula_builds():
    repeated = parse_formula("y ~ " + " + ".join(["x"] * 20_000) + " + (1 | g)")
    assert repeated.fixed_terms.terms == (("x",),)
    assert len(repeated.bars) == 1
    distinct = parse_formula("y ~ " + " + ".join(f"x{i}" for i in range(20_000)))
    assert len(distinct.fixed_terms.terms) == 20_000
    assert distinct.fixed_terms.terms[-1] == ("x19999",)


def test_a_fitted_design_with_stateful_transforms_pickles(small):
    formula = (
        "y ~ poly(x, 2) + scale(z) + center(n) + factor(school) + sex + (1 + scale(z) | school)"
    )
    design = FormulaTerms(formula).fit(small)
    again = pickle.loads(pickle.dumps(design))
    new = small.iloc[[0, 3, 5]].assign(x=[10.0, -3.0, 0.25], z=[0.0, 9.0, 1.0], n=[1, 2, 3])
    assert again.fixed_names == design.fixed_names
    np.testing.assert_array_equal(again.fixed_matrix(new), design.fixed_matrix(new))
    (term,), (term_again,) = design.random_terms(new), again.random_terms(new)
    np.testing.assert_array_equal(term.Z, term_again.Z)
    # The state is the training data's: new data are centred on the training mean.
    X = again.fixed_matrix(new)
    col = again.fixed_names.index("center(n)")
    np.testing.assert_allclose(X[:, col], np.array([1, 2, 3]) - small.n.mean())


def test_allowed_functions_evaluate_and_are_named_as_r():
    # d <- data.frame(x = c(0.5, -1, 2, 1.5, -0.5, 0, 1, 3), z = c(1, 2, 0.5, 1, 3, 2, 1, 0.5))
    # model.matrix(~ I(x > 0) + pmin(x, 1) + pmax(x, z, 0.75) + round(x * 1.37, 1) +
    #   log(x + 2, base = 2) + I(!(x > 0) & z > 1) + as.numeric(x >= 1) + sqrt(abs(x)) +
    #   exp(-x^2) + I(x %% 2) + I(x %/% 2), d)
    d = pd.DataFrame({"x": [0.5, -1, 2, 1.5, -0.5, 0, 1, 3], "z": [1, 2, 0.5, 1, 3, 2, 1, 0.5]})
    rhs = (
        "I(x > 0) + pmin(x, 1) + pmax(x, z, 0.75) + round(x * 1.37, 1) + log(x + 2, base = 2)"
        " + I(!(x > 0) & z > 1) + as.numeric(x >= 1) + sqrt(abs(x)) + exp(-x^2) + I(x %% 2)"
        " + I(x %/% 2)"
    )
    design = FormulaTerms("~ " + rhs).fit(d)
    assert design.fixed_names == [
        "(Intercept)",
        "I(x > 0)TRUE",
        "pmin(x, 1)",
        "pmax(x, z, 0.75)",
        "round(x * 1.37, 1)",
        "log(x + 2, base = 2)",
        "I(!(x > 0) & z > 1)TRUE",
        "as.numeric(x >= 1)",
        "sqrt(abs(x))",
        "exp(-x^2)",
        "I(x%%2)",
        "I(x%/%2)",
    ]
    expected = np.array(
        [
            [1, 1, 0.5, 1.0, 0.7, 1.3219281, 0, 0, 0.7071068, 0.7788007831, 0.5, 0],
            [1, 0, -1.0, 2.0, -1.4, 0.0000000, 1, 0, 1.0000000, 0.3678794412, 1.0, -1],
            [1, 1, 1.0, 2.0, 2.7, 2.0000000, 0, 1, 1.4142136, 0.0183156389, 0.0, 1],
            [1, 1, 1.0, 1.5, 2.1, 1.8073549, 0, 1, 1.2247449, 0.1053992246, 1.5, 0],
            [1, 0, -0.5, 3.0, -0.7, 0.5849625, 1, 0, 0.7071068, 0.7788007831, 1.5, -1],
            [1, 0, 0.0, 2.0, 0.0, 1.0000000, 1, 0, 0.0000000, 1.0000000000, 0.0, 0],
            [1, 1, 1.0, 1.0, 1.4, 1.5849625, 0, 1, 1.0000000, 0.3678794412, 1.0, 0],
            [1, 1, 1.0, 3.0, 4.1, 2.3219281, 0, 1, 1.7320508, 0.0001234098, 1.0, 1],
        ]
    )
    np.testing.assert_allclose(design.fixed_matrix(d), expected, atol=5e-8)
