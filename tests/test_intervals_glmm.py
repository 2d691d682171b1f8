"""Wald intervals and anova between GLMM fits against lme4 (tests/reference/glmm/
shared_confint.json and anova_glmer.json, written by make_glmm.R). Skipped where
sklmixed has no glmer yet."""

import json

import numpy as np
import pytest

import sklmixed
from sklmixed.inference import anova, confint

from sklmixed.datasets import load_cbpp

from ._lme4 import REFERENCE, load_data

glmer = getattr(sklmixed, "glmer", None)
pytestmark = pytest.mark.skipif(glmer is None, reason="sklmixed.glmer not available")
GLMM = REFERENCE / "glmm"


def _cbpp(formula):
    return glmer(formula, load_cbpp().frame, family="binomial")  # R's factor levels


def test_glmm_wald_intervals_match_lme4():
    ref = json.loads((GLMM / "shared_confint.json").read_text())["cbpp_laplace"]
    wald = ref["confint_wald"]
    fit = _cbpp(ref["formula"])
    ours = confint(fit, method="Wald")
    assert list(ours.index) == wald["parameters"]  # no .sigma for a binomial GLMM
    assert list(ours.columns) == wald["columns"]
    assert ours.iloc[0].isna().all()
    lme4 = np.column_stack([wald["lower"], wald["upper"]])[1:].astype(float)
    ours = ours.iloc[1:].to_numpy()
    # Centre β̂ at the fixed effects' tolerance; half-width 1.96·SE at the standard
    # errors' (2e-2: lme4's come from a finite-difference Hessian, glmer_parity.py).
    np.testing.assert_allclose(ours.mean(axis=1), lme4.mean(axis=1), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.diff(ours, axis=1), np.diff(lme4, axis=1), rtol=2e-2)
    with pytest.raises(NotImplementedError, match="GLMM"):
        confint(fit, method="profile")


def test_glmm_anova_matches_lme4():
    ref = json.loads((GLMM / "anova_glmer.json").read_text())
    m0, m1 = (_cbpp(ref["models"][name]) for name in ("m0", "m1"))
    table = anova(m0, m1, names=["m0", "m1"], data_name="cbpp")
    assert table.refitted == ()
    assert table.lines()[: len(ref["heading"])] == ref["heading"]
    lme4 = ref["table"]
    ours = table.to_frame()
    for column in ("npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"):
        expected = np.array(lme4[column], dtype=float)
        # The GLMM fits' log-likelihoods are within 1e-4 of lme4's (glmm-core's tolerance).
        np.testing.assert_allclose(ours[column].to_numpy(dtype=float), expected, rtol=1e-5, atol=2e-4)


def test_glmm_and_lmm_are_not_compared():
    exam = load_data("Exam")
    exam = exam.assign(passed=(exam.normexam > 0).astype(int))
    a = sklmixed.lmer("passed ~ standLRT + (1 | school)", exam, REML=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = glmer("passed ~ standLRT + (1 | school)", exam)
    with pytest.raises(ValueError, match="famil"):
        anova(a, b)
