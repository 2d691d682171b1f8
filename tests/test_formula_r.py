"""R's model.matrix, column for column: names and values from R 4.2, pasted as literals.

The data are eight Exam rows (rounded), the same data frame in R and here:

    d <- data.frame(
      normexam = c(0.2613, 0.1341, -1.7239, 0.3281, 0.0043, 1.5792, 1.2405, 0.6107),
      standLRT = c(0.6191, 0.2058, -1.3646, 0.4538, -0.6207, 0.1232, 0.7017, 0.2885),
      schavg = c(0.1662, 0.1662, 0.1662, 0.6351, 0.6351, 0.3951, 0.3951, 0.3951),
      sex = c("F", "F", "M", "M", "M", "F", "F", "F"),
      schgend = c("mixed", "mixed", "mixed", "boys", "boys", "girls", "girls", "girls"),
      school = c(1, 1, 1, 11, 11, 2, 2, 2), stringsAsFactors = TRUE)
    d$high <- d$standLRT > 0.3

Each case gives the R command; values were printed with ``format(m, digits = 15)``.
"""

import numpy as np
import pandas as pd
import pytest

from sklmixed.design.formula import FormulaTerms

S = [0.6191, 0.2058, -1.3646, 0.4538, -0.6207, 0.1232, 0.7017, 0.2885]  # standLRT
M = [0, 0, 1, 1, 1, 0, 0, 0]  # sex == "M"
ONE = [1.0] * 8


@pytest.fixture
def d():
    frame = pd.DataFrame(
        {
            "normexam": [0.2613, 0.1341, -1.7239, 0.3281, 0.0043, 1.5792, 1.2405, 0.6107],
            "standLRT": S,
            "schavg": [0.1662, 0.1662, 0.1662, 0.6351, 0.6351, 0.3951, 0.3951, 0.3951],
            "sex": ["F", "F", "M", "M", "M", "F", "F", "F"],
            "schgend": ["mixed", "mixed", "mixed", "boys", "boys", "girls", "girls", "girls"],
            "school": [1, 1, 1, 11, 11, 2, 2, 2],
        }
    )
    return frame.assign(high=frame.standLRT > 0.3)


def _levels(values, level):
    return [1.0 if v == level else 0.0 for v in values]


GEND = ["mixed"] * 3 + ["boys"] * 2 + ["girls"] * 3
SEX = ["F", "F", "M", "M", "M", "F", "F", "F"]

