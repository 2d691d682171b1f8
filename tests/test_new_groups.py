"""add_groups: new levels conditioned on their own rows at the fitted θ, β, σ.

Checked against dense computations written from the definition: the penalized
least-squares problem of the new levels with θ, β, σ and the known levels' modes held
(for one factor, a refit of every level with θ, β, σ held gives the same modes: the
levels are independent given β), and the variance of a prediction that propagates the
uncertainty of (u, β) through the new modes. On Exam, five students of a held-out
school improve that school's R² over the population prediction.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from sklmixed import MixedLMRegressor, lmer
from sklmixed.datasets import load_exam, load_sleepstudy

from ._lme4 import DATA
from .test_prediction import _tril, dense_system


def _new_level_matrices(model, frame, factor_names):
    """Dense ``Z_n Λ_n`` of the rows of ``frame`` on the levels of ``factor_names`` that
    the fit has not seen (the column order: factor by factor, levels sorted)."""
    T_of = {term.factor: _tril(term) for term in model.result_.terms}
    blocks, labels = [], {}
    for name in factor_names:
        column = frame[name].to_numpy()
        new = np.array(sorted(set(column) - set(model.levels_[name])), dtype=column.dtype)
        labels[name] = new
        q = T_of[name].shape[0]
        Z = np.zeros((len(frame), new.size * q))
        code = pd.Index(new).get_indexer(column)
        z = (
            np.ones((len(frame), 1))
            if q == 1
            else np.column_stack([np.ones(len(frame)), frame["Days"]])
        )
        for a in range(q):
            rows = np.flatnonzero(code >= 0)
            Z[rows, code[rows] * q + a] = z[rows, a]
        blocks.append(Z @ np.kron(np.eye(new.size), T_of[name]))
    return np.hstack(blocks), labels


def _dense_conditioning(model, train, rows, y, new_factors, weights=None, train_weights=None):
    """Modes and covariances of the new levels, and the pieces of the variance of a
    prediction, by dense linear algebra (θ, β, σ and the known modes held)."""
    ZL_old, X_old, w_old, sigma, _ = dense_system(model, train, train_weights)
    ZL_c, X_c, _, _, _ = dense_system(
        model, rows.assign(**{f: _known_or_first(model, rows, f) for f in new_factors})
    )
    # Rows' known parts: zero where the row's level is new.
    known = np.ones((len(rows), ZL_c.shape[1]))
    start = 0
    for factor in model.design_.transform(model._validate_X(rows, None, reset=False)).factors:
        width = model.n_groups_[factor.name] * factor.q
        if factor.name in new_factors:
            is_new = ~rows[factor.name].isin(model.levels_[factor.name]).to_numpy()
            known[is_new, start : start + width] = 0.0
        start += width
    A_c = np.hstack([ZL_c * known, X_c])
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, float)
    beta = model.fixed_effects_.to_numpy()
    ZN, labels = _new_level_matrices(model, rows, new_factors)
    u_hat = _old_spherical_modes(model)
    r = y - A_c @ np.concatenate([u_hat, beta])
    M = ZN.T @ (w[:, None] * ZN) + np.eye(ZN.shape[1])
    u_new = np.linalg.solve(M, ZN.T @ (w * r))
    Q = ZL_old.shape[1]
    C = np.block(
        [
            [ZL_old.T @ (w_old[:, None] * ZL_old) + np.eye(Q), ZL_old.T @ (w_old[:, None] * X_old)],
            [X_old.T @ (w_old[:, None] * ZL_old), X_old.T @ (w_old[:, None] * X_old)],
        ]
    )
    return {
        "ZN": ZN, "labels": labels, "u_new": u_new, "M": M, "A_c": A_c, "w": w,
        "C_inv": np.linalg.inv(C), "sigma": sigma,
    }  # fmt: skip


def _known_or_first(model, rows, factor):
    """The factor's column with new labels replaced by a known one (for the known part's
    layout only; the new rows' known share is masked afterwards)."""
    column = rows[factor].copy()
    column[~column.isin(model.levels_[factor])] = model.levels_[factor][0]
    return column


def _old_spherical_modes(model):
    """û of the fit, from its modes: b = Λu per level, so u = T⁻¹ b."""
    T_of = {term.factor: _tril(term) for term in model.result_.terms}
    parts = []
    for name in model.design_.levels_:
        b = model.random_effects_[name].to_numpy()[: model.n_groups_[name]]
        parts.append(np.linalg.solve(T_of[name], b.T).T.ravel())
    return np.concatenate(parts)


