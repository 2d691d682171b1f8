"""Crossed designs: block 2 formed without the level-pair map, and three crossed factors
against lme4.

``gram_lower`` (the lower triangle of ``G Gᵀ`` a band of columns at a time, rows in
order of decreasing entries) and the per-level quadratic forms behind the conditional
covariances are checked against dense products; the bands are made small so that
several of them, and rows reordered across them, are exercised. The fits of
``tests/reference/crossed/`` (written by ``make_crossed.R`` with lme4 1.1-31) are
checked through both routes: the map, and the banded products used when the map would
be too large.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sklmixed
from sklmixed._core import factor as factor_module
from sklmixed.stats import second_block

from ._lme4 import REFERENCE, assert_matches_lme4

CROSSED = REFERENCE / "crossed"


def _skewed_sparse(rng, rows, cols, density):
    """A sparse matrix whose rows have very different numbers of entries."""
    per_row = np.maximum(1, (rng.pareto(1.5, size=rows) * density * cols).astype(int))
    per_row = np.minimum(per_row, cols)
    r = np.repeat(np.arange(rows), per_row)
    c = np.concatenate([rng.choice(cols, size=k, replace=False) for k in per_row])
    return sp.csr_array((rng.normal(size=r.size), (r, c)), shape=(rows, cols))


@pytest.mark.parametrize("band", [1, 5, 16, 1000])
def test_gram_lower_matches_the_dense_product(band, monkeypatch):
    monkeypatch.setattr(factor_module, "_GRAM_COLUMNS", band)
    rng = np.random.default_rng(band)
    G = _skewed_sparse(rng, 53, 80, 0.1)
    ours = factor_module.gram_lower(G)
    dense = G.toarray()
    assert ours.flags.f_contiguous
    assert np.all(np.triu(ours, 1) == 0.0)
    np.testing.assert_allclose(ours, np.tril(dense @ dense.T), rtol=1e-13, atol=1e-13)


def test_gram_lower_with_empty_rows():
    G = sp.csr_array(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 4.0]]))
    dense = G.toarray()
    np.testing.assert_array_equal(factor_module.gram_lower(G), np.tril(dense @ dense.T))


@pytest.mark.parametrize("q1", [1, 2, 3])
@pytest.mark.parametrize("rows", [1, 4, 512])
def test_level_quadratic_forms_match_dense(q1, rows, monkeypatch):
    monkeypatch.setattr(factor_module, "_FORM_ROWS", rows)
    rng = np.random.default_rng(q1 * 100 + rows)
    m1, Q2 = 37, 29
    L21 = _skewed_sparse(rng, Q2, m1 * q1, 0.2).tocsr()
    B = rng.normal(size=(Q2, Q2))
    W = np.asfortranarray(B @ B.T)  # symmetric, column-major as dpotri gives it
    ours = factor_module._level_quadratic_forms(L21, W, m1, q1)
    dense = L21.toarray().reshape(Q2, m1, q1)
    expected = np.einsum("ima,ij,jmb->mab", dense, W, dense)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def _data():
    return pd.read_csv(CROSSED / "three_crossed.csv")


def _reference(name):
    return json.loads((CROSSED / f"{name}.json").read_text())


@pytest.fixture(params=["map", "banded"])
def route(request, monkeypatch):
    """Fit through the level-pair map, or without it in bands of 16 columns."""
    if request.param == "banded":
        monkeypatch.setattr(second_block, "_MAX_MAP_ENTRIES", 0)
        monkeypatch.setattr(factor_module, "_GRAM_COLUMNS", 16)
        monkeypatch.setattr(factor_module, "_FORM_ROWS", 7)
    return request.param


@pytest.mark.parametrize("name", ["three_crossed", "three_crossed_ML", "three_crossed_slope"])
def test_three_crossed_factors_match_lme4(name, route):
    ref = _reference(name)
    data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or singularity warning expected
        model = sklmixed.lmer(ref["formula"], data=data, REML=ref["REML"])
    assert (model.result_.fit.criterion.cp.S22_map is None) == (route == "banded")
    assert model.converged_
    assert_matches_lme4(model, ref, data["y"], fitted=model.predict(data))
    if ref["REML"]:
        np.testing.assert_allclose(model.reml_criterion_, ref["REMLcrit"], atol=2e-3)
    for factor, lme4 in ref["ranef"].items():
        modes = model.random_effects_[factor]
        order = modes.index.get_indexer(lme4["levels"])
        values = np.reshape(lme4["values"], modes.shape)
        np.testing.assert_allclose(
            modes.to_numpy()[order], values, atol=1e-3 * np.abs(values).max()
        )
        ours = model.random_effects_cond_var_[factor][order]
        condvar = np.reshape(lme4["condvar"], ours.shape)
        np.testing.assert_allclose(ours, condvar, atol=1e-3 * np.abs(condvar).max())


def test_banded_route_equals_the_map_route(monkeypatch):
    """The two ways of forming block 2 give the same criterion at any θ (rounding)."""
    data = _data()
    formula = "y ~ x + (1 | subject) + (1 + x | item) + (1 | session)"
    with_map = sklmixed.lmer(formula, data=data).result_.fit.criterion
    monkeypatch.setattr(second_block, "_MAX_MAP_ENTRIES", 0)
    monkeypatch.setattr(factor_module, "_GRAM_COLUMNS", 9)
    banded = sklmixed.lmer(formula, data=data).result_.fit.criterion
    assert banded.cp.S22_map is None and with_map.cp.S22_map is not None
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = np.abs(rng.normal(size=with_map.lower.size)) + 0.05
        np.testing.assert_allclose(banded(theta), with_map(theta), rtol=1e-12)
