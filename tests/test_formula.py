"""lme4 formula parsing and design matrices (sklmixed.design.formula)."""

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklmixed.design.arrays import RawTerm
from sklmixed.design.formula import (
    FormulaTerms,
    ParsedFormula,
    RandomBar,
    parse_formula,
)

EXAM_CSV = Path(__file__).parent / "data" / "Exam.csv"


@pytest.fixture(scope="module")
def exam():
    if not EXAM_CSV.exists():
        pytest.skip("tests/data/Exam.csv is not there")
    return pd.read_csv(EXAM_CSV)


@pytest.fixture
def small():
    """Eight students in four schools, two per school."""
    return pd.DataFrame(
        {
            "y": [0.3, -0.1, 1.2, 0.8, -0.5, 0.0, 0.9, 1.1],
            "x": [0.5, -1.0, 2.0, 1.5, -0.5, 0.0, 1.0, 3.0],
            "z": [1.0, 2.0, 0.0, 1.0, 3.0, 2.0, 1.0, 0.0],
            "sex": ["F", "M", "M", "F", "F", "M", "M", "F"],
            "school": [1, 1, 2, 2, 3, 3, 4, 4],
            "batch": ["A", "A", "A", "A", "B", "B", "B", "B"],
            "cask": ["a", "a", "b", "b", "a", "a", "b", "b"],
        }
    )


def bar(lhs, *group, correlated=True, name=None):
    return RandomBar(lhs, tuple(group), correlated, name)


# -- parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("y ~ x + (1 | g)", ParsedFormula("y", "1 + x", (bar("1", "g"),))),
        ("y ~ x + (x | g)", ParsedFormula("y", "1 + x", (bar("1 + x", "g"),))),
        ("y ~ (1 + x | g)", ParsedFormula("y", "1", (bar("1 + x", "g"),))),
        ("y ~ (0 + x | g)", ParsedFormula("y", "1", (bar("0 + x", "g"),))),
        ("y ~ (x - 1 | g)", ParsedFormula("y", "1", (bar("0 + x", "g"),))),
        ("y ~ (-1 + x | g)", ParsedFormula("y", "1", (bar("0 + x", "g"),))),
        ("y ~ 0 + x + (1 | g)", ParsedFormula("y", "0 + x", (bar("1", "g"),))),
        ("y ~ x - 1 + (1 | g)", ParsedFormula("y", "0 + x", (bar("1", "g"),))),
        ("y ~ (1 | g)", ParsedFormula("y", "1", (bar("1", "g"),))),
        ("~ x + (1 | g)", ParsedFormula(None, "1 + x", (bar("1", "g"),))),
        ("x + (1 | g)", ParsedFormula(None, "1 + x", (bar("1", "g"),))),
        ("y ~ x", ParsedFormula("y", "1 + x", ())),
        ("y ~ ((1 | g))", ParsedFormula("y", "1", (bar("1", "g"),))),
        (
            "y ~ x * z + (1 | g) + (1 | h)",
            ParsedFormula("y", "1 + x * z", (bar("1", "g"), bar("1", "h"))),
        ),
        ("y ~ (1 | g1:g2)", ParsedFormula("y", "1", (bar("1", "g1", "g2"),))),
    ],
)
def test_parse_forms(text, expected):
    assert parse_formula(text) == expected


def test_bar_defaults_name_to_joined_group():
    assert bar("1", "g1", "g2").group_name == "g1:g2"
    assert parse_formula("y ~ (1 | g1:g2)").bars[0].group_name == "g1:g2"


def test_double_vert_expands_one_bar_per_term():
    parsed = parse_formula("y ~ x + (1 + x || g)")
    assert parsed.bars == (
        bar("1", "g", correlated=False),
        bar("0 + x", "g", correlated=False),
    )
    # Interactions are expanded first, as R's terms() does for lme4's expandDoubleVerts.
    lhs = [b.lhs for b in parse_formula("y ~ (x * z || g)").bars]
    assert lhs == ["1", "0 + x", "0 + z", "0 + x:z"]
    # No intercept: no "1" bar.
    lhs = [b.lhs for b in parse_formula("y ~ (0 + x + z || g)").bars]
    assert lhs == ["0 + x", "0 + z"]