def _dense_prediction_variance(dense, model, pred_rows, new_factors):
    """σ² (ãᵀ C⁻¹ ã + ζᵀ M⁻¹ ζ), ã = a − A_cᵀ W Z_n Λ_n M⁻¹ ζ, for rows of new levels."""
    ZL_p, X_p, _, sigma, _ = dense_system(
        model, pred_rows.assign(**{f: _known_or_first(model, pred_rows, f) for f in new_factors})
    )
    known = np.ones_like(ZL_p)
    start = 0
    for name in model.design_.levels_:
        q = model.random_effects_[name].shape[1]
        width = model.n_groups_[name] * q
        if name in new_factors:
            is_new = ~pred_rows[name].isin(model.levels_[name]).to_numpy()
            known[is_new, start : start + width] = 0.0
        start += width
    a = np.hstack([ZL_p * known, X_p])
    zeta, _ = _new_level_matrices(model, pred_rows, new_factors)
    # ζ's columns follow the conditioning rows' new levels (same labels here).
    M_inv = np.linalg.inv(dense["M"])
    G = M_inv @ dense["ZN"].T @ (dense["w"][:, None] * dense["A_c"])
    a_tilde = a - zeta @ G
    return sigma**2 * (
        np.einsum("ij,ij->i", a_tilde @ dense["C_inv"], a_tilde)
        + np.einsum("ij,ij->i", zeta @ M_inv, zeta)
    )


# ------------------------------------------------------------------------ one factor


@pytest.fixture(scope="module")
def sleep_split():
    frame = load_sleepstudy().frame.assign(w=lambda d: 1.0 + (d["Days"] % 3))
    held = frame["Subject"].isin([308, 333])
    train, test = frame[~held], frame[held]
    model = MixedLMRegressor(group="Subject", random_effects=["Days"], weights="w")
    return train, test, model.fit(train[["Days", "Subject", "w"]], train["Reaction"])