# fmt: off
CASES = {
    # model.matrix(~ standLRT + sex + schgend, d)
    "standLRT + sex + schgend": (
        ["(Intercept)", "standLRT", "sexM", "schgendgirls", "schgendmixed"],
        [ONE, S, M, _levels(GEND, "girls"), _levels(GEND, "mixed")],
    ),
    # model.matrix(~ standLRT * sex, d)
    "standLRT * sex": (
        ["(Intercept)", "standLRT", "sexM", "standLRT:sexM"],
        [ONE, S, M, [s * m for s, m in zip(S, M)]],
    ),
    # model.matrix(~ 0 + sex + schgend, d): indicators for the first factor only
    "0 + sex + schgend": (
        ["sexF", "sexM", "schgendgirls", "schgendmixed"],
        [_levels(SEX, "F"), M, _levels(GEND, "girls"), _levels(GEND, "mixed")],
    ),
    # model.matrix(~ 0 + standLRT:schgend, d)
    "0 + standLRT:schgend": (
        ["standLRT:schgendboys", "standLRT:schgendgirls", "standLRT:schgendmixed"],
        [[s * g for s, g in zip(S, _levels(GEND, lev))] for lev in ("boys", "girls", "mixed")],
    ),
    # model.matrix(~ sex:schgend, d): no main effects, so indicators for both
    "sex:schgend": (
        [
            "(Intercept)",
            "sexF:schgendboys",
            "sexM:schgendboys",
            "sexF:schgendgirls",
            "sexM:schgendgirls",
            "sexF:schgendmixed",
            "sexM:schgendmixed",
        ],
        [ONE]
        + [
            [a * b for a, b in zip(_levels(SEX, sex), _levels(GEND, gend))]
            for gend in ("boys", "girls", "mixed")
            for sex in ("F", "M")
        ],
    ),
    # model.matrix(~ schgend + standLRT:schgend, d): named in order of appearance
    "schgend + standLRT:schgend": (
        [
            "(Intercept)",
            "schgendgirls",
            "schgendmixed",
            "schgendboys:standLRT",
            "schgendgirls:standLRT",
            "schgendmixed:standLRT",
        ],
        [ONE, _levels(GEND, "girls"), _levels(GEND, "mixed")]
        + [[s * g for s, g in zip(S, _levels(GEND, lev))] for lev in ("boys", "girls", "mixed")],
    ),
    # model.matrix(~ standLRT + sex:standLRT, d)
    "standLRT + sex:standLRT": (
        ["(Intercept)", "standLRT", "standLRT:sexM"],
        [ONE, S, [s * m for s, m in zip(S, M)]],
    ),
    # model.matrix(~ poly(standLRT, 2), d)
    "poly(standLRT, 2)": (
        ["(Intercept)", "poly(standLRT, 2)1", "poly(standLRT, 2)2"],
        [
            ONE,
            [0.305976220484488, 0.0834333750357614, -0.762154054174693, 0.2169698513756701,
             -0.361598470508329, 0.0389571131580338, 0.350452482362216, 0.127963482266852],
            [0.306163775395785, -0.2782920773708337, 0.485518738319562, 0.0331346982660161,
             -0.465345277253394, -0.3558550556920029, 0.462213443764780, -0.187538245429913],
        ],
    ),
    # model.matrix(~ poly(standLRT, degree = 3, raw = TRUE), d)
    "poly(standLRT, degree = 3, raw = TRUE)": (
        ["(Intercept)"] + [f"poly(standLRT, degree = 3, raw = TRUE){k}" for k in (1, 2, 3)],
        [ONE, S, [s**2 for s in S], [s**3 for s in S]],
    ),
    # model.matrix(~ scale(standLRT), d)
    "scale(standLRT)": (
        ["(Intercept)", "scale(standLRT)"],
        [
            ONE,
            [0.809536986501423, 0.22074396138741, -2.01647008806589, 0.574048268738669,
             -0.956699627426363, 0.10307083321316, 0.927210114675673, 0.338559550975914],
        ],
    ),
    # model.matrix(~ factor(school), d): numeric order, printed as R prints numbers
    "factor(school)": (
        ["(Intercept)", "factor(school)2", "factor(school)11"],
        [ONE, [0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]],
    ),
    # model.matrix(~ high, d) and model.matrix(~ 0 + high, d): a logical is a factor
    "high": (["(Intercept)", "highTRUE"], [ONE, [1, 0, 0, 1, 0, 0, 1, 0]]),
    "0 + high": (["highFALSE", "highTRUE"], [[0, 1, 1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 0, 0, 1, 0]]),
    # model.matrix(~ I(standLRT^2) + log(schavg) + I((standLRT + 1)^2/2), d)
    "I(standLRT^2) + log(schavg) + I((standLRT + 1)^2/2)": (
        ["(Intercept)", "I(standLRT^2)", "log(schavg)", "I((standLRT + 1)^2/2)"],
        [
            ONE,
            [s**2 for s in S],
            [-1.79456339656079] * 3 + [-0.453972812173208] * 2 + [-0.928616381564792] * 3,
            [1.310742405, 0.72697682, 0.06646658, 1.05676722, 0.071934245, 0.63078912,
             1.447891445, 0.830116125],
        ],
    ),
}
# fmt: on


@pytest.mark.parametrize("rhs", CASES)
def test_model_matrix_matches_r(d, rhs):
    names, columns = CASES[rhs]
    design = FormulaTerms(f"normexam ~ {rhs} + (1 | school)").fit(d)
    assert design.fixed_names == names
    np.testing.assert_allclose(design.fixed_matrix(d), np.column_stack(columns), rtol=1e-12)


@pytest.mark.parametrize("rhs", ["sex + schgend", "poly(standLRT, 2)", "0 + high"])
def test_the_same_coding_in_a_random_effects_bar(d, rhs):
    # lme4 builds a bar's columns with model.matrix(~ lhs) as well.
    design = FormulaTerms(f"normexam ~ 1 + ({rhs} | school)").fit(d)
    (term,) = design.random_terms(d)
    fixed = FormulaTerms(f"normexam ~ {rhs} + (1 | school)").fit(d)
    assert list(term.column_names) == fixed.fixed_names
    np.testing.assert_array_equal(term.Z, fixed.fixed_matrix(d))


def test_poly_and_scale_on_new_data_use_the_training_state(d):
    # p <- poly(d$standLRT, 2); predict(p, c(-2, 0, 0.5, 3))
    # s <- scale(d$standLRT); (c(-2, 0, 0.5, 3) - attr(s, "scaled:center")) /
    #     attr(s, "scaled:scale")
    design = FormulaTerms("normexam ~ poly(standLRT, 2) + scale(standLRT) + (1 | school)")
    design.fit(d)
    new = pd.DataFrame({"standLRT": [-2.0, 0.0, 0.5, 3.0], "school": [1, 1, 2, 2]})
    expected = [
        [1.0, -1.1042874294423455, 2.1373455113666648, -2.9216699142392328],
        [1.0, -0.0273803621850176, -0.4472510673206510, -0.0724416291484336],
        [1.0, 0.2418464046293144, 0.1041724572583462, 0.6398654421242662],
        [1.0, 1.5879802387009743, 10.046726095658288, 4.2014007984877653],
    ]
    np.testing.assert_allclose(design.fixed_matrix(new), expected, rtol=1e-12)