def test_nesting_expands_as_lme4_inner_factor_first():
    parsed = parse_formula("strength ~ 1 + (1 | batch/cask)")
    assert [(b.group, b.group_name) for b in parsed.bars] == [
        (("cask", "batch"), "cask:batch"),
        (("batch",), "batch"),
    ]
    parsed = parse_formula("y ~ (1 | a/b/c)")
    # lme4 deparses the innermost factor with parentheses: c:(b:a).
    assert [(b.group, b.group_name) for b in parsed.bars] == [
        (("c", "b", "a"), "c:(b:a)"),
        (("b", "a"), "b:a"),
        (("a",), "a"),
    ]


def test_double_vert_and_nesting_combine_in_lme4_order():
    parsed = parse_formula("y ~ (1 + x || a/b)")
    assert [(b.lhs, b.group_name, b.correlated) for b in parsed.bars] == [
        ("1", "b:a", False),
        ("1", "a", False),
        ("0 + x", "b:a", False),
        ("0 + x", "a", False),
    ]


def test_r_power_becomes_python_power_only_inside_calls():
    parsed = parse_formula("y ~ I(x^2) + (a + b)^2 + (I(x^2) | g)")
    assert parsed.fixed == "1 + I(x**2) + (a + b)^2"
    assert parsed.bars[0].lhs == "1 + I(x**2)"


def test_dotted_names_are_columns_not_attributes():
    assert parse_formula("y ~ school.id + I(x.y^2)").fixed == "1 + school.id + I(`x.y`**2)"


@pytest.mark.parametrize(
    "text, quoted",
    [
        ("y ~ (1 | )", "(1 | )"),
        ("y ~ x + (1 school)", "(1 school)"),
        ("y ~ x + (1 | school", "(1 | school"),
        ("y ~ x + 1 | school)", "x + 1 | school)"),
        ("y ~ ( | g)", "( | g)"),
        ("y ~ x + 1 | g", "1 | g"),
        ("y ~ x + (1 | g + h)", "g + h"),
        ("y ~ x + (1 + | g)", "(1 + | g)"),
        ("y ~ x + (0 | g)", "(0 | g)"),
        ("y ~ x + (1 | g) - (1 | h)", "(1 | h)"),
        ("y + z ~ x", "y + z"),
        ("y ~ x ~ z", "y ~ x ~ z"),
        ("y ~ x +", "x +"),
        ("y ~ .", "."),
        ("y ~ ()", "()"),
        ("y ~ x[1]", "[1]"),
        ("y ~ I(x | z)", "I(x | z)"),
    ],
)
def test_malformed_formula_quotes_the_offending_piece(text, quoted):
    with pytest.raises(ValueError) as info:
        parse_formula(text)
    assert quoted in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "y ~ os.system(x)",
        "y ~ np.log(x)",
        "y ~ I(__import__('os'))",
        "y ~ I(x @ z)",
        "y ~ eval(x)",
    ],
)
def test_only_transforms_are_evaluated(text):
    with pytest.raises(ValueError):
        parse_formula(text)


def test_not_a_string():
    with pytest.raises(TypeError):
        parse_formula(None)


# -- design matrices -------------------------------------------------------------


def test_exam_cross_level_interaction(exam):
    design = FormulaTerms("normexam ~ standLRT * schavg + (1 + standLRT | school)").fit(exam)
    assert design.response == "normexam"
    assert design.variables == ["standLRT", "schavg", "school"]
    assert design.fixed_names == ["(Intercept)", "standLRT", "schavg", "standLRT:schavg"]
    X = design.fixed_matrix(exam)
    assert X.dtype == np.float64 and X.shape == (len(exam), 4)
    np.testing.assert_array_equal(X[:, 0], 1.0)
    np.testing.assert_array_equal(X[:, 3], exam.standLRT * exam.schavg)
    (term,) = design.random_terms(exam)
    assert isinstance(term, RawTerm)
    assert term.group_name == "school"
    assert term.column_names == ("(Intercept)", "standLRT")
    assert term.correlated
    np.testing.assert_array_equal(term.Z[:, 1], exam.standLRT)
    np.testing.assert_array_equal(term.labels, exam.school)
    np.testing.assert_array_equal(design.response_vector(exam), exam.normexam)


