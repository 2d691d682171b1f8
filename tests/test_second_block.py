"""The second block of the factorization against a dense brute force.

Crossed and nested designs with random slopes on either block and prior weights: the
criterion's parts (``log|L|²``, ``r²``, ``log|R_X|²``) and the conditional covariances
computed blockwise (through the level-pair map of block 2, and through the sparse
fallback used when the map would be too large) must equal those of the dense
``ΛᵀZᵀWZΛ + I`` built from the rows.
"""

import dataclasses

import numpy as np
import pytest
import scipy.linalg

from sklmixed._core.factor import factorize
from sklmixed._core.solution import _conditional_covariances

from ._core_arrays import factor, layout, raw_stats

RTOL = 1e-9


def _design(seed, q, n=300, levels=(40, 12, 5), weighted=False, nested=False):
    """Rows, ``[X y]`` and the terms (most levels first) of a random design."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n)
    terms = []
    for j, (m, qj) in enumerate(zip(levels, q)):
        codes = rng.integers(0, m, size=n)
        if nested and j == 1:
            codes = terms[0].codes % m  # each level of factor 1 in one level of this one
        columns = np.column_stack([np.ones(n), rng.normal(size=(n, qj - 1))])
        terms.append(factor(codes, columns, m, (tuple(range(qj)),), name=f"g{j}"))
    sqrt_w = np.sqrt(rng.uniform(0.5, 2.0, size=n)) if weighted else None
    theta = np.concatenate([_random_theta(rng, layout(t)) for t in terms])
    return X, y, terms, sqrt_w, theta


def _random_theta(rng, term):
    T = np.tril(rng.normal(size=(term.q, term.q)) * 0.5)
    T[np.diag_indices(term.q)] = rng.uniform(0.3, 1.5, size=term.q)
    return T[term.theta_rows, term.theta_cols]


def _dense(X, y, terms, sqrt_w, theta):
    """``log|L|²``, ``r²``, ``log|R_X|²`` and ``Λ (L Lᵀ)⁻¹ Λᵀ`` from dense matrices."""
    n = y.size
    Zs, Lambdas, start = [], [], 0
    for term in terms:
        Z = np.zeros((n, term.n_levels * term.q))
        cols = term.codes[:, None] * term.q + np.arange(term.q)
        np.put_along_axis(Z, cols, term.columns, axis=1)
        Zs.append(Z)
        shape = layout(term)
        Lambdas.append(np.kron(np.eye(term.n_levels), shape.factor(theta[start : start + shape.n_theta])))
        start += shape.n_theta
    ZL = np.hstack(Zs) @ scipy.linalg.block_diag(*Lambdas)
    w = np.ones(n) if sqrt_w is None else sqrt_w
    A = np.column_stack([ZL, X, y]) * w[:, None]
    Q = ZL.shape[1]
    M = A.T @ A
    M[np.arange(Q), np.arange(Q)] += 1.0
    L = np.linalg.cholesky(M)
    diag = np.diag(L)
    Lam = scipy.linalg.block_diag(*Lambdas)
    cond = Lam @ np.linalg.inv(M[:Q, :Q]) @ Lam.T
    return 2 * np.log(diag[:Q]).sum(), diag[-1] ** 2, 2 * np.log(diag[Q:-1]).sum(), cond


def _blocks_of(cond, terms):
    out, start = [], 0
    for term in terms:
        idx = start + np.arange(term.n_levels * term.q).reshape(term.n_levels, term.q)
        out.append(cond[idx[:, :, None], idx[:, None, :]])
        start += idx.size
    return out


CASES = [
    {"q": (1, 1, 1)},
    {"q": (1, 1)},
    {"q": (2, 1, 1)},
    {"q": (3, 1)},
    {"q": (1, 2, 1)},
    {"q": (2, 2, 1), "weighted": True},
    {"q": (1, 1, 1), "weighted": True},
    {"q": (1, 1), "levels": (40, 8), "nested": True},
    {"q": (2, 1), "levels": (40, 8), "nested": True, "weighted": True},
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", ["map", "sparse"])
def test_second_block_matches_dense(case, route):
    for seed in range(3):
        X, y, terms, sqrt_w, theta = _design(seed, **case)
        cp = raw_stats(X, y, terms, sqrt_w).finalize()
        assert cp.S22_map is not None
        if route == "sparse":
            cp = dataclasses.replace(cp, S22_map=None)
        layouts = [layout(t) for t in terms]
        L = factorize(cp, layouts, theta)
        logdet_L, pwrss, logdet_RX, cond = _dense(X, y, terms, sqrt_w, theta)
        np.testing.assert_allclose(L.logdet_L, logdet_L, rtol=RTOL)
        np.testing.assert_allclose(L.pwrss, pwrss, rtol=RTOL)
        np.testing.assert_allclose(L.logdet_RX, logdet_RX, rtol=RTOL)
        assert np.all(np.triu(L.L22, 1) == 0.0)
        for ours, dense in zip(
            _conditional_covariances(L, cp, layouts, 1.0), _blocks_of(cond, terms)
        ):
            np.testing.assert_allclose(ours, dense, rtol=RTOL, atol=1e-12)
