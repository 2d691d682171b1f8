"""Property-based tests: exact invariances of the model, and no crash on small designs.

Permuting rows, relabelling groups, adding a constant to y, scaling y and reordering
columns change nothing but what they must (the intercept; the scale of sigma, the
variances and the log-likelihood). These hold exactly in exact arithmetic, so the
comparisons are tight (1e-5 relative, 1e-6 on the log-likelihood). The fits use
``tol=1e-12``: at the default 1e-8 the optimizer stops anywhere in a ~1e-4 band of θ on
flat criteria (as lme4's does), and two fits of the same model can stop at different
points of it; the invariance is about the optimum, not about where a tolerance stops.
"""

import math
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sklmixed import MixedLMRegressor
from sklmixed.exceptions import UnboundedLikelihoodWarning

TOL = 1e-12
RTOL = 1e-5
LL_ATOL = 1e-6

# deadline=None: a fit takes 10-50 ms and hypothesis' timing would be noise. database=None:
# nothing written to the repository. The whole module runs in 15-30 s on 2 cores.
INVARIANCE = settings(max_examples=25, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------- strategies


@st.composite
def designs(draw, min_size=3, two_slopes=False):
    """A well-posed small design: 3-8 groups of `min_size`-8 rows, two features,
    optionally a random slope, a second crossed factor and prior weights. With
    `two_slopes`, y has random slopes on both features (for (x1 + x2 | g) models)."""
    n_groups = draw(st.integers(3, 8))
    sizes = draw(st.lists(st.integers(min_size, 8), min_size=n_groups, max_size=n_groups))
    slope = draw(st.booleans())
    crossed = draw(st.booleans())
    weighted = draw(st.booleans())
    method = draw(st.sampled_from(["REML", "ML"]))
    covariance = draw(st.sampled_from(["unstructured", "diagonal"]))
    seed = draw(st.integers(0, 2**32 - 1))

    rng = np.random.default_rng(seed)
    g = rng.permutation(np.repeat(np.arange(n_groups), sizes))
    n = g.size
    x1, x2 = rng.normal(size=(2, n))
    u = rng.normal(size=n_groups) * rng.uniform(0.3, 2.0)
    v = rng.normal(size=n_groups) * rng.uniform(0.2, 1.0)
    y = 1.0 + 0.5 * x1 - x2 + u[g] + (v[g] * x1 if slope else 0.0) + rng.normal(size=n)
    if two_slopes:
        y = y + v[g] * x1 + rng.normal(size=n_groups)[g] * x2
    X = pd.DataFrame({"x1": x1, "x2": x2, "g": g})
    group = ["g"]
    # Well posed: fewer fixed plus random effects than rows. Otherwise [X Z] can
    # interpolate y, the optimum sits at sigma -> 0 (theta -> infinity) and every fit
    # stops somewhere along that asymptote (lme4's too): nothing to compare.
    q = 3 if two_slopes else 1 + slope
    assume(n > 3 + q * n_groups + 4 * crossed + 2)
    if crossed:
        h = rng.integers(0, 4, size=n)
        y = y + rng.normal(size=4)[h]
        X["h"] = np.array(["a", "b", "c", "d"])[h]
        group.append("h")
    params = dict(group=group, method=method, covariance=covariance, tol=TOL,
                  random_effects={"g": ["x1"]} if slope else None)
    weights = rng.uniform(0.5, 2.0, size=n) if weighted else None
    return X, pd.Series(y, name="y"), weights, params


def fit(params, X, y, weights=None, **kwargs):
    """The fit of a design; prior weights, when drawn, as the estimator's weight column."""
    if weights is not None:
        X, params = X.assign(w=weights), {**params, "weights": "w"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MixedLMRegressor(**params).fit(X, y, **kwargs)


def covariance_matrices(model):
    """Each factor's covariance of random effects, as a DataFrame named by column."""
    out = {}
    vc = model.variance_components_
    for factor, modes in model.random_effects_.items():
        names = list(modes.columns)
        rows = vc[vc["group"].str.split(".").str[0] == factor]
        cov = pd.DataFrame(0.0, index=names, columns=names)
        for _, r in rows.iterrows():
            a = r["var1"]
            b = a if pd.isna(r["var2"]) else r["var2"]
            cov.loc[a, b] = cov.loc[b, a] = r["vcov"]
        out[factor] = cov
    return out


def assert_equivalent(a, b, *, scale=1.0, shift=0.0, ll_shift=0.0, label_map=None,
                      same_theta=True):
    """b is the fit of a's data transformed: y -> shift + scale * y (and relabelled)."""
    # Log-likelihood up to the known Jacobian.
    assert abs(b.log_likelihood_ - (a.log_likelihood_ + ll_shift)) <= LL_ATOL * max(
        1.0, abs(a.log_likelihood_)), (a.log_likelihood_, b.log_likelihood_, ll_shift)
    # Fixed effects, by name: all scale, the intercept also shifts.
    expected = scale * a.fixed_effects_
    if "(Intercept)" in expected.index:
        expected["(Intercept)"] += shift
    got = b.fixed_effects_[expected.index]
    se = scale * a.fixed_effects_se_.max()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * se)
    np.testing.assert_allclose(b.fixed_effects_se_[expected.index], scale * a.fixed_effects_se_,
                               rtol=RTOL, atol=RTOL * se)
    np.testing.assert_allclose(b.sigma_, scale * a.sigma_, rtol=RTOL)
    # Variance components scale by scale²; compared as covariance matrices.
    cov_a, cov_b = covariance_matrices(a), covariance_matrices(b)
    assert set(cov_a) == set(cov_b)
    biggest = scale**2 * max([c.abs().to_numpy().max() for c in cov_a.values()] + [a.sigma_**2])
    for factor, ca in cov_a.items():
        cb = cov_b[factor].loc[ca.index, ca.columns]
        np.testing.assert_allclose(cb, scale**2 * ca, rtol=RTOL, atol=RTOL * biggest)
    if same_theta and not (a.is_singular_ or b.is_singular_):
        # At a singular fit θ is not unique (T[j, j] = 0 leaves column j's entries free
        # up to T Tᵀ), so it is compared through the covariances above.
        np.testing.assert_allclose(b.theta_, a.theta_, rtol=RTOL,
                                   atol=RTOL * max(1.0, np.abs(a.theta_).max()))
    # Conditional modes, level by level.
    for factor, modes_a in a.random_effects_.items():
        modes_b = b.random_effects_[factor]
        levels = modes_a.index if label_map is None or factor not in label_map else [
            label_map[factor][lv] for lv in modes_a.index]
        order = modes_b.index.get_indexer(pd.Index(levels, dtype=object))
        assert (order >= 0).all()
        got_modes = modes_b.to_numpy()[order][:, [list(modes_b.columns).index(c)
                                                   for c in modes_a.columns]]
        top = scale * max(np.abs(modes_a.to_numpy()).max(), a.sigma_)
        np.testing.assert_allclose(got_modes, scale * modes_a.to_numpy(), rtol=RTOL,
                                   atol=RTOL * top)


# ------------------------------------------------------------------ invariances


@INVARIANCE
@given(design=designs(), perm_seed=st.integers(0, 2**32 - 1))
def test_permuting_rows(design, perm_seed):
    X, y, w, params = design
    order = np.random.default_rng(perm_seed).permutation(len(y))
    a = fit(params, X, y, w)
    b = fit(params, X.iloc[order], y.iloc[order], None if w is None else w[order])
    assert_equivalent(a, b)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=RTOL,
                               atol=RTOL * np.abs(y).max())