def test_exam_categorical_names(exam):
    design = FormulaTerms("normexam ~ standLRT + sex + schgend + (1 | school)").fit(exam)
    # Strings: levels sorted as R's read.csv sorts them, first level the reference.
    assert design.fixed_names == ["(Intercept)", "standLRT", "sexM", "schgendgirls", "schgendmixed"]
    X = design.fixed_matrix(exam)
    np.testing.assert_array_equal(X[:, 2], exam.sex == "M")
    # A pandas Categorical keeps its own level order, as an R factor does (mlmRev's).
    mlmrev = exam.assign(
        schgend=pd.Categorical(exam.schgend, categories=["mixed", "boys", "girls"])
    )
    design = FormulaTerms("normexam ~ standLRT + sex + schgend + (1 | school)").fit(mlmrev)
    assert design.fixed_names == ["(Intercept)", "standLRT", "sexM", "schgendboys", "schgendgirls"]


def test_exam_poly_and_categorical_slope(exam):
    design = FormulaTerms("normexam ~ standLRT + I(standLRT^2) + (0 + sex | school)").fit(exam)
    assert design.fixed_names == ["(Intercept)", "standLRT", "I(standLRT^2)"]
    np.testing.assert_allclose(design.fixed_matrix(exam)[:, 2], exam.standLRT**2)
    (term,) = design.random_terms(exam)
    # No intercept: both dummies, as R's model.matrix.
    assert term.column_names == ("sexF", "sexM")
    np.testing.assert_array_equal(term.Z.sum(axis=1), 1.0)


def test_power_inside_I_is_arithmetic(small):
    design = FormulaTerms("y ~ x + I(x^2) + I((x + 1)^2/2) + (1 | school)").fit(small)
    assert design.fixed_names == ["(Intercept)", "x", "I(x^2)", "I((x + 1)^2/2)"]
    X = design.fixed_matrix(small)
    np.testing.assert_allclose(X[:, 2], small.x**2)
    np.testing.assert_allclose(X[:, 3], (small.x + 1) ** 2 / 2)


def test_power_outside_I_is_interaction(small):
    design = FormulaTerms("y ~ (x + z + sex)^2 + (1 | school)").fit(small)
    assert design.fixed_names == [
        "(Intercept)",
        "x",
        "z",
        "sexM",
        "x:z",
        "x:sexM",
        "z:sexM",
    ]


def test_interaction_names_follow_r_variable_order(small):
    # R names the column after the order the variables first appear: x before sex.
    design = FormulaTerms("y ~ x + sex:x + (1 | school)").fit(small)
    assert design.fixed_names == ["(Intercept)", "x", "x:sexM"]


def test_logical_column_is_a_factor_as_in_r(small):
    data = small.assign(big=small.x > 0.7)
    design = FormulaTerms("y ~ big + (1 | school)").fit(data)
    assert design.fixed_names == ["(Intercept)", "bigTRUE"]
    np.testing.assert_array_equal(design.fixed_matrix(data)[:, 1], data.big)


def test_factor_of_a_numeric_column(small):
    design = FormulaTerms("y ~ factor(school) + (1 | sex)").fit(small)
    assert design.fixed_names == [
        "(Intercept)",
        "factor(school)2",
        "factor(school)3",
        "factor(school)4",
    ]


def test_double_vert_keeps_a_factors_columns_together(small):
    design = FormulaTerms("y ~ x + (1 + sex + x || school)").fit(small)
    terms = design.random_terms(small)
    assert [(t.column_names, t.correlated) for t in terms] == [
        (("(Intercept)",), False),
        (("sexF", "sexM"), True),  # one unstructured block, as lme4 fits it
        (("x",), False),
    ]
    assert {t.group_name for t in terms} == {"school"}


def test_nested_and_interaction_group_labels(small):
    design = FormulaTerms("y ~ 1 + (1 | batch/cask) + (1 | batch:cask)").fit(small)
    nested, outer, interaction = design.random_terms(small)
    assert (nested.group_name, outer.group_name, interaction.group_name) == (
        "cask:batch",
        "batch",
        "batch:cask",
    )
    # Labels follow the factor's name, as lme4's levels do ("a:A" for cask:batch).
    assert list(nested.labels[:4]) == ["a:A", "a:A", "b:A", "b:A"]
    assert list(interaction.labels[:4]) == ["A:a", "A:a", "A:b", "A:b"]
    assert list(outer.labels[:4]) == ["A"] * 4


def test_numeric_group_labels_in_interactions_look_like_r(small):
    data = small.assign(school=small.school.astype(float))
    (term,) = FormulaTerms("y ~ (1 | school:sex)").fit(data).random_terms(data)
    assert term.labels[0] == "1:F"


