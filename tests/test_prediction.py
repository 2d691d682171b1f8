"""Prediction: choice of random effects, standard errors against dense linear algebra,
the joint-covariance kernel on arbitrary rows, unseen levels, intervals, simulation.

The dense references here are written from the model's definition (``Z``, ``Λ``, ``X``,
the weights, σ) with numpy, independent of the blocked factor; lme4's own numbers are
in test_prediction_reference.py.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklmixed import MixedLMRegressor, lmer
from sklmixed.datasets import load_exam, load_sleepstudy
from sklmixed.prediction import JointRows, prediction_state

from ._lme4 import DATA


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def sleep():
    frame = load_sleepstudy().frame
    model = MixedLMRegressor(group="Subject", random_effects=["Days"])
    return frame, model.fit(frame[["Days", "Subject"]], frame["Reaction"])


@pytest.fixture(scope="module")
def penicillin():
    frame = pd.read_csv(DATA / "Penicillin.csv")
    return frame, lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", frame)


# ------------------------------------------------------------------- dense references


def dense_system(model, frame, weights=None):
    """``Z Λ`` (n × Q: factor by factor, level-major), X, W and σ of a fitted model, from
    its θ in the data's units."""
    arrays = model.design_.transform(model._validate_X(frame, None, reset=False))
    result = model.result_
    T_of = {term.factor: _tril(term) for term in result.terms}  # one term per factor here
    ZL, blocks = [], []
    for factor in arrays.factors:
        T = T_of[factor.name]
        m, q = factor.n_levels, factor.q
        Z = np.zeros((arrays.n_obs, m * q))
        for a in range(q):
            Z[np.arange(arrays.n_obs), factor.codes * q + a] = factor.columns[:, a]
        ZL.append(Z @ np.kron(np.eye(m), T))
        blocks.append(factor.name)
    w = np.ones(arrays.n_obs) if weights is None else np.asarray(weights, float)
    return np.hstack(ZL), arrays.X, w, result.sigma, blocks


def _tril(term):
    """A term's ``T`` from its θ (column-wise lower triangle)."""
    q = len(term.column_names)
    T = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    T[rows[order], cols[order]] = term.theta
    return T


def dense_variances(ZL, X, w, sigma, A):
    """``σ² aᵀ C⁻¹ a`` for the rows of ``A = [ZL rows, X rows]``."""
    Q = ZL.shape[1]
    C = np.block(
        [
            [ZL.T @ (w[:, None] * ZL) + np.eye(Q), ZL.T @ (w[:, None] * X)],
            [X.T @ (w[:, None] * ZL), X.T @ (w[:, None] * X)],
        ]
    )
    return sigma**2 * np.einsum("ij,ij->i", A @ np.linalg.inv(C), A)


# ------------------------------------------------------------- choice of random effects


def test_random_effects_choice(penicillin):
    frame, model = penicillin
    beta = model.fixed_effects_.to_numpy()
    plate = model.random_effects_["plate"].loc[frame["plate"]].to_numpy()[:, 0]
    sample = model.random_effects_["sample"].loc[frame["sample"]].to_numpy()[:, 0]
    np.testing.assert_allclose(model.predict(frame), beta[0] + plate + sample)
    np.testing.assert_allclose(model.predict(frame, random_effects="all"), model.predict(frame))
    np.testing.assert_allclose(
        model.predict(frame, random_effects="none"), np.full(len(frame), beta[0])
    )
    np.testing.assert_allclose(
        model.predict(frame, random_effects=[]), np.full(len(frame), beta[0])
    )
    np.testing.assert_allclose(model.predict(frame, random_effects=["sample"]), beta[0] + sample)
    with pytest.raises(
        ValueError, match=r"\['plates'\] are not grouping factors.*'plate', 'sample'"
    ):
        model.predict(frame, random_effects=["plates"])
    with pytest.raises(ValueError, match="'all', 'none' or a list"):
        model.predict(frame, random_effects="plate")


