"""Denominator df against lmerTest and pbkrtest (R references, never our own output).

References: ``fixef_df_satterthwaite``/``fixef_p_satterthwaite`` of every lme4 fit in
tests/reference (lmerTest 3.1-3), and tests/reference/inference/ddf_*.json and
ddf_*_summary_*.txt (lmerTest 3.1-3 and pbkrtest 0.5.2, written by make_ddf.R).

lmerTest differentiates the deviance numerically: its df carry relative errors near
1e-5 (up to 1e-4 on the small crossed designs), ours are exact, and both sit on
optima that agree to the fit's tolerance. p-values far in the tail move with those
digits (p = 5e-34 at t = 27 changes by 5e-3 relative when t changes by 1e-5), so
they are compared on the scale of their logarithm.
"""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from sklmixed import lmer
from sklmixed.exceptions import SingularFitWarning
from sklmixed.inference import (
    anova,
    contest,
    kenward_roger,
    kenward_roger_parts,
    satterthwaite,
    satterthwaite_parts,
)
from sklmixed.inference._kenward_roger import kenward_roger_f
from sklmixed.inference._satterthwaite import _warn_about_eigenvalues

from ._lme4 import REFERENCE, load_data

TOL_SATTERTHWAITE = 1e-3  # the tolerance on lmerTest's df (relative)
TOL_KR = 1e-4  # on pbkrtest's df, F scaling and adjusted covariance (relative)
TOL_F = 1e-3  # on lmerTest's anova F values

INFERENCE = REFERENCE / "inference"
FIT_NAMES = sorted(p.stem for p in REFERENCE.glob("*.json")) + sorted(
    f"extra/{p.stem}" for p in (REFERENCE / "extra").glob("*.json")
)
DDF_NAMES = sorted(p.stem[len("ddf_"):] for p in INFERENCE.glob("ddf_*.json"))


def _data(dataset):
    data = load_data(dataset)
    if dataset == "Exam":
        # The references used mlmRev's level order of schgend (mixed first).
        data["schgend"] = pd.Categorical(data["schgend"], ["mixed", "boys", "girls"])
    return data


_FITS = {}


def _fit(formula, dataset, reml, weights=None):
    key = (formula, dataset, reml, weights)
    if key not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # singular and rank-deficient fits warn
            _FITS[key] = lmer(formula, data=_data(dataset), REML=reml, weights=weights)
    return _FITS[key]


def _ddf_reference(name):
    ref = json.loads((INFERENCE / f"ddf_{name}.json").read_text())
    return ref, _fit(ref["formula"], ref["dataset"], ref["REML"])


def _table(ref_table):
    """An R table written by make_ddf.R as a DataFrame ("NA" as NaN)."""
    return pd.DataFrame(ref_table).replace("NA", np.nan).astype(float)


def _assert_log_p(ours, theirs, rtol=TOL_SATTERTHWAITE):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    underflow = theirs < 1e-300
    assert np.all(ours[underflow] < 1e-290)
    np.testing.assert_allclose(np.log(ours[~underflow]), np.log(theirs[~underflow]),
                               rtol=rtol, atol=rtol)


# ------------------------------------------------------------------ Satterthwaite
@pytest.mark.parametrize("name", FIT_NAMES)
def test_satterthwaite_df_and_p_match_lmertest(name):
    ref = json.loads((REFERENCE / f"{name}.json").read_text())
    model = _fit(ref["formula"], ref["dataset"], ref["REML"], ref.get("weights"))
    table = satterthwaite(model)
    names = list(ref["fixef_df_satterthwaite"])
    np.testing.assert_allclose(
        table.loc[names, "df"], list(ref["fixef_df_satterthwaite"].values()),
        rtol=TOL_SATTERTHWAITE,
    )
    _assert_log_p(table.loc[names, "Pr(>|t|)"], list(ref["fixef_p_satterthwaite"].values()))
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]