# -- predict time ----------------------------------------------------------------


def test_new_data_reuses_levels_and_transforms(small):
    design = FormulaTerms("y ~ center(x) + sex + (1 + sex | school)").fit(small)
    new = pd.DataFrame({"x": [10.0], "sex": ["M"], "school": [2]})
    X = design.fixed_matrix(new)
    # center() subtracts the training mean; one level in new data still gives sexM.
    np.testing.assert_allclose(X, [[1.0, 10.0 - small.x.mean(), 1.0]])
    (term,) = design.random_terms(new)
    assert term.column_names == ("(Intercept)", "sexM")
    np.testing.assert_array_equal(term.Z, [[1.0, 1.0]])


def test_new_data_categorical_with_other_level_order(small):
    design = FormulaTerms("y ~ sex + (1 | school)").fit(small)
    new = pd.DataFrame(
        {"sex": pd.Categorical(["M", "F"], categories=["M", "F", "X"]), "school": [1, 1]}
    )
    np.testing.assert_array_equal(design.fixed_matrix(new), [[1.0, 1.0], [1.0, 0.0]])


def test_unseen_level_names_variable_and_level(small):
    design = FormulaTerms("y ~ x + sex + (1 | school)").fit(small)
    new = pd.DataFrame({"x": [0.0, 1.0], "sex": ["F", "U"], "school": [1, 1]})
    with pytest.raises(ValueError, match=r"'sex'.*'U'"):
        design.fixed_matrix(new)


def test_unseen_level_in_random_slope(small):
    design = FormulaTerms("y ~ x + (0 + sex | school)").fit(small)
    new = pd.DataFrame({"x": [0.0], "sex": ["U"], "school": [1]})
    with pytest.raises(ValueError, match=r"'sex'.*'U'"):
        design.random_terms(new)


def test_unseen_level_of_factor_call(small):
    design = FormulaTerms("y ~ factor(school) + (1 | sex)").fit(small)
    with pytest.raises(ValueError, match=r"'school'.*\b9\b"):
        design.fixed_matrix(pd.DataFrame({"school": [9], "sex": ["F"]}))


def test_unseen_group_label_is_not_an_error(small):
    design = FormulaTerms("y ~ x + (1 | school)").fit(small)
    (term,) = design.random_terms(pd.DataFrame({"x": [0.0], "school": [99]}))
    assert list(term.labels) == [99]


def test_missing_column_is_named(small):
    design = FormulaTerms("y ~ x + z + (1 | school)").fit(small)
    with pytest.raises(ValueError, match=r"\['z'\]"):
        design.fixed_matrix(small.drop(columns="z"))
    with pytest.raises(ValueError, match="'school'"):
        FormulaTerms("y ~ x + (1 | school)").fit(small.drop(columns="school"))


def test_missing_values_are_an_error_naming_the_column(small):
    data = small.assign(x=small.x.where(small.index != 3))
    with pytest.raises(ValueError, match="'x'"):
        FormulaTerms("y ~ x + (1 | school)").fit(data)
    data = small.assign(school=small.school.where(small.index != 3))
    with pytest.raises(ValueError, match="'school'"):
        FormulaTerms("y ~ x + (1 | school)").fit(data)
    design = FormulaTerms("y ~ x + (1 | school)").fit(small)
    with pytest.raises(ValueError, match="'y'"):
        design.response_vector(small.assign(y=np.nan))


def test_response_only_when_the_formula_has_one(small):
    design = FormulaTerms("~ x + (1 | school)").fit(small)
    assert design.response is None
    with pytest.raises(ValueError, match="no response"):
        design.response_vector(small)
    # The response is not needed to build the design at predict time.
    design = FormulaTerms("y ~ x + (1 | school)").fit(small)
    assert design.fixed_matrix(small.drop(columns="y")).shape == (8, 2)


def test_not_fitted_and_not_a_frame(small):
    design = FormulaTerms("y ~ x + (1 | school)")
    with pytest.raises(RuntimeError, match="fit"):
        design.fixed_matrix(small)
    with pytest.raises(TypeError, match="DataFrame"):
        design.fit(small.to_numpy())


def test_design_pickles(small):
    design = FormulaTerms("y ~ center(x) * sex + (1 + x | school)").fit(small)
    again = pickle.loads(pickle.dumps(design))
    np.testing.assert_array_equal(again.fixed_matrix(small), design.fixed_matrix(small))
    assert again.fixed_names == design.fixed_names