def test_standard_errors_against_dense_with_weights():
    """Prior weights and frequency weights (a row counted twice) against dense C⁻¹."""
    frame = load_sleepstudy().frame.assign(w=lambda d: 1.0 + (d["Days"] % 3))
    frequency = np.where(np.arange(len(frame)) % 7 == 0, 2.0, 1.0)
    X = frame[["Days", "Subject", "w"]]
    model = MixedLMRegressor(group="Subject", random_effects=["Days"], weights="w")
    model.fit(X, frame["Reaction"], sample_weight=frequency)
    ZL, Xf, w, sigma, _ = dense_system(model, X, frame["w"] * frequency)
    _, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(
        std**2, dense_variances(ZL, Xf, w, sigma, np.hstack([ZL, Xf])), rtol=1e-9
    )
    _, std0 = model.predict(X, return_std=True, random_effects="none")
    A0 = np.hstack([np.zeros_like(ZL), Xf])
    np.testing.assert_allclose(std0**2, dense_variances(ZL, Xf, w, sigma, A0), rtol=1e-9)
    # A new observation adds σ²/w, w from the weights column of the new rows.
    interval = model.predict_interval(X, kind="observation", level=0.9)
    half = (interval[:, 1] - interval[:, 0]) / 2 / 1.6448536269514722
    np.testing.assert_allclose(half**2, std**2 + sigma**2 / frame["w"], rtol=1e-9)


def test_crossed_factors_one_left_out(penicillin):
    """Leaving a factor out removes its share from the mean's variance; a new
    observation gets that factor's prior variance instead."""
    frame, model = penicillin
    ZL, X, w, sigma, blocks = dense_system(model, frame)
    assert blocks == ["plate", "sample"]
    only_sample = np.hstack([ZL, X])
    only_sample[:, : model.n_groups_["plate"]] = 0.0
    _, std = model.predict(frame, random_effects=["sample"], return_std=True)
    np.testing.assert_allclose(std**2, dense_variances(ZL, X, w, sigma, only_sample), rtol=1e-9)
    prior_plate = model.variance_components_.set_index("group").loc["plate", "vcov"]
    interval = model.predict_interval(frame, random_effects=["sample"], kind="observation")
    half = (interval[:, 1] - interval[:, 0]) / 2 / 1.959963984540054
    np.testing.assert_allclose(half**2, std**2 + prior_plate + sigma**2, rtol=1e-9)


def test_slopes_crossed_with_a_second_factor(exam_crossed):
    """A random slope in the first factor and a second factor: every row's standard
    error, with both factors and with the second alone, against dense C⁻¹."""
    frame, model = exam_crossed
    rows = frame.iloc[::10]
    ZL, X, _, sigma, blocks = dense_system(model, rows)
    full_ZL, full_X, _, _, _ = dense_system(model, frame)
    Q = full_ZL.shape[1]
    C = np.block(
        [
            [full_ZL.T @ full_ZL + np.eye(Q), full_ZL.T @ full_X],
            [full_X.T @ full_ZL, full_X.T @ full_X],
        ]
    )
    C_inv = np.linalg.inv(C)
    A = np.hstack([ZL, X])
    _, std = model.predict(rows, return_std=True)
    np.testing.assert_allclose(std**2, sigma**2 * np.einsum("ij,ij->i", A @ C_inv, A), rtol=1e-9)
    assert blocks == ["school", "schgend"]
    A[:, : 2 * model.n_groups_["school"]] = 0.0
    _, std = model.predict(rows, random_effects=["schgend"], return_std=True)
    np.testing.assert_allclose(std**2, sigma**2 * np.einsum("ij,ij->i", A @ C_inv, A), rtol=1e-9)


# --------------------------------------------------------- the kernel on arbitrary rows


@pytest.fixture(scope="module")
def exam_crossed():
    """A first factor with a random slope (q₁ = 2) crossed with a second factor."""
    frame = load_exam(as_frame=True).frame
    formula = "normexam ~ standLRT + (standLRT | school) + (1 | schgend)"
    return frame, _quiet_fit(MixedLMRegressor(formula=formula), frame)


