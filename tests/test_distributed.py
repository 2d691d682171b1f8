"""Fits from Dask DataFrames (sklmixed.distributed) on a two-worker LocalCluster.

A Dask fit reduces each partition on the workers and optimizes θ on the client from
the summed statistics: it must equal the in-memory fit of the same rows (to 1e-8
relative, every parameter), and both must match lme4 (tests/reference, R's numbers).
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sklmixed import MixedLMRegressor, lmer

from ._lme4 import assert_matches_lme4, load_data, load_reference

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

RTOL = 1e-8


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def write_partitioned(folder, seed=17, n_files=5, rows_per_file=1200):
    """Parquet files of a crossed design, written one file at a time.

    ``g`` (string labels): 100 levels in every file and 10 more that occur in one
    file only; ``h``: 12 crossed levels; ``c``: a text factor whose level "d" occurs in
    the last file only; ``w``: prior weights.
    """
    rng = np.random.default_rng(seed)
    shared, own = 100, 10
    b0 = rng.normal(0, 0.8, shared + own * n_files)
    b1 = rng.normal(0, 0.3, shared + own * n_files)
    bh = rng.normal(0, 0.5, 12)
    for i in range(n_files):
        n = rows_per_file
        g = np.where(
            rng.random(n) < 0.85, rng.integers(0, shared, n), shared + own * i + rng.integers(0, own, n)
        )
        h = rng.integers(0, 12, n)
        x = rng.normal(size=n)
        c = rng.choice(["a", "b", "c", "d"] if i == n_files - 1 else ["a", "b", "c"], n)
        w = rng.uniform(0.5, 2.0, n)
        y = (
            2.0 + 0.5 * x + 0.3 * (c == "b") - 0.2 * (c == "d")
            + b0[g] + b1[g] * x + bh[h] + rng.normal(size=n) / np.sqrt(w)
        )  # fmt: skip
        frame = pd.DataFrame(
            {"y": y, "x": x, "g": [f"s{k:03d}" for k in g], "h": h, "c": c, "w": w}
        )
        frame.to_parquet(folder / f"part-{i:02d}.parquet", index=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partitioned")
    write_partitioned(folder)
    ddf = dd.read_parquet(str(folder))
    memory = pd.concat(
        [pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True
    )
    return ddf, memory


def assert_same_fit(ours, theirs):
    """Every parameter and the log-likelihood to RTOL (relative to each array's size)."""

    def close(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(b).max())

    close(ours.fixed_effects_, theirs.fixed_effects_)
    close(ours.fixed_effects_se_, theirs.fixed_effects_se_)
    close(ours.theta_, theirs.theta_)
    close(ours.sigma_, theirs.sigma_)
    close(ours.log_likelihood_, theirs.log_likelihood_)
    close(ours.deviance_, theirs.deviance_)
    close(ours.variance_components_["vcov"], theirs.variance_components_["vcov"])
    assert list(ours.fixed_effects_.index) == list(theirs.fixed_effects_.index)
    for name, table in theirs.random_effects_.items():
        assert ours.random_effects_[name].index.equals(table.index)
        close(ours.random_effects_[name], table)
        close(ours.random_effects_cond_var_[name], theirs.random_effects_cond_var_[name])


@pytest.mark.parametrize("REML", [True, False])
def test_one_factor_equals_in_memory_fit(client, data, REML):  # noqa: N803
    ddf, memory = data
    formula = "y ~ x + (1 + x | g)"
    ours = lmer(formula, ddf, REML=REML)
    theirs = lmer(formula, memory, REML=REML)
    assert ours.n_groups_ == {"g": 150}  # 50 levels occur in one partition only
    assert ours.fitted_ is None and ours.residuals_ is None
    with pytest.raises(ValueError, match="Dask DataFrame.*predict"):
        ours.residuals()
    assert_same_fit(ours, theirs)


def test_crossed_factors_with_weights_and_a_partial_level(client, data):
    ddf, memory = data
    formula = "y ~ x + c + (1 | g) + (1 | h)"
    ours = lmer(formula, ddf, weights="w")
    theirs = lmer(formula, memory, weights="w")
    # "d" occurs in the last partition only, and still codes its own column.
    assert list(ours.fixed_effects_.index) == ["(Intercept)", "x", "cb", "cc", "cd"]
    assert_same_fit(ours, theirs)


def test_column_roles_with_a_dask_response(client, data):
    ddf, memory = data
    model = MixedLMRegressor(group=["g", "h"], random_effects={"g": ["x"]}, method="ML")
    ours = model.fit(ddf[["x", "g", "h"]], ddf["y"])
    theirs = MixedLMRegressor(**model.get_params()).fit(memory[["x", "g", "h"]], memory["y"])
    assert_same_fit(ours, theirs)
    assert list(ours.feature_names_in_) == ["x", "g", "h"]


def test_penicillin_matches_lme4(client, tmp_path):
    """Crossed factors from three parquet files against R's lme4 (and its quantiles)."""
    ref = load_reference("penicillin_crossed")
    frame = load_data("Penicillin")
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"p{i}.parquet", index=False)
    model = lmer(ref["formula"], dd.read_parquet(str(tmp_path)), REML=ref["REML"])
    assert_matches_lme4(model, ref, frame["diameter"].to_numpy())
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=1e-4)
    # The summary's scaled-residual quantiles, computed exactly on the workers.
    quantiles = model.result_.residual_quantiles
    np.testing.assert_allclose(quantiles, ref["residual_quantiles"], rtol=1e-4, atol=1e-6)
    assert model.summary().residuals.to_numpy().ravel().tolist() == quantiles.tolist()