def test_response_must_be_numeric(small):
    design = FormulaTerms("sex ~ x + (1 | school)").fit(small)
    with pytest.raises(ValueError, match="'sex' is not numeric"):
        design.response_vector(small)


# -- numeric products: R's names, and the products themselves ------------------------


@pytest.mark.parametrize(
    "rhs, names",
    # R: colnames(model.matrix(~ <rhs>)) with numeric x and z.
    [
        ("1 + x", ["(Intercept)", "x"]),
        ("x * z", ["(Intercept)", "x", "z", "x:z"]),
        ("0 + x + z:x", ["x", "x:z"]),
        ("z:x + x", ["(Intercept)", "x", "z:x"]),
        ("x + x:z:x", ["(Intercept)", "x", "x:z"]),
        ("(x + z)^2", ["(Intercept)", "x", "z", "x:z"]),
        ("`x` + z - 1", ["x", "z"]),
    ],
)
def test_numeric_products_match_r(small, rhs, names):
    formula = f"y ~ {rhs} + ({rhs} | school)"
    design = FormulaTerms(formula).fit(small)
    assert design.fixed_names == names
    expected = np.column_stack(
        [
            np.prod([small[v] for v in name.split(":")], axis=0)
            if name != "(Intercept)"
            else np.ones(len(small))
            for name in names
        ]
    )
    np.testing.assert_array_equal(design.fixed_matrix(small), expected)
    (term,) = design.random_terms(small)
    assert list(term.column_names) == names
    np.testing.assert_array_equal(term.Z, expected)


def test_numeric_column_turned_text_at_predict_is_named(small):
    design = FormulaTerms("y ~ x + (1 | school)").fit(small)
    with pytest.raises(ValueError, match="'x'.*numeric in the training data"):
        design.fixed_matrix(small.assign(x=small.sex))


@pytest.mark.parametrize(
    "formula, column",
    [
        ("y ~ x + (1 | school)", "x"),
        ("y ~ x:z + (1 | school)", "x:z"),
        ("y ~ log(z) + (1 | school)", "log(z)"),  # log(0)
        ("y ~ 1 + (x | school)", "x"),
    ],
)
def test_non_finite_model_column_is_named(small, formula, column):
    data = small.assign(x=small.x.where(small.x != 2.0, np.inf))
    with pytest.raises(ValueError, match=f"Column '{re.escape(column)}' .*NaN or infinite"):
        FormulaTerms(formula).fit(data)


def test_overflowing_model_column_is_named(small):
    data = small.assign(x=small.x * 1e160)
    with pytest.raises(ValueError, match="Column 'x' .*beyond 1e\\+150"):
        FormulaTerms("y ~ x + (1 | school)").fit(data)


def test_categorical_group_keeps_its_level_order(small):
    data = small.assign(batch=pd.Categorical(small.batch, categories=["B", "A", "unused"]))
    (term,) = FormulaTerms("y ~ x + (1 | batch)").fit(data).random_terms(data)
    np.testing.assert_array_equal(np.asarray(term.labels, dtype=object), small.batch)
    # As R's factor: levels in the categories' order, unused ones dropped.
    from sklmixed import lmer

    fit = lmer("y ~ x + (1 | batch)", data)
    assert list(fit.levels_["batch"]) == ["B", "A"]
    assert list(fit.random_effects_["batch"].index) == ["B", "A"]


@pytest.mark.parametrize(
    "column",
    [
        pd.array([0.5, None, 2.0, 1.5, -0.5, 0.0, 1.0, 3.0], dtype="Float64"),
        pd.array([1, None, 2, 1, 3, 2, 1, 0], dtype="Int64"),
        pd.Categorical(["a", None, "b", "a", "b", "a", "b", "a"]),
        np.array([0.5, np.nan, 2.0, 1.5, -0.5, 0.0, 1.0, 3.0]),
    ],
    ids=["Float64", "Int64", "categorical", "float"],
)
def test_missing_values_of_any_dtype_are_named_before_conversion(small, column):
    data = small.assign(w=column)
    with pytest.raises(ValueError, match="Column 'w' has 1 missing value.*first at row 1"):
        FormulaTerms("y ~ w + (1 | school)").fit(data)
    with pytest.raises(ValueError, match="Column 'w' has 1 missing value.*first at row 1"):
        FormulaTerms("y ~ x + (1 | w)").fit(data)