@pytest.mark.parametrize("dataset", ["penicillin", "sleep", "exam_crossed"])
def test_joint_kernel_on_arbitrary_sparse_rows(dataset, request):
    """aᵀ C⁻¹ a for random sparse a (several first-block levels per row, repeated
    second-block entries, a zero row) against the dense inverse of C, in the
    criterion's own coordinates (block order, unit-scale columns)."""
    frame, model = request.getfixturevalue(dataset)
    state = prediction_state(model.result_, list(model.design_.levels_))
    plan = model.result_.fit.criterion.stats.plan
    X_frame = frame[["Days", "Subject"]] if dataset == "sleep" else frame
    arrays = model.design_.transform(model._validate_X(X_frame, None, reset=False))
    ZL = []
    for fs in state.factors:
        factor = arrays.factors[plan.order[fs.block]]
        m, q = fs.n_fit_levels, fs.T.shape[0]
        Z = np.zeros((arrays.n_obs, m * q))
        for a in range(q):
            Z[np.arange(arrays.n_obs), factor.codes * q + a] = factor.columns[:, a] / fs.scale[a]
        ZL.append(Z @ np.kron(np.eye(m), fs.T))
    ZL, X = np.hstack(ZL), arrays.X
    Q, p = ZL.shape[1], X.shape[1]
    C_inv = np.linalg.inv(np.block([[ZL.T @ ZL + np.eye(Q), ZL.T @ X], [X.T @ ZL, X.T @ X]]))

    rng = np.random.default_rng(0)
    n = 40
    q1, m1 = state.factors[0].T.shape[0], state.factors[0].n_fit_levels
    Q1 = q1 * m1
    block1 = (rng.integers(0, n, 60), rng.integers(0, m1, 60), rng.standard_normal((60, q1)))
    block2 = None
    if Q > Q1:
        block2 = (rng.integers(0, n, 50), rng.integers(0, Q - Q1, 50), rng.standard_normal(50))
    x = rng.standard_normal((n, p))
    zero = np.setdiff1d(np.arange(n), np.concatenate([block1[0]] + ([block2[0]] if block2 else [])))
    x[zero] = 0.0
    rows = JointRows.build(x, block1, block2, q1=q1)
    dense = np.zeros((n, Q + p))
    for r, g, c in zip(*block1):
        dense[r, g * q1 : (g + 1) * q1] += c
    if block2 is not None:
        np.add.at(dense, (block2[0], Q1 + block2[1]), block2[2])
    dense[:, Q:] = x
    expected = np.einsum("ij,ij->i", dense @ C_inv, dense)
    np.testing.assert_allclose(state.covariance.quadratic_forms(rows), expected, rtol=1e-9)


# ------------------------------------------------------------------------ unseen levels


@pytest.fixture(scope="module")
def exam():
    frame = load_exam(as_frame=True).frame
    model = MixedLMRegressor(group="school", random_effects=["standLRT"])
    return frame, model.fit(frame[["standLRT", "school"]], frame["normexam"])


def test_unseen_levels_policies(exam):
    frame, model = exam
    rows = frame[["standLRT", "school"]].iloc[:6].copy()
    rows["school"] = [1, 2, 999, 999, 1000, 1]
    population = model.predict(rows, random_effects="none")
    predicted, std = model.predict(rows, return_std=True)
    np.testing.assert_allclose(predicted[2:5], population[2:5])
    _, std_none = model.predict(rows, random_effects="none", return_std=True)
    prior = model.result_.terms[0].covariance * model.sigma_**2
    z = np.column_stack([np.ones(6), rows["standLRT"]])
    np.testing.assert_allclose(
        std[2:5] ** 2, std_none[2:5] ** 2 + np.einsum("na,ab,nb->n", z, prior, z)[2:5], rtol=1e-9
    )
    warned = MixedLMRegressor(group="school", random_effects=["standLRT"], unseen_levels="warn")
    warned = warned.fit(frame[["standLRT", "school"]], frame["normexam"])
    with pytest.warns(UserWarning, match=r"2 level\(s\) not seen in fit \(999, 1000\) in 3 row"):
        np.testing.assert_allclose(warned.predict(rows), predicted)
    refusing = MixedLMRegressor(group="school", random_effects=["standLRT"], unseen_levels="error")
    refusing = refusing.fit(frame[["standLRT", "school"]], frame["normexam"])
    with pytest.raises(ValueError, match="not seen in fit.*unseen_levels='error'"):
        refusing.predict(rows, return_std=True)
    refusing.predict(frame[["standLRT", "school"]].iloc[:6])  # seen levels only: fine


