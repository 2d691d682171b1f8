"""``summary()`` against lme4's ``print(summary(fit))`` for the five Exam models.

Two kinds of check:

* the report alone: a result holding lme4's own numbers (from the reference JSON)
  must print byte for byte as lme4 printed it (tests/reference/summaries/*.txt);
* the report of our fit: every line has lme4's layout, every word is lme4's, and
  every number equals lme4's as printed, up to one unit in the last printed digit
  where our optimum and lme4's differ within the optimizer's tolerance.
"""

import dataclasses
import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from sklmixed import MixedLMRegressor, SingularFitWarning, lmer
from sklmixed.report import Summary
from sklmixed.report.rformat import abbreviate as _abbreviate
from sklmixed.report.rformat import deparse_formula as _deparse_formula
from sklmixed.report.rformat import format_real as _format_real
from sklmixed.datasets import load_exam

from ._lme4 import REFERENCE, load_data, load_reference

EXAM_MODELS = ["exam_null", "exam_ri_standLRT", "exam_rs_ML", "exam_rs_schavg", "exam_cross_level"]
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[+-]\d+)?$")


def _lme4_text(name):
    return (REFERENCE / "summaries" / f"{name}.txt").read_text().rstrip("\n")


@pytest.fixture(scope="module")
def exam():
    return load_exam().frame


_FITS = {}


def _fit(name, exam):
    """The reference model fitted with ``lmer`` (cached: each is fitted once)."""
    if name not in _FITS:
        ref = load_reference(name)
        _FITS[name] = lmer(ref["formula"], data=exam, REML=ref["REML"])
    return _FITS[name]


def _lme4_result(model, name):
    """``model.result_`` with every number the summary prints replaced by lme4's."""
    ref = load_reference(name)
    names = list(ref["fixef"])
    varcorr = pd.DataFrame(
        [(r["grp"], r["var1"] or None, r["var2"] or None, r["vcov"], r["sdcor"])
         for r in ref["varcorr"]],
        columns=["group", "var1", "var2", "vcov", "sdcor"],
    )
    return dataclasses.replace(
        model.result_,
        method="REML" if ref["REML"] else "ML",
        n_obs=ref["nobs"],
        fixed_effects=pd.Series(ref["fixef"]),
        fixed_effects_se=pd.Series(ref["fixef_se"]),
        fixed_effects_cov=pd.DataFrame(ref["vcov_fixef"], index=names, columns=names),
        variance_components=varcorr,
        log_likelihood=ref["logLik"],
        reml_criterion=ref["REMLcrit"],
        df=ref["df"],
        aic=ref["AIC"],
        bic=ref["BIC"],
        n_groups=ref["ngroups"],
        is_singular=ref["singular"],
        dropped_fixed=(),
    )


# ------------------------------------------------------------- the report alone
@pytest.mark.parametrize("name", EXAM_MODELS)
def test_lme4_numbers_print_exactly_as_lme4(name, exam):
    ref = load_reference(name)
    result = _lme4_result(_fit(name, exam), name)
    # The five quartiles of the scaled residuals are their own quartiles (type 7).
    summary = Summary(
        result, ref["residual_quantiles"], ref["formula"], data_name="Exam", ddf="lme4"
    )
    assert str(summary) == _lme4_text(name)