def test_contrasts_follow_rs_marginality_rule():
    # colnames(model.matrix(~ x:z + x:f, d)): x:f is coded by contrasts because x (the
    # term without f) is contained in the earlier term x:z; in ~ x:z:g + x:f (ordered
    # x:f, x:z:g) x:z is in no earlier term, so g gets indicators.
    d = pd.DataFrame(
        {
            "x": [0.5, -1, 2, 1.5, -0.5, 0, 1, 3],
            "z": [1.0, 2, 0, 1, 3, 2, 1, 0],
            "f": list("abcabcab"),
            "g": list("uuvvuvuv"),
        }
    )
    names = FormulaTerms("~ x:z + x:f").fit(d).fixed_names
    assert names == ["(Intercept)", "x:z", "x:fb", "x:fc"]
    names = FormulaTerms("~ x:z:g + x:f").fit(d).fixed_names
    assert names == ["(Intercept)", "x:fa", "x:fb", "x:fc", "x:z:gu", "x:z:gv"]
    # colnames(model.matrix(~ 0 + x + f:g, d)); colnames(model.matrix(~ f * g - g, d))
    assert FormulaTerms("~ 0 + x + f:g").fit(d).fixed_names == [
        "x", "fa:gu", "fb:gu", "fc:gu", "fa:gv", "fb:gv", "fc:gv"
    ]  # fmt: skip
    assert FormulaTerms("~ f * g - g").fit(d).fixed_names == [
        "(Intercept)", "fb", "fc", "fa:gv", "fb:gv", "fc:gv"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "rhs, labels",
    # attr(terms(~ <rhs>), "term.labels")
    [
        ("a + b:a + c:b:a + d", ["a", "d", "a:b", "a:b:c"]),
        ("(a + b + c)^2 - a:b", ["a", "b", "c", "a:c", "b:c"]),
        ("a/b + c %in% d", ["a", "a:b", "c:d"]),
        ("(a + b)/c", ["a", "b", "a:b:c"]),
    ],
)
def test_term_algebra_matches_rs_terms(rhs, labels):
    d = pd.DataFrame({v: np.arange(6.0) ** (i + 1) for i, v in enumerate("abcd")})
    names = FormulaTerms(f"~ {rhs}").fit(d).fixed_names
    assert names == ["(Intercept)"] + labels


@pytest.mark.parametrize(
    "rhs, name",
    # deparse(quote(...)) in R
    [
        ("I(a %% 2)", "I(a%%2)"),
        ("I(a %/% 2)", "I(a%/%2)"),
        ("log(a, base = 2)", "log(a, base = 2)"),
        ("I(1e-3*a)", "I(0.001 * a)"),
        ("I(100000*a)", "I(1e+05 * a)"),
        ("I(.5*a)", "I(0.5 * a)"),
        ("I(2L*a)", "I(2L * a)"),
        ("I(0.0001*a)", "I(1e-04 * a)"),
        ("I(123456*a)", "I(123456 * a)"),
        ("I(a^-1)", "I(a^-1)"),
        ("I(2*(a+1))", "I(2 * (a + 1))"),
    ],
)
def test_names_deparse_as_r(rhs, name):
    d = pd.DataFrame({"a": np.arange(1.0, 7.0)})
    assert FormulaTerms(f"~ {rhs}").fit(d).fixed_names == ["(Intercept)", name]


def test_unused_levels_are_dropped_as_lme4_drops_them():
    # d$f <- factor(c("a","b","c","a","b","c","a","b"), levels = c("c", "a", "b", "zz"))
    # names(fixef(lmer(y ~ f + (1 | g), d))): "(Intercept)" "fa" "fb" (lme4 builds its
    # model frame with drop.unused.levels = TRUE; model.matrix alone would add "fzz")
    d = pd.DataFrame(
        {
            "y": np.arange(8.0),
            "f": pd.Categorical(list("abcabcab"), categories=["c", "a", "b", "zz"]),
            "g": list("uuvvuvuv"),
        }
    )
    assert FormulaTerms("y ~ f + (1 | g)").fit(d).fixed_names == ["(Intercept)", "fa", "fb"]