def test_satterthwaite_accepts_the_result_and_contrasts():
    ref, model = _ddf_reference("exam_cross_level")
    by_result = satterthwaite(model.result_)
    pd.testing.assert_frame_equal(by_result, satterthwaite(model))
    rows = satterthwaite(model, L=np.eye(4)[[1, 3]])
    np.testing.assert_allclose(rows["df"], by_result["df"].iloc[[1, 3]], rtol=1e-12)
    with pytest.raises(ValueError, match="one column per fixed effect"):
        satterthwaite(model, L=np.ones((1, 3)))
    with pytest.raises(TypeError, match="fitted MixedLMRegressor"):
        satterthwaite("not a model")


def test_satterthwaite_parts_are_exact_derivatives():
    """The analytic Hessian and Jacobian against central differences of the criterion
    (step 1e-4 on θ and σ: truncation error near 1e-8 of these curvatures)."""
    ref, model = _ddf_reference("sleepstudy_rs")
    result = model.result_
    parts = satterthwaite_parts(result)
    phi0 = np.append(result.theta, result.sigma)
    crit = result.fit.criterion
    n, p = crit.cp.n_obs, crit.cp.n_fixed

    def deviance(phi):  # lmerTest's devfun_vp: the REML deviance in (θ, σ)
        sol = result.solve_at(phi[:-1])
        s2 = phi[-1] ** 2
        return (sol.logdet_L + sol.logdet_RX + sol.pwrss / s2
                + (n - p) * np.log(2 * np.pi * s2))

    def vcov(phi):
        sol = result.solve_at(phi[:-1])
        return sol.beta_cov * phi[-1] ** 2 / sol.sigma**2

    h = 1e-4
    k = phi0.size
    numeric_hessian = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            numeric_hessian[i, j] = (
                deviance(phi0 + ei + ej) - deviance(phi0 + ei - ej)
                - deviance(phi0 - ei + ej) + deviance(phi0 - ei - ej)
            ) / (4 * h * h)
    np.testing.assert_allclose(parts.hessian, numeric_hessian, rtol=1e-5,
                               atol=1e-6 * np.abs(numeric_hessian).max())
    for i in range(k):
        e = np.eye(k)[i] * h
        numeric = (vcov(phi0 + e) - vcov(phi0 - e)) / (2 * h)
        np.testing.assert_allclose(parts.jacobian[i], numeric, rtol=1e-5,
                                   atol=1e-7 * np.abs(numeric).max())