@pytest.mark.parametrize("policy", ["population", "warn", "error"])
def test_labels_of_another_type_are_refused(exam, policy):
    """Fitted on integer school ids, predicting with "1", "2" (strings): no label matches,
    a mistake of type rather than a set of new schools, refused under every policy."""
    frame, _ = exam
    model = MixedLMRegressor(group="school", unseen_levels=policy)
    model.fit(frame[["standLRT", "school"]], frame["normexam"])
    as_strings = frame[["standLRT", "school"]].iloc[:5].astype({"school": str})
    calls = (
        model.predict,
        lambda X: model.predict(X, return_std=True),
        lambda X: model.predict_interval(X, kind="observation"),
        lambda X: model.simulate(X=X),
    )
    for call in calls:
        with pytest.raises(ValueError, match="fitted levels are numbers.*these labels are strings"):
            call(as_strings)
    with pytest.raises(ValueError, match="Convert them to the fitted type"):
        model.add_groups(as_strings, frame["normexam"].iloc[:5])
    # Through groups= and through a formula alike.
    by_groups = MixedLMRegressor(unseen_levels=policy)
    by_groups.fit(frame[["standLRT"]], frame["normexam"], groups=frame["school"])
    with pytest.raises(ValueError, match="these labels are strings"):
        by_groups.predict(frame[["standLRT"]].iloc[:5], groups=frame["school"].iloc[:5].astype(str))
    formula = lmer("normexam ~ standLRT + (1 | school)", frame, unseen_levels=policy)
    with pytest.raises(ValueError, match="these labels are strings"):
        formula.predict(frame.iloc[:5].astype({"school": str}))


def test_labels_that_are_the_same_values_match(exam):
    """Labels equal as R's factor() compares them match whatever their dtype: integer
    ids given as floats, as objects or as a Categorical. Fitted on strings, integers are
    refused as above."""
    frame, model = exam
    rows = frame[["standLRT", "school"]].iloc[::400]
    expected = model.predict(rows, return_std=True)
    for dtype in (float, object, "category"):
        got = model.predict(rows.astype({"school": dtype}), return_std=True)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    as_strings = MixedLMRegressor(group="school", random_effects=["standLRT"])
    as_strings.fit(frame[["standLRT", "school"]].astype({"school": str}), frame["normexam"])
    with pytest.raises(ValueError, match="fitted levels are strings.*these labels are numbers"):
        as_strings.predict(rows)


def test_categorical_labels_code_as_their_values(exam):
    """A Categorical column of new data codes through its categories, with the same
    predictions, unseen handling and messages as plain labels."""
    frame, model = exam
    rows = frame[["standLRT", "school"]].iloc[:50].copy()
    rows.loc[rows.index[:3], "school"] = 5000
    plain = model.predict(rows, return_std=True)
    as_category = rows.astype({"school": "category"})
    as_category["school"] = as_category["school"].cat.add_categories([7777])  # unused
    for a, b in zip(plain, model.predict(as_category, return_std=True)):
        np.testing.assert_allclose(a, b)
    warned = MixedLMRegressor(group="school", unseen_levels="warn")
    warned.fit(frame[["standLRT", "school"]], frame["normexam"])
    with pytest.warns(UserWarning, match=r"1 level\(s\) not seen in fit \(5000\) in 3 row"):
        warned.predict(as_category)
    missing = as_category.copy()
    missing.loc[missing.index[5], "school"] = np.nan
    with pytest.warns(UserWarning, match="1 missing label"):
        warned.predict(missing)


# -------------------------------------------------------------------------- intervals


def test_mean_interval_is_predict_plus_minus_z_std(sleep):
    frame, model = sleep
    X = frame[["Days", "Subject"]]
    mean, std = model.predict(X, return_std=True)
    interval = model.predict_interval(X, level=0.8)
    np.testing.assert_allclose(interval.mean(axis=1), mean)
    np.testing.assert_allclose((interval[:, 1] - mean) / std, 1.2815515655446004)
    obs = model.predict_interval(X, level=0.8, kind="observation")
    np.testing.assert_allclose(
        ((obs[:, 1] - mean) / 1.2815515655446004) ** 2, std**2 + model.sigma_**2
    )
    with pytest.raises(InvalidParameterError, match="'level' parameter"):
        model.predict_interval(X, level=95)
    with pytest.raises(InvalidParameterError, match="'kind' parameter"):
        model.predict_interval(X, kind="new")