@INVARIANCE
@given(design=designs(), kind=st.sampled_from(["str", "negative int", "tuple", "mixed"]),
       perm_seed=st.integers(0, 2**32 - 1))
def test_relabelling_groups(design, kind, perm_seed):
    X, y, w, params = design
    old = np.unique(X["g"])
    new_codes = np.random.default_rng(perm_seed).permutation(len(old))
    make = {
        "str": lambda k: f"level {k:03d}",
        "negative int": lambda k: -7 * k - 1,
        "tuple": lambda k: ("school", int(k)),
        "mixed": lambda k: [int(k), f"L{k}", ("t", int(k)), k + 0.5][k % 4],
    }[kind]
    mapping = {lv: make(int(c)) for lv, c in zip(old, new_codes)}
    Xb = X.assign(g=pd.Series([mapping[v] for v in X["g"]], index=X.index, dtype=object))
    a = fit(params, X, y, w)
    b = fit(params, Xb, y, w)
    assert_equivalent(a, b, label_map={"g": mapping})
    np.testing.assert_allclose(b.predict(Xb), a.predict(X), rtol=RTOL,
                               atol=RTOL * np.abs(y).max())


@INVARIANCE
@given(design=designs(), shift=st.sampled_from([-1e6, -3.0, 0.25, 1e3, 1e6]))
def test_adding_a_constant_to_y_moves_only_the_intercept(design, shift):
    X, y, w, params = design
    a = fit(params, X, y, w)
    b = fit(params, X, y + shift, w)
    # y + 1e6 loses ~1e-10 of y's precision: the tolerances below are far above that.
    assert_equivalent(a, b, shift=shift)