def _dyestuff2():
    data = load_data("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        return MixedLMRegressor(group="Batch").fit(data[["Batch"]], data["Yield"])


def test_singular_fit_is_noted_as_lme4_notes_it():
    model = _dyestuff2()
    ref = load_reference("dyestuff2_singular")
    result = _lme4_result(model, "dyestuff2_singular")
    lines = str(
        Summary(result, ref["residual_quantiles"], ref["formula"], ddf="lme4")
    ).splitlines()
    assert " Batch    (Intercept)  0.00    0.000   " in lines
    assert " Residual             13.81    3.716   " in lines
    assert "Correlation of Fixed Effects:" not in lines  # one fixed effect
    # lme4 names its optimizer wrapper (nloptwrap); we name ours.
    assert lines[-2:] == [
        f"optimizer ({result.optimizer.optimizer}) convergence code: 0 (OK)",
        "boundary (singular) fit: see help('isSingular')",
    ]


# ----------------------------------------------------------- the report of a fit
def _tokens(text):
    return [line.split() for line in text.splitlines()]


def _shape(text):
    """The text with every digit replaced: lme4's layout, whatever the numbers."""
    return re.sub(r"\d", "9", text)


@pytest.mark.parametrize("name", EXAM_MODELS)
def test_summary_of_fit_has_lme4s_layout(name, exam):
    text = str(Summary(_fit(name, exam).result_, data_name="Exam", ddf="lme4"))
    assert _shape(text) == _shape(_lme4_text(name))


@pytest.mark.parametrize("name", EXAM_MODELS)
def test_summary_of_fit_has_lme4s_numbers_as_printed(name, exam):
    text = str(_fit(name, exam).summary(data_name="Exam", ddf="lme4"))
    ours, theirs = _tokens(text), _tokens(_lme4_text(name))
    assert len(ours) == len(theirs)
    for line_ours, line_theirs in zip(ours, theirs):
        assert len(line_ours) == len(line_theirs), (line_ours, line_theirs)
        for a, b in zip(line_ours, line_theirs):
            if not NUMBER.match(b):
                assert a == b
            elif "." not in b:  # counts: observations, groups, residual df
                assert a == b
            else:
                # One unit in lme4's last printed digit: both optima are within the
                # optimizer's tolerance of the flat criterion (our logLik is >= lme4's).
                unit = 10.0 ** -len(b.split(".")[1].split("e")[0])
                assert abs(float(a) - float(b)) <= unit * 1.000001, (a, b, line_theirs)


def test_formula_is_the_estimators_formula_deparsed(exam):
    model = lmer("normexam~standLRT+(1|school)", data=exam)
    summary = model.summary()
    assert summary.formula == "normexam ~ standLRT + (1 | school)"
    # lmerTest's title takes two lines at R's width of 80.
    assert str(summary).splitlines()[2] == "Formula: normexam ~ standLRT + (1 | school)"
    assert "Data:" not in str(summary)


# ------------------------------------------------------------------ DataFrames
def test_tables_are_dataframes_with_lme4s_numbers(exam):
    ref = load_reference("exam_cross_level")
    summary = _fit("exam_cross_level", exam).summary()

    fixed = summary.fixed_effects
    assert list(fixed.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(fixed.index) == list(ref["fixef"])
    # lmerTest's Satterthwaite df and p-values (its own numerical derivatives carry
    # errors near 1e-5; ours are exact).
    np.testing.assert_allclose(fixed["df"], list(ref["fixef_df_satterthwaite"].values()), rtol=1e-3)
    np.testing.assert_allclose(
        fixed["Pr(>|t|)"], list(ref["fixef_p_satterthwaite"].values()), rtol=2e-3
    )
    lme4_columns = _fit("exam_cross_level", exam).summary(ddf="lme4").fixed_effects.columns
    assert list(lme4_columns) == ["Estimate", "Std. Error", "t value"]
    np.testing.assert_allclose(fixed["Estimate"], list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(fixed["Std. Error"], list(ref["fixef_se"].values()), rtol=1e-4)
    np.testing.assert_allclose(fixed["t value"], list(ref["fixef_t"].values()), rtol=1e-4)

    corr = summary.fixed_effects_correlation
    cov = np.asarray(ref["vcov_fixef"])
    np.testing.assert_allclose(corr, cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))), atol=1e-4)
    assert list(corr.columns) == list(ref["fixef"])

    re_table = summary.random_effects
    assert list(re_table.columns) == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    assert re_table["Groups"].tolist() == ["school", "school", "Residual"]
    assert re_table["Name"].tolist() == ["(Intercept)", "standLRT", ""]
    vc = {(r["var1"], r["var2"]): r for r in ref["varcorr"]}
    np.testing.assert_allclose(
        re_table["Variance"],
        [vc[("(Intercept)", "")]["vcov"], vc[("standLRT", "")]["vcov"], vc[("", "")]["vcov"]],
        rtol=1e-3,
    )
    corr = vc[("(Intercept)", "standLRT")]["sdcor"]
    np.testing.assert_allclose(re_table["Corr"].iloc[1], corr, atol=1e-3)
    assert re_table["Corr"].iloc[[0, 2]].isna().all()

    quartiles = summary.residuals.to_numpy().ravel()
    np.testing.assert_allclose(quartiles, ref["residual_quantiles"], atol=1e-4)
    assert list(summary.residuals.columns) == ["Min", "1Q", "Median", "3Q", "Max"]
    np.testing.assert_allclose(summary.fit_statistics["REML criterion"], ref["REMLcrit"], atol=1e-3)
    assert summary.groups["Levels"].to_dict() == {"school": 65}
    assert summary.n_obs == 4059
    assert not summary.is_singular and summary.messages == ()


