"""The parametric bootstrap from the stored statistics: the draws against a simulation
over the rows, the batched refits against the fit's optimizer, and the quantiles
against lme4's bootMer (tests/reference/inference/bootstrap_sleepstudy.json, 2000
replicates with a recorded seed, written by make_intervals.R)."""

import json

import numpy as np
import pandas as pd
import pytest

from sklmixed import lmer
from sklmixed._core.terms import split_theta
from sklmixed.inference import bootstrap
from sklmixed.inference._batch_fit import BatchCriterion, newton_search
from sklmixed.inference._draws import draw_responses
from sklmixed.inference.bootstrap import _refit_one

from ._lme4 import REFERENCE, load_data

REF = json.loads((REFERENCE / "inference" / "bootstrap_sleepstudy.json").read_text())


@pytest.fixture(scope="module")
def sleep_fit():
    return lmer(REF["formula"], load_data("sleepstudy"))


def _draws(model, n, seed):
    result = model.result_
    crit = result.fit.criterion
    T = split_theta(result.fit.theta_scaled, crit.terms)
    c = result.fixed_effects.to_numpy() - crit.stats.plan.offset
    return draw_responses(crit.stats, crit.cp, T, c, result.sigma, n, np.random.default_rng(seed))


def test_draws_match_a_simulation_over_the_rows(sleep_fit):
    """Zᵀy*, Xᵀy* and y*ᵀy* drawn from the blocks against the same statistics of
    responses simulated row by row: means within 4 Monte Carlo standard errors,
    standard deviations within 4% (40,000 draws each)."""
    n = 40_000
    result = sleep_fit.result_
    crit = result.fit.criterion
    d = _draws(sleep_fit, n, 0)
    ours = np.vstack([d.Z1ty.transpose(1, 0, 2).reshape(-1, n), d.Xty, d.yty[None]])
    data = load_data("sleepstudy")
    codes = pd.Categorical(data.Subject.astype(str)).codes
    m = codes.max() + 1
    cols = np.column_stack([np.ones(len(data)), data.Days]) / crit.stats.plan.scales[0]
    Z = np.zeros((len(data), 2 * m))
    for a in range(2):
        Z[np.arange(len(data)), 2 * codes + a] = cols[:, a]
    X = np.column_stack([np.ones(len(data)), data.Days])
    T = split_theta(result.fit.theta_scaled, crit.terms)[0]
    rng = np.random.default_rng(1)
    c = result.fixed_effects.to_numpy() - crit.stats.plan.offset
    b = np.kron(np.eye(m), T) @ (rng.standard_normal((2 * m, n)) * result.sigma)
    y = (X @ c)[:, None] + Z @ b + rng.standard_normal((len(data), n)) * result.sigma
    rows = np.vstack([Z.T @ y, X.T @ y, (y * y).sum(axis=0)[None]])
    se = np.sqrt((ours.var(axis=1) + rows.var(axis=1)) / n)
    assert np.all(np.abs(ours.mean(axis=1) - rows.mean(axis=1)) < 4 * se)
    np.testing.assert_allclose(ours.std(axis=1), rows.std(axis=1), rtol=0.04)


def test_batched_refits_reach_the_optimizer_s_minimum(sleep_fit):
    """Each replicate's criterion after the batched search is no higher than after
    the fit's own optimizer on its statistics (to 1e-8)."""
    n = 60
    result = sleep_fit.result_
    crit = result.fit.criterion
    d = _draws(sleep_fit, n, 2)
    batch = BatchCriterion(crit.cp, crit.terms[0], d.Z1ty, d.Xty, d.yty, reml=True)
    theta, value, settled = newton_search(batch, result.fit.theta_scaled, crit.lower, n)
    assert settled.all()
    assert np.all(theta[crit.lower == 0] >= 0)
    for b in range(n):
        alone = _refit_one(crit.stats, d, b, reml=True)[0]
        assert value[b] <= batch(alone[:, None], np.array([b]))[0] + 1e-8


def test_batched_criterion_is_the_criterion(sleep_fit):
    """At the data's own response the batched criterion is the fit's criterion."""
    result = sleep_fit.result_
    crit = result.fit.criterion
    cp = crit.cp
    p = cp.n_fixed
    batch = BatchCriterion(
        cp, crit.terms[0], cp.Z1tXY_rows[:, :, p : p + 1], cp.XYtXY[:p, p : p + 1],
        cp.XYtXY[p, p : p + 1], reml=True,
    )  # fmt: skip
    moves = np.array([[0, 0.1, -0.2], [0, 0.3, 0.1], [0, -0.1, 0.4]])
    thetas = result.fit.theta_scaled[:, None] + moves
    values = batch(thetas, np.zeros(3, dtype=int))
    np.testing.assert_allclose(values, [crit(t) for t in thetas.T], rtol=1e-12)