@INVARIANCE
@given(design=designs(), scale=st.sampled_from([1e-6, 1e-3, 0.37, 7.0, 1e3, 1e6]))
def test_scaling_y(design, scale):
    """Variances by scale², sigma by scale, θ unchanged; the log-likelihood moves by the
    Jacobian -(n - p) log(scale) (REML) or -n log(scale) (ML)."""
    X, y, w, params = design
    a = fit(params, X, y, w)
    b = fit(params, X, y * scale, w)
    n, p = len(y), a.fixed_effects_.size
    jacobian = (n - p if params["method"] == "REML" else n) * math.log(scale)
    assert_equivalent(a, b, scale=scale, ll_shift=-jacobian)


@INVARIANCE
@given(design=designs(), perm_seed=st.integers(0, 2**32 - 1))
def test_reordering_columns(design, perm_seed):
    X, y, w, params = design
    columns = list(np.random.default_rng(perm_seed).permutation(X.columns))
    a = fit(params, X, y, w)
    b = fit(params, X[columns], y, w)
    assert_equivalent(a, b)
    assert list(b.fixed_effects_.index[1:]) == [c for c in columns if c in ("x1", "x2")]
    np.testing.assert_allclose(b.predict(X[columns]), a.predict(X), rtol=RTOL,
                               atol=RTOL * np.abs(y).max())


@settings(INVARIANCE, max_examples=10)  # q = 3: the slowest fits here
@given(design=designs(min_size=6, two_slopes=True))
def test_reordering_random_effect_columns(design):
    """(x1 + x2 | g) and (x2 + x1 | g): other θ (another Cholesky order), same covariance."""
    X, y, w, params = design
    params = dict(params, random_effects={"g": ["x1", "x2"]})
    a = fit(params, X, y, w)
    b = fit(dict(params, random_effects={"g": ["x2", "x1"]}), X, y, w)
    assert_equivalent(a, b, same_theta=False)


@INVARIANCE
@given(design=designs(), copies=st.sampled_from(["duplicate", "combination", "zero"]))
def test_adding_an_aliased_column_changes_nothing(design, copies):
    X, y, w, params = design
    extra = {"duplicate": X["x1"], "combination": X["x1"] - 2.5 * X["x2"] + 1.0,
             "zero": 0.0 * X["x1"]}[copies]
    a = fit(params, X, y, w)
    b = fit(params, X.assign(alias=extra), y, w)
    assert list(b.result_.dropped_fixed) == ["alias"]
    assert_equivalent(a, b)


# ----------------------------------------------------------- no crash, ever