def test_one_factor_equals_a_refit_with_theta_beta_sigma_held(sleep_split):
    """With prior weights: the modes and covariances of two new subjects equal the dense
    penalized least-squares solution over all rows at the fitted θ, β, σ, in which the
    known subjects' modes are their fitted ones (independent of the new rows given β)."""
    train, test, model = sleep_split
    rows = test.iloc[[0, 1, 2, 10, 11, 15]]
    X = rows[["Days", "Subject", "w"]]
    new = model.add_groups(X, rows["Reaction"])
    # The refit of every level at θ, β, σ held, dense.
    both = pd.concat([train, rows])
    ZL, Xb, w, sigma, _ = dense_system(new, both[["Days", "Subject", "w"]], both["w"])
    beta = model.fixed_effects_.to_numpy()
    M = ZL.T @ (w[:, None] * ZL) + np.eye(ZL.shape[1])
    u = np.linalg.solve(M, ZL.T @ (w * (both["Reaction"].to_numpy() - Xb @ beta)))
    T = _tril(model.result_.terms[0])
    b = u.reshape(-1, 2) @ T.T
    np.testing.assert_allclose(new.random_effects_["Subject"].to_numpy(), b, rtol=1e-8, atol=1e-9)
    cov = (
        sigma**2
        * np.kron(np.eye(ZL.shape[1] // 2), T)
        @ np.linalg.inv(M)
        @ np.kron(np.eye(ZL.shape[1] // 2), T).T
    )
    blocks = np.array([cov[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] for i in range(ZL.shape[1] // 2)])
    np.testing.assert_allclose(new.random_effects_cond_var_["Subject"][-2:], blocks[-2:], rtol=1e-8)
    # The fitted levels keep their modes; the original model is unchanged.
    np.testing.assert_array_equal(
        new.random_effects_["Subject"].to_numpy()[:-2], model.random_effects_["Subject"].to_numpy()
    )
    assert list(new.levels_["Subject"][-2:]) == [308, 333]
    assert 308 not in model.levels_["Subject"] and new.n_groups_ == model.n_groups_


def test_one_factor_prediction_variance_propagates_beta(sleep_split):
    train, test, model = sleep_split
    rows = test.iloc[[0, 1, 2, 10, 11, 15]]
    X = rows[["Days", "Subject", "w"]]
    new = model.add_groups(X, rows["Reaction"])
    dense = _dense_conditioning(
        model, train[["Days", "Subject", "w"]], X, rows["Reaction"].to_numpy(), ["Subject"],
        weights=rows["w"], train_weights=train["w"],
    )  # fmt: skip
    pred = test[["Days", "Subject", "w"]]
    _, std = new.predict(pred, return_std=True)
    expected = _dense_prediction_variance(dense, model, pred, ["Subject"])
    np.testing.assert_allclose(std**2, expected, rtol=1e-8)


def test_chained_calls_equal_one_call(sleep_split):
    """Rows of an added level given later are conditioned on with the earlier ones."""
    _, test, model = sleep_split
    X, y = test[["Days", "Subject", "w"]], test["Reaction"]
    once = model.add_groups(X, y)
    twice = model.add_groups(X.iloc[:7], y.iloc[:7]).add_groups(X.iloc[7:], y.iloc[7:])
    np.testing.assert_allclose(
        twice.random_effects_["Subject"], once.random_effects_["Subject"], rtol=1e-10
    )
    np.testing.assert_allclose(
        twice.predict(X, return_std=True), once.predict(X, return_std=True), rtol=1e-10
    )


def test_an_added_model_pickles(sleep_split):
    _, test, model = sleep_split
    X, y = test[["Days", "Subject", "w"]], test["Reaction"]
    added = model.add_groups(X.iloc[:4], y.iloc[:4])
    restored = pickle.loads(pickle.dumps(added))
    np.testing.assert_array_equal(
        restored.predict(X, return_std=True), added.predict(X, return_std=True)
    )


def test_refusals_and_policies(sleep_split):
    train, test, model = sleep_split
    X, y = test[["Days", "Subject", "w"]], test["Reaction"]
    seen = pd.concat([X.iloc[:3], train[["Days", "Subject", "w"]].iloc[:2]])
    with pytest.raises(ValueError, match=r"2 row\(s\) \(the first is row 3: Subject=309\) have no "
                                         "group level new to the fit.*refit"):  # fmt: skip
        model.add_groups(seen, np.r_[y.iloc[:3], train["Reaction"].iloc[:2]])
    missing = X.iloc[:3].astype({"Subject": object})
    missing.iloc[1, 1] = None
    with pytest.raises(ValueError, match="missing labels"):
        model.add_groups(missing, y.iloc[:3])
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        model.add_groups(X.iloc[:3], y.iloc[:2])
    # The unseen-level policy applies to every other new level.
    strict = MixedLMRegressor(group="Subject", random_effects=["Days"], unseen_levels="error")
    strict.fit(train[["Days", "Subject"]], train["Reaction"])
    added = strict.add_groups(test[["Days", "Subject"]].iloc[:5], y.iloc[:5])  # 308 only
    added.predict(test[["Days", "Subject"]].iloc[:5], return_std=True)
    with pytest.raises(ValueError, match=r"not seen in fit \(333\)"):
        added.predict(test[["Days", "Subject"]])


# ------------------------------------------------------------------- crossed factors


@pytest.fixture(scope="module")
def penicillin_split():
    frame = pd.read_csv(DATA / "Penicillin.csv")
    held = frame["plate"].isin(["x"]) | frame["sample"].isin(["F"])
    train = frame[~held]
    return frame, train, lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", train)


@pytest.mark.parametrize("case", ["new sample, known plates", "new plate and new sample"])
def test_crossed_new_levels_against_dense(penicillin_split, case):
    """A new sample conditioned on rows of known plates (their modes held), or a new
    plate and a new sample conditioned jointly, and the variance of predictions that use
    them, against the dense definition."""
    frame, train, model = penicillin_split
    if case == "new sample, known plates":
        rows = frame[(frame["sample"] == "F") & (frame["plate"] != "x")].iloc[:6]
        factors = ["sample"]
    else:
        rows = frame[(frame["sample"] == "F") | (frame["plate"] == "x")].iloc[::2]
        factors = ["plate", "sample"]
    new = model.add_groups(rows, rows["diameter"])
    dense = _dense_conditioning(model, train, rows, rows["diameter"].to_numpy(), factors)
    T_of = {term.factor: _tril(term) for term in model.result_.terms}
    b_new = dense["u_new"].copy()
    start = 0
    for name in factors:
        for label in dense["labels"][name]:
            q = T_of[name].shape[0]
            b = T_of[name] @ b_new[start : start + q]
            np.testing.assert_allclose(
                new.random_effects_[name].loc[label].to_numpy(), b, rtol=1e-8
            )
            start += q
    pred = frame[(frame["sample"] == "F") & (frame["plate"] != "x")]
    if case == "new plate and new sample":
        pred = frame[(frame["sample"] == "F") | (frame["plate"] == "x")]
    _, std = new.predict(pred, return_std=True)
    np.testing.assert_allclose(
        std**2, _dense_prediction_variance(dense, model, pred, factors), rtol=1e-8
    )


# ----------------------------------------------------------------- Exam, held-out school


def test_five_students_improve_a_new_schools_predictions():
    """Hold out a school; condition on 5 of its students; the R² of its other students
    beats the population prediction (and the new students' intervals are narrower)."""
    exam = load_exam(as_frame=True).frame
    gains = []
    for school in (1, 17, 40):  # three schools of different sizes and effects
        held = exam["school"] == school
        train, test = exam[~held], exam[held]
        features = ["standLRT", "schavg", "school"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MixedLMRegressor(group="school", random_effects=["standLRT"])
            model.fit(train[features], train["normexam"])
        labelled, rest = test.iloc[:5], test.iloc[5:]
        added = model.add_groups(labelled[features], labelled["normexam"])
        r2_population = r2_score(rest["normexam"], model.predict(rest[features]))
        r2_added = r2_score(rest["normexam"], added.predict(rest[features]))
        gains.append(r2_added - r2_population)
        _, std_new = model.predict(rest[features], return_std=True)
        _, std_added = added.predict(rest[features], return_std=True)
        assert (std_added < std_new).all()
    assert min(gains) > 0, gains