def test_summary_quantiles_equal_in_memory_ones(client, data):
    ddf, memory = data
    formula = "y ~ x + (1 | g)"
    ours, theirs = lmer(formula, ddf), lmer(formula, memory)
    np.testing.assert_allclose(
        ours.summary().residuals.to_numpy(), theirs.summary().residuals.to_numpy(), rtol=1e-7
    )


def test_predict_is_a_lazy_series_equal_to_in_memory_predict(client, data):
    ddf, memory = data
    formula = "y ~ x + c + (1 + x | g) + (1 | h)"
    model = lmer(formula, ddf)
    reference = lmer(formula, memory)
    predicted = model.predict(ddf)
    assert isinstance(predicted, dd.Series)  # nothing computed yet
    assert predicted.npartitions == ddf.npartitions
    values = predicted.compute().to_numpy()
    expected = reference.predict(memory)
    np.testing.assert_allclose(values, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    # New rows with a level never seen: the population-level prediction, as in memory.
    new = memory.head(40).assign(g=["new"] * 20 + list(memory["g"][20:40]))
    lazy = model.predict(dd.from_pandas(new, npartitions=2), random_effects=["h"])
    np.testing.assert_allclose(lazy.compute().to_numpy(), reference.predict(new, random_effects=["h"]),
                               rtol=1e-8, atol=1e-8)  # fmt: skip


def test_unsupported_cases_raise_clear_errors(client, data):
    ddf, memory = data
    with pytest.raises(ValueError, match="scale\\(x\\).*every row"):
        lmer("y ~ scale(x) + (1 | g)", ddf)
    model = MixedLMRegressor(group="g")
    with pytest.raises(ValueError, match="groups= is not taken"):
        model.fit(ddf[["x"]], ddf["y"], groups=memory["g"])
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(ddf[["x", "g"]], ddf["y"], sample_weight=np.ones(len(memory)))
    with pytest.raises(TypeError, match="Dask Series"):
        model.fit(ddf[["x", "g"]], memory["y"].to_numpy())
    with pytest.raises(ValueError, match="unknown categories.*categorize"):
        lmer("y ~ k + (1 | g)", ddf.assign(k=ddf["c"].astype("category")))


def test_crossed_block_too_large_for_the_client(client, data, monkeypatch):
    from sklmixed.distributed import fit as dask_fit

    monkeypatch.setattr(dask_fit, "_available_memory", lambda: 1e3)
    with pytest.raises(MemoryError, match="dense block .* fits in the client's memory"):
        lmer("y ~ x + (1 | g) + (1 | h)", data[0])


def test_verbose_prints_progress_to_stderr(capsys):
    frame = load_data("Exam")
    MixedLMRegressor(formula="normexam ~ standLRT + (1 | school)", verbose=1).fit(frame)
    err = capsys.readouterr().err
    assert "sklmixed: done after" in err and "REML criterion" in err


def test_core_imports_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None\n"  # import dask now fails
        "import sklmixed, sklmixed.distributed, sklmixed.estimators\n"
        "from sklmixed.datasets import load_exam\n"
        "exam = load_exam(as_frame=True).frame\n"
        "sklmixed.lmer('normexam ~ 1 + (1 | school)', exam)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("n", [1, 2, 7, 5000])
def test_exact_quantiles_in_two_passes_equal_numpy(n):
    from sklmixed.distributed.quantiles import (
        bin_counts,
        quantiles_from_bins,
        values_in_bins,
        wanted_bins,
    )

    rng = np.random.default_rng(n)
    values = rng.standard_t(3, size=n)
    values[: n // 3] = np.round(values[: n // 3], 1)  # ties, and -0.0 beside 0.0
    parts = np.array_split(values, 3)
    probs = [0, 0.25, 0.5, 0.75, 1]
    counts = sum(bin_counts(p) for p in parts)
    bins = wanted_bins(counts, probs)
    kept = np.concatenate([values_in_bins(p, bins) for p in parts])
    assert kept.size <= max(10, n // 10)  # only a few bins' values travel
    np.testing.assert_allclose(
        quantiles_from_bins(counts, bins, kept, probs), np.quantile(values, probs),
        rtol=1e-15, atol=1e-15,
    )  # fmt: skip