def test_ml_fit_statistics_are_lme4s(exam):
    ref = load_reference("exam_rs_ML")
    stats = _fit("exam_rs_ML", exam).summary().fit_statistics
    assert list(stats.columns) == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    np.testing.assert_allclose(
        stats.iloc[0, :4], [ref["AIC"], ref["BIC"], ref["logLik"], -2 * ref["logLik"]], atol=1e-3
    )
    assert stats["df.resid"].item() == ref["nobs"] - ref["df"]


# ------------------------------------------------------------------------ HTML
def test_html_has_every_table_with_printed_numbers(exam):
    summary = _fit("exam_cross_level", exam).summary()
    page = summary._repr_html_()
    root = ET.fromstring(page)  # well-formed markup
    captions = [c.text for c in root.iter("caption")]
    assert captions == [
        "Scaled residuals", "Random effects", "Fixed effects", "Correlation of Fixed Effects"
    ]
    # The cells hold the numbers of the text, as printed (the counts are in a paragraph).
    text = str(summary).split("Scaled residuals:")[1]
    # lmerTest's legend of the significance stars is text, not a table.
    text = "\n".join(line for line in text.splitlines() if not line.startswith("Signif. codes"))
    printed = [tok for tok in text.split() if NUMBER.match(tok) and "." in tok]
    cells = [td.text for td in root.iter("td") if td.text and NUMBER.match(td.text)]
    assert cells == printed
    assert "REML criterion at convergence: 9320.4" in page
    assert "Number of obs: 4059, groups:  school, 65" in page
    assert "standLRT:schavg" in [th.text for th in root.iter("th")]


def test_html_escapes_names():
    data = load_data("sleepstudy")
    data["<Days>"] = data["Days"]
    model = MixedLMRegressor(group="Subject", random_effects=["<Days>"])
    model.fit(data[["<Days>", "Subject"]], data["Reaction"])
    page = model.summary()._repr_html_()
    assert "&lt;Days&gt;" in page and "<Days>" not in page
    ET.fromstring(page)


# ---------------------------------------------------------- the array interface
def test_array_interface_formula_is_built_from_the_spec(exam):
    X = exam[["standLRT", "school"]]
    model = MixedLMRegressor(group="school", random_effects=["standLRT"]).fit(X, exam["normexam"])
    assert model.summary().formula == "y ~ standLRT + (1 + standLRT | school)"

    model = MixedLMRegressor(group="school").fit(exam[["school"]], exam["normexam"])
    assert model.summary().formula == "y ~ 1 + (1 | school)"

    model = MixedLMRegressor(
        group="school", random_effects=["standLRT"], covariance="diagonal"
    ).fit(X, exam["normexam"])
    summary = model.summary()
    assert summary.formula == "y ~ standLRT + (1 | school) + (0 + standLRT | school)"
    lines = str(summary).splitlines()
    # lme4 names the second term on school "school.1"; the factor is counted once.
    groups = [line.split()[0] for line in lines if line.startswith(" school")]
    assert groups == ["school", "school.1"]
    assert "Number of obs: 4059, groups:  school, 65" in lines

    model = MixedLMRegressor(group="school", fit_intercept=False).fit(X, exam["normexam"])
    assert model.summary().formula == "y ~ 0 + standLRT + (1 | school)"


