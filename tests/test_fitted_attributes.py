"""Fitted attributes are plain attributes set from the frozen ``result_``.

They are the result's own objects, survive pickling, are absent before fit as Python
says, and are replaced by the next fit; parameter validation is scikit-learn's.
"""

import dataclasses
import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import validate_data

from sklmixed import MixedLMRegressor
from sklmixed.datasets import load_sleepstudy

TABLES = ["fixed_effects_", "fixed_effects_se_", "fixed_effects_cov_", "variance_components_"]


@pytest.fixture(scope="module")
def sleep():
    frame = load_sleepstudy().frame
    return frame[["Days", "Subject"]], frame["Reaction"]


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MixedLMRegressor(group="Subject", random_effects=["Days"]).fit(X, y, **kw)


def test_fitted_attributes_are_the_results(sleep):
    model = _fit(*sleep)
    result = model.result_
    for attribute in TABLES + ["random_effects_", "sigma_", "theta_", "n_groups_"]:
        assert getattr(model, attribute) is getattr(result, attribute[:-1])
    assert model.variance_components_ is model.variance_components_  # built once
    assert model.intercept_ == result.fixed_effects.iloc[0]
    np.testing.assert_array_equal(model.coef_, result.fixed_effects.to_numpy()[1:])
    assert [f.name for f in dataclasses.fields(result)][:6] == [
        "method",
        "n_obs",
        "fixed_effects",
        "fixed_effects_se",
        "fixed_effects_cov",
        "variance_components",
    ]


def test_pickle_before_any_access_holds_every_table(sleep):
    restored = pickle.loads(pickle.dumps(_fit(*sleep)))
    model = _fit(*sleep)
    for attribute in TABLES:
        a, b = getattr(restored, attribute), getattr(model, attribute)
        assert type(a) is type(b)
        assert a.equals(b)
    for name, modes in model.random_effects_.items():
        pd.testing.assert_frame_equal(restored.random_effects_[name], modes, check_exact=True)


def test_unfitted_attribute_is_missing_as_python_says(sleep):
    model = MixedLMRegressor(group="Subject")
    assert not hasattr(model, "fixed_effects_") and not hasattr(model, "coef_")
    message = "'MixedLMRegressor' object has no attribute 'variance_components_'"
    with pytest.raises(AttributeError, match=re.escape(message)):
        _ = model.variance_components_


def test_refit_replaces_values_set_on_the_instance(sleep):
    model = _fit(*sleep)
    model.sigma_ = -1.0
    assert model.sigma_ == -1.0
    model.fit(*sleep)
    assert model.sigma_ == model.result_.sigma > 0


@pytest.mark.parametrize("weighted", [False, True])
def test_scaled_residuals_are_those_of_predict(sleep, weighted):
    X, y = sleep
    w = np.linspace(0.5, 2.0, len(y)) if weighted else None
    if weighted:  # prior weights, the estimator's weights column
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MixedLMRegressor(
                group="Subject", random_effects=["Days"], weights="w"
            ).fit(X.assign(w=w), y)
    else:
        model = _fit(X, y)
    residuals = y.to_numpy() - model.predict(X)
    if weighted:
        residuals = residuals * np.sqrt(w)
    np.testing.assert_array_equal(model.scaled_residuals_, residuals / model.sigma_)


def test_parameters_found_valid_do_not_excuse_invalid_ones(sleep):
    model = _fit(*sleep)
    model.set_params(method="XX")
    with pytest.raises(InvalidParameterError, match="'method' parameter"):
        model.fit(*sleep)
    model.set_params(method="ML", tol=1e-6)
    model.fit(*sleep)
    model.set_params(tol=-1e-6)
    with pytest.raises(InvalidParameterError, match="'tol' parameter"):
        model.fit(*sleep)


@pytest.mark.parametrize(
    "columns",
    [["Days", "Days"], ["Days", 0], ["Days", np.str_("Subject")]],
    ids=["duplicated", "mixed types", "numpy string"],
)
def test_column_names_scikit_learn_refuses_are_refused_as_it_does(sleep, columns):
    X = sleep[0].set_axis(columns, axis=1)
    try:
        validate_data(LinearRegression(), X, skip_check_array=True)
    except Exception as refused:  # noqa: BLE001 (scikit-learn's own refusal, whatever it is)
        with pytest.raises(type(refused), match=re.escape(str(refused))):
            MixedLMRegressor(group=columns[1]).fit(X, sleep[1])
    else:
        # pandas with pyarrow strings stores np.str_ labels as str: scikit-learn accepts.
        assert columns[1] == "Subject"
        MixedLMRegressor(group=columns[1]).fit(X, sleep[1])
