"""Every lme4 reference formula, passed verbatim to ``sklmixed.lmer``, reproduces lme4.

``tests/reference/*.json`` are the project's shared references; ``extra/`` adds a
three-level nested model, categorical random slopes, ``I(x^2)``, ``||``, ``:`` groups,
a crossed ML fit and prior weights (all made by ``tests/reference/make_references.R``).
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from sklmixed import lmer

from ._lme4 import REFERENCE, assert_matches_lme4, load_data

NAMES = sorted(p.stem for p in REFERENCE.glob("*.json")) + sorted(
    f"extra/{p.stem}" for p in (REFERENCE / "extra").glob("*.json")
)


def _load(name):
    return json.loads((REFERENCE / f"{name}.json").read_text())


def _data(ref):
    data = load_data(ref["dataset"])
    if ref["name"] == "exam_categorical":
        # That fit used mlmRev's level order of schgend (mixed first), not the CSV's.
        data["schgend"] = pd.Categorical(data["schgend"], ["mixed", "boys", "girls"])
    return data


@pytest.mark.parametrize("name", NAMES)
def test_lmer_matches_lme4(name):
    ref = _load(name)
    data = _data(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits warn; checked elsewhere
        model = lmer(ref["formula"], data=data, REML=ref["REML"], weights=ref.get("weights"))
    response = ref["formula"].split("~")[0].strip()
    assert list(model.fixed_effects_.index) == list(ref["fixef"])
    weights = None if ref.get("weights") is None else data[ref["weights"]]
    assert_matches_lme4(
        model, ref, data[response], fitted=model.predict(data), X=data, weights=weights
    )
    assert model.is_singular_ == ref["singular"]
    assert model.n_groups_ == ref["ngroups"]
    np.testing.assert_allclose(model.aic_, ref["AIC"], atol=2e-3)
    np.testing.assert_allclose(model.bic_, ref["BIC"], atol=2e-3)


@pytest.mark.parametrize("name", ["extra/three_level_nested", "pastes_nested"])
def test_nested_levels_and_modes_follow_lme4(name):
    ref = _load(name)
    data = _data(ref)
    model = lmer(ref["formula"], data=data, REML=ref["REML"])
    for factor, lme4 in ref["ranef"].items():
        modes = model.random_effects_[factor]
        assert [str(level) for level in modes.index] == [str(level) for level in lme4["levels"]]
        values = np.reshape(lme4["values"], modes.shape)
        np.testing.assert_allclose(modes.to_numpy(), values, atol=1e-3 * np.abs(values).max())