def test_singular_fit_of_our_own_is_noted_at_the_end():
    summary = _dyestuff2().summary()
    assert summary.is_singular
    assert summary.messages == ("boundary (singular) fit: see help('isSingular')",)
    lines = str(summary).splitlines()
    assert lines[-1] == "boundary (singular) fit: see help('isSingular')"
    assert " Batch    (Intercept)  0.00    0.000   " in lines


# -------------------------------------------------------- R's formatting rules
@pytest.mark.parametrize(
    "values, kwargs, expected",
    [  # R: format(values, ...)
        ([0.0, 13.8074], {"digits": 4}, [" 0.00", "13.81"]),
        ([9996.0], {"digits": 3}, ["9996"]),
        ([1e-10, 0.5], {"digits": 4}, ["1e-10", "5e-01"]),
        ([100000.0, 1.5], {}, ["1.0e+05", "1.5e+00"]),
        ([123456.0], {}, ["123456"]),
        ([0.0001234], {}, ["0.0001234"]),
        ([0.1234567891], {}, ["0.1234568"]),
        ([-0.0], {}, ["0"]),
        ([1.0, 0.236, -0.065], {"nsmall": 3}, [" 1.000", " 0.236", "-0.065"]),
        ([-3.8298, -0.6368, 0.0348, 0.6851, 3.4556], {"digits": 4},
         ["-3.8298", "-0.6368", " 0.0348", " 0.6851", " 3.4556"]),
    ],
)
def test_format_real_is_rs_format(values, kwargs, expected):
    assert _format_real(values, **kwargs) == expected


def test_abbreviate_is_rs_abbreviate():
    # lme4's names of fixed-effect correlations (minlength 6 and 11).
    names = ["(Intercept)", "standLRT", "schavg", "standLRT:schavg"]
    assert _abbreviate(names, 6) == ["(Intr)", "stnLRT", "schavg", "stLRT:"]
    assert _abbreviate(names, 11) == ["(Intercept)", "standLRT", "schavg", "stndLRT:sch"]
    # R: abbreviate(state.name)[...]
    states = ["Alabama", "Georgia", "Hawaii", "Massachusetts", "New Hampshire",
              "North Carolina", "Rhode Island", "West Virginia", "Wyoming"]
    assert _abbreviate(states, 4) == ["Albm", "Gerg", "Hawa", "Mssc", "NwHm",
                                      "NrtC", "RhdI", "WstV", "Wymn"]


def test_abbreviate_keeps_abbreviations_unique():
    # Both are "schgnd" at 6 characters; R lengthens the clashing ones together.
    out = _abbreviate(["sexM", "schgendboys", "schgendgirls"], 6)
    assert out == ["sexM", "schgndb", "schgndg"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("normexam~standLRT*schavg+(1+standLRT|school)",
         "normexam ~ standLRT * schavg + (1 + standLRT | school)"),
        ("y ~ poly(x,2) + (1|a/b)", "y ~ poly(x, 2) + (1 | a/b)"),
        ("y ~ -1 + x + I(x^2) + (1 + x || g)", "y ~ -1 + x + I(x^2) + (1 + x || g)"),
    ],
)
def test_formula_is_spaced_as_r_deparses_it(text, expected):
    assert _deparse_formula(text) == expected
