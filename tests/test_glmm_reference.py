"""sklmixed.glmer against lme4 1.1-31's glmer on every reference of tests/reference/glmm.

Tolerances are the shared tool's (/work/shared/tools/glmer_parity.py): log-likelihood
no worse than lme4's by 1e-3; fixed effects 1e-3 relative (floor 1e-2); their standard
errors 2e-2 (lme4's come from a finite-difference Hessian); variance components 5e-3
of the largest; fitted means 1e-3 of their standard deviation. For nAGQ > 1 lme4's
logLik leaves out a constant: ``lme4_log_likelihood`` is on its scale.

Where our log-likelihood is higher than lme4's by more than 1e-4, lme4 stopped short
of the optimum (its Laplace deviance also evaluates log|L|² at the weights of the
step before the last): cbpp_laplace and cbpp_proportion_weights (+2.8e-4),
contraception_slope (+2.3e-4, lme4 warns max|grad| 0.0025) and binary_slopes100
(+2.0e-3). Our estimates still agree at the tolerances above on all of them.
"""

import warnings

import numpy as np
import pytest

from sklmixed import glmer

from ._glmm_refs import TOL, glmer_arguments, load, reference_names, relative_errors

HIGHER_THAN_LME4 = {
    "cbpp_laplace", "cbpp_proportion_weights", "contraception_slope", "binary_slopes100",
    "verbagg_crossed",
}
# The shared tool's rule: a log-likelihood above lme4's by more than 1e-4 proves ours
# the better optimum, and lme4's estimates are then not a target. Only VerbAgg needs
# it: our fixed effects differ from lme4's by 1.2e-3 relative there (+3.9e-4 in
# logLik); every other estimate of every model is held to the tolerances.
NOT_A_TARGET = {"verbagg_crossed": {"fixef"}}
# The uncentred grouseticks fits: lme4 itself warns (max|grad| up to 0.046, "very
# large eigenvalue: rescale variables?") and its finite-difference Hessian along the
# unscaled HEIGHT is off (its SEs differ from those of the centred twin, the same
# model, by up to 2.7x). Ours are held to lme4's SEs of the centred twins instead
# (test_uncentred_grouseticks_standard_errors).
LME4_HESSIAN_UNRELIABLE = {
    "grouseticks_brood_laplace", "grouseticks_nested", "grouseticks_brood_agq5",
    "grouseticks_brood_agq25",
}
CENTRED_TWIN = {
    "grouseticks_brood_laplace": "grouseticks_brood_centered_laplace",
    "grouseticks_nested": "grouseticks_nested_centered",
    "grouseticks_brood_agq5": "grouseticks_brood_centered_agq5",
    "grouseticks_brood_agq25": "grouseticks_brood_centered_agq25",
}


def _fit(name):
    ref, data = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ref, glmer(ref["formula"], data=data, **glmer_arguments(ref, data))


@pytest.mark.parametrize("name", reference_names())
def test_glmer_matches_lme4(name):
    ref, model = _fit(name)
    result = model.result_
    gain = result.lme4_log_likelihood - ref["logLik"]
    assert gain >= -TOL["loglik"], f"log-likelihood {gain:+.2e} below lme4's"
    if name in HIGHER_THAN_LME4:
        assert gain > 1e-4  # said in the module docstring: ours is the better optimum
    err = relative_errors(model, ref)
    exempt = NOT_A_TARGET.get(name, set()) | (
        {"fixef_se"} if name in LME4_HESSIAN_UNRELIABLE else set()
    )
    for key in ("varcorr", "fixef", "fixef_se", "fitted"):
        if key not in exempt:
            assert err[key] <= TOL[key], (key, err[key])
    assert model.is_singular_ == ref["singular"]
    assert result.n_obs == ref["nobs"]
    assert result.df == ref["df"] and result.df_resid == ref["df_resid"]
    np.testing.assert_allclose(result.aic, -2 * result.log_likelihood + 2 * ref["df"])
    if ref["nAGQ"] <= 1:
        assert abs(result.aic - ref["AIC"]) <= 2 * TOL["loglik"] + 2 * abs(gain)
    if ref["nAGQ"] <= 1:
        np.testing.assert_allclose(result.deviance, ref["deviance"], rtol=2e-3)
    assert {k: v for k, v in model.n_groups_.items()} == ref["ngroups"]


@pytest.mark.parametrize("name", sorted(CENTRED_TWIN))
def test_uncentred_grouseticks_standard_errors(name):
    # Centring HEIGHT only moves the intercept: the YEAR and HEIGHT standard errors
    # of the uncentred fit are those of the centred one, which lme4 gets right.
    _, model = _fit(name)
    twin = load(CENTRED_TWIN[name])[0]
    ours = model.fixed_effects_se_
    for ours_name, their_name in (("YEAR96", "YEAR96"), ("YEAR97", "YEAR97"), ("HEIGHT", "cHEIGHT")):
        expected = twin["fixef_se"][their_name]
        assert abs(ours[ours_name] - expected) <= TOL["fixef_se"] * expected
