"""Shared helpers for tests against lme4 reference fits (JSON copies in tests/reference)."""

import json
import pathlib

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = HERE / "reference"
DATA = HERE / "data"

# The tolerances the core issue sets: relative to lme4, never to our own output.
TOL_VARCORR = 1e-3  # of the largest variance component
TOL_REL = 1e-4  # sigma, fixed effects and their standard errors
TOL_LOGLIK = 1e-3  # ours may be no worse than lme4's by this much
TOL_FITTED = 1e-4  # of sd(y)


def load_reference(name):
    """The lme4 fit ``name`` (a stem of tests/reference/*.json or extra/*.json)."""
    for path in (REFERENCE / f"{name}.json", REFERENCE / "extra" / f"{name}.json"):
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(name)


def load_data(dataset):
    """A data set as R wrote it (tests/data/<dataset>.csv)."""
    return pd.read_csv(DATA / f"{dataset}.csv")


def assert_matches_lme4(model, ref, y, fitted=None, check_fixef=True):
    """Assert the fitted estimator reproduces lme4's fit within the stated tolerances."""
    ours = np.sort(model.variance_components_["vcov"].to_numpy(float))
    theirs = np.sort([row["vcov"] for row in ref["varcorr"]])
    assert ours.shape == theirs.shape, (ours, theirs)
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL_VARCORR * scale)
    np.testing.assert_allclose(model.sigma_, ref["sigma"], rtol=TOL_REL)
    if check_fixef:
        names = list(ref["fixef"])
        np.testing.assert_allclose(
            model.fixed_effects_[names].to_numpy(), list(ref["fixef"].values()),
            rtol=TOL_REL, atol=TOL_REL * 1e-3,
        )
        np.testing.assert_allclose(
            model.fixed_effects_se_[names].to_numpy(), list(ref["fixef_se"].values()),
            rtol=TOL_REL,
        )
    assert model.log_likelihood_ >= ref["logLik"] - TOL_LOGLIK
    if fitted is not None and ref.get("fitted") is not None:
        np.testing.assert_allclose(
            fitted, ref["fitted"], rtol=0, atol=TOL_FITTED * np.std(y)
        )