def test_eigenvalue_warnings_are_lmertests():
    with pytest.warns(SingularFitWarning, match="1 close to zero eigenvalue"):
        _warn_about_eigenvalues(np.array([1e-12, 3.0]))
    with pytest.warns(SingularFitWarning, match="failed to converge with 1 negative"):
        _warn_about_eigenvalues(np.array([-1.0, 3.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_about_eigenvalues(np.array([0.5, 3.0]))


# ------------------------------------------------------------------ Kenward-Roger
@pytest.mark.parametrize("name", DDF_NAMES)
def test_kenward_roger_matches_pbkrtest(name):
    ref, model = _ddf_reference(name)
    if not ref["REML"]:
        with pytest.raises(ValueError, match="only available for REML"):
            kenward_roger(model)
        return
    parts = kenward_roger_parts(model)
    adjusted = np.asarray(ref["vcov_adjusted"], dtype=float).reshape(parts.vcov_adjusted.shape)
    # Relative to each entry's own scale: the geometric mean of its two variances.
    scale = np.sqrt(np.outer(np.diag(adjusted), np.diag(adjusted)))
    assert np.abs(parts.vcov_adjusted - adjusted).max() <= TOL_KR * 2 * scale.max()
    np.testing.assert_allclose(np.diag(parts.vcov_adjusted), np.diag(adjusted), rtol=2 * TOL_KR)

    table = kenward_roger(model)
    kr = _table(ref["kenward_roger"])
    names = list(ref["fixef"])
    np.testing.assert_allclose(table.loc[names, "df"], kr["df"], rtol=TOL_KR)
    np.testing.assert_allclose(table.loc[names, "Std. Error"], kr["Std. Error"], rtol=TOL_KR)
    _assert_log_p(table.loc[names, "Pr(>|t|)"], kr["Pr(>|t|)"])

    np.testing.assert_allclose(parts.adjust(np.asarray(ref["L_one"], float))["ddf"],
                               ref["kr_ddf_one"], rtol=TOL_KR)
    several = kenward_roger_f(model, np.asarray(ref["L_several"], float))
    theirs = ref["krmodcomp_several"]
    assert several["ndf"] == theirs["ndf"]
    for key in ("ddf", "F_scaling", "F", "F_unscaled"):
        np.testing.assert_allclose(several[key], theirs[key], rtol=TOL_KR, err_msg=key)


# --------------------------------------------------------------------- contrasts
@pytest.mark.parametrize("name", DDF_NAMES)
def test_contest_matches_lmertest(name):
    ref, model = _ddf_reference(name)
    one = contest(model, ref["L_one"], joint=False)
    theirs = _table(ref["contest_one"])
    np.testing.assert_allclose(one["df"], theirs["df"], rtol=TOL_SATTERTHWAITE)
    np.testing.assert_allclose(one["t value"], theirs["t value"], rtol=1e-4)
    if "contest_several" not in ref:
        return
    several = contest(model, ref["L_several"])
    theirs = _table(ref["contest_several"])
    assert several["NumDF"].item() == theirs["NumDF"].item()
    np.testing.assert_allclose(several["DenDF"], theirs["DenDF"], rtol=TOL_SATTERTHWAITE)
    np.testing.assert_allclose(several["F value"], theirs["F value"], rtol=TOL_F)
    np.testing.assert_allclose(several["Sum Sq"], theirs["Sum Sq"], rtol=TOL_F)
    if ref["REML"]:
        kr = contest(model, ref["L_several"], ddf="Kenward-Roger")
        theirs = ref["krmodcomp_several"]
        np.testing.assert_allclose(kr["DenDF"], theirs["ddf"], rtol=TOL_KR)
        np.testing.assert_allclose(kr["F value"], theirs["F"], rtol=TOL_KR)


def test_contest_rhs_shifts_the_hypothesis():
    ref, model = _ddf_reference("sleepstudy_rs")
    beta = model.fixed_effects_.to_numpy()
    at_estimate = contest(model, [0.0, 1.0], rhs=beta[1])
    np.testing.assert_allclose(at_estimate["F value"], 0.0, atol=1e-20)
    t = contest(model, [0.0, 1.0], rhs=10.0, joint=False)
    se = model.fixed_effects_se_.iloc[1]
    np.testing.assert_allclose(t["t value"], (beta[1] - 10.0) / se, rtol=1e-10)
    with pytest.raises(ValueError, match="ddf must be one of"):
        contest(model, [0.0, 1.0], ddf="lme4")


# ------------------------------------------------------------------------ anova
# lmerTest's anova for every model with two or more fixed effects (KR: REML fits).
ANOVAS = [
    (name, kind)
    for name in DDF_NAMES
    for kind in ["I", "II", "III", "III_KR"]
    if f"anova_{kind}" in json.loads((INFERENCE / f"ddf_{name}.json").read_text())
]


@pytest.mark.parametrize(("name", "kind"), ANOVAS)
def test_anova_matches_lmertest(name, kind):
    ref, model = _ddf_reference(name)
    key = f"anova_{kind}"
    theirs = _table(ref[key])
    typ, ddf = (kind[:-3], "Kenward-Roger") if kind.endswith("_KR") else (kind, "Satterthwaite")
    try:
        ours = anova(model, type=typ, ddf=ddf)
    except NotImplementedError:
        # Type III of contained terms: refused, and only where lmerTest needs the data.
        assert name == "exam_factorial"
        return
    assert list(ours.index) == list(theirs.index)
    assert ours.attrs["heading"].startswith(f"Type {typ} Analysis of Variance Table with")
    tested = theirs["NumDF"].notna().to_numpy()
    assert ours["NumDF"].isna().to_numpy().tolist() == (~tested).tolist()
    ours, theirs = ours[tested], theirs[tested]
    np.testing.assert_array_equal(ours["NumDF"], theirs["NumDF"])
    np.testing.assert_allclose(ours["F value"], theirs["F value"], rtol=TOL_F)
    rtol = TOL_KR if ddf == "Kenward-Roger" else TOL_SATTERTHWAITE
    np.testing.assert_allclose(ours["DenDF"], theirs["DenDF"], rtol=rtol)
    _assert_log_p(ours["Pr(>F)"], theirs["Pr(>F)"])


# ---------------------------------------------------------------------- summary
NUMBER = re.compile(r"^[-+<]?\d*\.?\d+(e[-+]\d+)?$")
SUMMARIES = sorted(INFERENCE.glob("ddf_*_summary_*.txt"))


@pytest.mark.parametrize("path", SUMMARIES, ids=[p.stem for p in SUMMARIES])
def test_summary_prints_as_lmertest(path):
    name, method = path.stem[len("ddf_"):].split("_summary_")
    ref, model = _ddf_reference(name)
    ours = str(model.summary(data_name="data", ddf=method)).splitlines()
    theirs = path.read_text(encoding="utf-8").splitlines()
    assert len(ours) == len(theirs)
    for line_ours, line_theirs in zip(ours, theirs):
        # The layout: every character but the digits (and the p-values' "<" spacing,
        # which follows the numbers as R's format.pval does).
        assert re.sub(r"\d", "9", line_ours).replace("< ", "<") == re.sub(
            r"\d", "9", line_theirs
        ).replace("< ", "<"), (line_ours, line_theirs)
        for a, b in zip(line_ours.split(), line_theirs.split()):
            if not NUMBER.match(b) or b.startswith("<"):
                assert a == b, (line_ours, line_theirs)
                continue
            # Within lmerTest's own error, or one unit in its last printed digit.
            digits = b.split("e")[0].split(".")
            unit = 10.0 ** -len(digits[1]) if len(digits) == 2 else 1.0
            if "e" in b:
                unit *= 10.0 ** int(b.split("e")[1])
            assert abs(float(a) - float(b)) <= max(unit * 1.000001, 1e-3 * abs(float(b))), (
                a, b, line_theirs,
            )


def test_summary_tables_gain_lmertests_columns():
    ref, model = _ddf_reference("exam_rs_schavg")
    table = model.summary(ddf="Kenward-Roger").fixed_effects
    kr = _table(ref["kenward_roger"])
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(table["Std. Error"], kr["Std. Error"], rtol=TOL_KR)
    lme4 = model.summary(ddf="lme4")
    assert list(lme4.fixed_effects.columns) == ["Estimate", "Std. Error", "t value"]
    assert str(lme4).splitlines()[0] == "Linear mixed model fit by REML ['lmerMod']"
    with pytest.raises(ValueError, match="ddf must be one of"):
        model.summary(ddf="satterthwaite")
    ml = _fit(ref["formula"], ref["dataset"], False)
    with pytest.raises(ValueError, match="only available for REML"):
        ml.summary(ddf="Kenward-Roger")


# ------------------------------------------------------------- weights, structure
def test_frequency_weights_count_rows():
    """sample_weight=2 is every row twice: the same df (the statistics are sums)."""
    from sklmixed import MixedLMRegressor

    data = load_data("sleepstudy")
    X, y = data[["Days", "Subject"]], data["Reaction"]
    est = dict(group="Subject", random_effects=["Days"])
    weighted = MixedLMRegressor(**est).fit(X, y, sample_weight=np.full(len(y), 2.0))
    doubled = MixedLMRegressor(**est).fit(pd.concat([X, X]), pd.concat([y, y]))
    for method in (satterthwaite, kenward_roger):
        np.testing.assert_allclose(method(weighted)["df"], method(doubled)["df"], rtol=1e-6)


def test_columns_of_x_are_one_term_each():
    from sklmixed import MixedLMRegressor

    data = load_data("sleepstudy")
    data["Days2"] = data["Days"] ** 2
    model = MixedLMRegressor(group="Subject").fit(data[["Days", "Days2", "Subject"]],
                                                  data["Reaction"])
    table = anova(model, type="III")
    assert list(table.index) == ["Days", "Days2"]
    np.testing.assert_array_equal(table["NumDF"], [1, 1])
    # A one-df F-test is the square of the coefficient's t-test, with the same df.
    t = satterthwaite(model)
    np.testing.assert_allclose(table["F value"], t["t value"].iloc[1:] ** 2, rtol=1e-10)
    np.testing.assert_allclose(table["DenDF"], t["df"].iloc[1:], rtol=1e-10)