def test_observation_interval_covers_at_the_nominal_rate():
    """Coverage of 90% intervals for new observations, by simulation (seed 20240705):
    rows of seen groups, of an unseen group, and of a new group conditioned on 5
    labelled rows. The intervals ignore the uncertainty of θ and σ (estimated from 30
    groups of 8), so the tolerance is 0.03 around 0.90 (about four standard errors of
    150 simulations of 20 rows)."""
    rng = np.random.default_rng(20240705)
    cov = np.array([[1.0, 0.2], [0.2, 0.25]])
    n_groups, per_group = 30, 8
    hits = {"seen": [], "unseen": [], "added": []}

    def draw(b, groups, n):
        g = np.repeat(groups, n)
        x = rng.uniform(-2, 2, g.size)
        y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(g.size)
        return pd.DataFrame({"x": x, "g": g}), y

    def covered(bounds, y):
        return np.mean((bounds[:, 0] <= y) & (y <= bounds[:, 1]))

    for _ in range(150):
        b = rng.multivariate_normal(np.zeros(2), cov, size=n_groups + 2)
        X, y = draw(b, np.arange(n_groups), per_group)
        model = _quiet_fit(MixedLMRegressor(group="g", random_effects=["x"]), X, y)
        Xn, yn = draw(b, np.arange(5), 4)
        hits["seen"].append(covered(model.predict_interval(Xn, kind="observation", level=0.9), yn))
        Xn, yn = draw(b, np.array([n_groups]), 20)
        hits["unseen"].append(
            covered(model.predict_interval(Xn, kind="observation", level=0.9), yn)
        )
        Xl, yl = draw(b, np.array([n_groups + 1]), 5)
        Xn, yn = draw(b, np.array([n_groups + 1]), 20)
        added = model.add_groups(Xl, yl)
        hits["added"].append(covered(added.predict_interval(Xn, kind="observation", level=0.9), yn))
    rates = {kind: float(np.mean(values)) for kind, values in hits.items()}
    assert all(abs(rate - 0.90) < 0.03 for rate in rates.values()), rates


# ------------------------------------------------------------------------- simulation


def test_simulate_shapes_seeds_and_moments(sleep):
    frame, model = sleep
    draws = model.simulate(n_draws=400, random_state=0)
    assert draws.shape == (len(frame), 400)
    np.testing.assert_array_equal(draws, model.simulate(n_draws=400, random_state=0))
    assert not np.array_equal(draws, model.simulate(n_draws=400, random_state=1))
    # New random effects: Cov(y_i, y_j) = z_iᵀ D z_j + σ² [i = j] within a subject.
    z = np.column_stack([np.ones(10), np.arange(10)])
    D = model.result_.terms[0].covariance * model.sigma_**2
    implied = z @ D @ z.T + model.sigma_**2 * np.eye(10)
    population = model.predict(frame[["Days", "Subject"]].iloc[:10], random_effects="none")
    np.testing.assert_allclose(
        draws[:10].mean(axis=1), population, atol=4 * np.sqrt(np.diag(implied).max() / 400)
    )
    assert np.abs(np.cov(draws[:10]) - implied).max() < 0.25 * np.abs(implied).max()
    # Fitted effects held: the mean is fitted_, the spread σ.
    held = model.simulate(n_draws=400, random_state=0, use_fitted_effects=True)
    np.testing.assert_allclose(held.mean(axis=1), model.fitted_, atol=4 * model.sigma_ / 20)
    np.testing.assert_allclose(held.std(axis=1).mean(), model.sigma_, rtol=0.05)
    with pytest.raises(InvalidParameterError, match="'n_draws' parameter"):
        model.simulate(n_draws=0)


def test_simulate_new_rows_share_a_draw_per_unseen_label(sleep):
    _, model = sleep
    rows = pd.DataFrame({"Days": [0.0, 0.0, 0.0, 0.0], "Subject": [1, 1, 2, 308]})
    draws = model.simulate(n_draws=4000, random_state=3, X=rows, use_fitted_effects=True)
    # Two rows of one unseen label share their effect: their difference is residual only.
    same = draws[0] - draws[1]
    np.testing.assert_allclose(same.std(), np.sqrt(2) * model.sigma_, rtol=0.05)
    assert (draws[0] - draws[2]).std() > 1.3 * same.std()
    # The seen subject keeps its mode.
    np.testing.assert_allclose(
        draws[3].mean(), model.predict(rows.iloc[3:]).item(), atol=4 * model.sigma_ / np.sqrt(4000)
    )