@st.composite
def small_designs(draw):
    """Anything small: 1-6 groups of 1-5 rows, 0-3 features of any kind (constant, zero,
    duplicated, integer), random slopes or not, any covariance, weights, a response with
    ties, a huge offset, or none of that."""
    n_groups = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(1, 5), min_size=n_groups, max_size=n_groups))
    kinds = draw(st.lists(st.sampled_from(["normal", "constant", "zero", "duplicate",
                                           "integer", "group-level", "tiny", "huge"]),
                          max_size=3))
    n_slopes = draw(st.integers(0, len(kinds)))
    response = draw(st.sampled_from(["normal", "ties", "offset", "grouped", "linear"]))
    params = dict(
        method=draw(st.sampled_from(["REML", "ML"])),
        covariance=draw(st.sampled_from(["unstructured", "diagonal"])),
        random_intercept=draw(st.sampled_from([True, True, True, False])),
        fit_intercept=draw(st.booleans()),
        max_iter=draw(st.sampled_from([3, 100_000])),
    )
    weighted = draw(st.booleans())
    crossed = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), sizes)
    n = g.size
    columns = {}
    for j, kind in enumerate(kinds):
        columns[f"f{j}"] = {
            "normal": lambda: rng.normal(size=n),
            "constant": lambda: np.full(n, 2.0),
            "zero": lambda: np.zeros(n),
            "duplicate": lambda: columns["f0"].copy() if columns else rng.normal(size=n),
            "integer": lambda: rng.integers(0, 3, size=n).astype(float),
            "group-level": lambda: rng.normal(size=n_groups)[g],
            "tiny": lambda: 1e-8 * rng.normal(size=n),
            "huge": lambda: 1e8 * rng.normal(size=n),
        }[kind]()
    y = {
        "normal": lambda: rng.normal(size=n) + rng.normal(size=n_groups)[g],
        "ties": lambda: rng.integers(0, 2, size=n).astype(float),
        "offset": lambda: 1e6 + rng.normal(size=n),
        "grouped": lambda: rng.normal(size=n_groups)[g],
        "linear": lambda: sum(columns.values(), np.ones(n)) + 1e-3 * rng.normal(size=n),
    }[response]()
    X = pd.DataFrame(columns).assign(g=g)
    group = ["g"]
    if crossed:
        X["h"] = rng.integers(0, 3, size=n)
        group.append("h")
    params["group"] = group
    params["random_effects"] = list(columns)[:n_slopes]
    weights = rng.uniform(0.2, 5.0, size=n) if weighted else None
    return X, y, weights, params


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(design=small_designs())
def test_small_designs_fit_or_refuse_clearly(design):
    """A fit with a finite log-likelihood, or a ValueError of our own (not numpy's
    LinAlgError, a ValueError subclass that explains nothing), or, where the model
    reproduces y, a log-likelihood of +inf said by UnboundedLikelihoodWarning."""
    X, y, w, params = design
    if w is not None:  # prior weights, as the estimator's weight column
        X, params = X.assign(w=w), {**params, "weights": "w"}
    model = MixedLMRegressor(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except Exception as error:
            if isinstance(error, np.linalg.LinAlgError) or not isinstance(error, ValueError):
                raise
            assert str(error), "a ValueError with no message"
            return
        prediction = model.predict(X)
    unbounded = any(issubclass(c.category, UnboundedLikelihoodWarning) for c in caught)
    assert unbounded == (model.log_likelihood_ == np.inf), model.log_likelihood_
    assert unbounded or np.isfinite(model.log_likelihood_), model.log_likelihood_
    assert np.isfinite(model.sigma_) and model.sigma_ >= 0
    assert np.isfinite(model.fixed_effects_).all()
    assert prediction.shape == (len(y),) and np.isfinite(prediction).all()
    assert isinstance(model.converged_, bool)
    if "maximum number of evaluations" in model.optimizer_record_.message:
        assert not model.converged_