# 10,000 replicates against lme4's 2,000: the difference of two sample quantiles has
# standard error sqrt(p(1 − p)(1/2000 + 1/10000)) / f, with f the density at the
# quantile read from lme4's neighbouring quantiles (0.02 and 0.03, 0.97 and 0.98).
# Each of the 12 quantiles must lie within 4 such errors (a chance failure about 1 in
# 1,300 runs of the test; the seed is fixed, so the test is deterministic).
N_BOOT, SEED, N_SE = 10_000, 20261203, 4.0


BOOT_REFS = {
    "sleepstudy": ("bootstrap_sleepstudy.json", "sleepstudy"),
    "dyestuff2": ("bootstrap_dyestuff2.json", "Dyestuff2"),  # a singular estimate
}


@pytest.mark.filterwarnings("ignore::sklmixed.SingularFitWarning")  # Dyestuff2, as in lme4
@pytest.mark.parametrize("case", sorted(BOOT_REFS))
def test_quantiles_match_bootmer(case):
    file, dataset = BOOT_REFS[case]
    path = REFERENCE / "inference" / file
    if not path.exists():
        pytest.skip(f"{file} not generated")
    ref = json.loads(path.read_text())
    fit = lmer(ref["formula"], load_data(dataset))
    boot = bootstrap(fit.result_, N_BOOT, random_state=SEED)
    assert list(boot.replicates.columns) == ref["parameters"]
    assert boot.replicates.shape == (N_BOOT, len(ref["parameters"]))
    np.testing.assert_allclose(boot.estimates, ref["t0"], rtol=1e-5, atol=1e-8)
    probs = list(ref["probs"])
    for name in ref["parameters"]:
        lme4 = dict(zip(probs, ref["quantiles"][name]))
        for p, lo, hi in ((0.025, 0.02, 0.03), (0.975, 0.97, 0.98)):
            ours = boot.replicates[name].quantile(p)
            if lme4[hi] == lme4[lo]:  # a point mass (a variance estimated as 0)
                assert ours == lme4[p], (name, p)
                continue
            density = (hi - lo) / (lme4[hi] - lme4[lo])
            se = np.sqrt(p * (1 - p) * (1 / ref["nsim"] + 1 / N_BOOT)) / density
            assert abs(ours - lme4[p]) < N_SE * se, (name, p, ours, lme4[p], se)
        # How often a standard deviation is estimated as exactly 0 (lme4's boundary
        # fits): a proportion, within 4 binomial standard errors.
        if name.startswith(".sig") and "zero_sd" in ref:
            share = ref["zero_sd"][name]
            se = np.sqrt(max(share * (1 - share), 1 / ref["nsim"]) * (1 / ref["nsim"] + 1 / N_BOOT))
            assert abs((boot.replicates[name] == 0).mean() - share) < N_SE * se, name
    ci = boot.confint()
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    np.testing.assert_allclose(ci.iloc[:, 0], boot.replicates.quantile(0.025))


def test_interval_kinds(sleep_fit):
    boot = bootstrap(sleep_fit.result_, 200, random_state=0)
    t, t0 = boot.replicates, boot.estimates
    basic = boot.confint(0.9, kind="basic")
    np.testing.assert_allclose(basic.iloc[:, 0], 2 * t0 - t.quantile(0.95))
    normal = boot.confint(0.9, kind="norm")
    centre = 2 * t0 - t.mean()
    np.testing.assert_allclose(normal.mean(axis=1), centre)
    with pytest.raises(ValueError, match="kind"):
        boot.confint(kind="bca")
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(sleep_fit.result_, 0)


def test_same_seed_same_replicates(sleep_fit):
    a = bootstrap(sleep_fit.result_, 50, random_state=7).replicates
    b = bootstrap(sleep_fit.result_, 50, random_state=7).replicates
    pd.testing.assert_frame_equal(a, b)


def test_several_factors_refit_one_at_a_time():
    pen = load_data("Penicillin")
    fit = lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    boot = bootstrap(fit.result_, 20, random_state=0, n_jobs=2)
    assert boot.replicates.shape == (20, 4)
    assert boot.replicates.notna().all().all()
    # the replicates scatter around the estimates
    assert np.all(np.abs(boot.replicates.median() - boot.estimates) < 2 * boot.replicates.std())
