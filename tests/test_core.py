"""The numerical core on its own: layouts, small-block kernels and the gradient."""

import numpy as np
import pytest

from sklmixed._core.kernels import inverse_lower
from sklmixed._core.schur_map import schur_complement_map
from sklmixed.stats import crossproducts

from ._core_arrays import blocked, factor, layout, raw_criterion


def _problem(q, n=600, m=40, p=3, weighted=False, seed=0, blocks=None, reml=True):
    """A one-factor problem: its criterion, the factor's layout and a θ."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, m, size=n)
    columns = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    b = rng.normal(size=(m, q)) * 0.7
    y = X @ rng.normal(size=p) + (columns * b[codes]).sum(axis=1) + rng.normal(size=n)
    f = factor(codes, columns, m, blocks or (tuple(range(q)),))
    sqrt_weights = np.sqrt(rng.uniform(0.5, 2.0, size=n)) if weighted else None
    term = layout(factor(codes, columns, m, (tuple(range(q)),)))
    theta = np.zeros(term.n_theta)
    theta[term.theta_rows == term.theta_cols] = rng.uniform(0.3, 1.2, size=q)
    theta[term.theta_rows != term.theta_cols] = rng.uniform(-0.4, 0.4, size=term.n_theta - q)
    if blocks is not None and blocks != (tuple(range(q)),):
        theta = theta[: layout(f).n_theta]
    return raw_criterion(X, y, [f], sqrt_weights, reml), layout(f), theta


@pytest.mark.parametrize("q", [1, 2, 3, 5])  # closed forms, unrolled loops, LAPACK
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_central_differences(q, reml, weighted):
    crit, _, theta = _problem(q, weighted=weighted, reml=reml)
    value, gradient = crit.value_and_gradient(theta)
    assert value == pytest.approx(blocked(crit, theta), rel=1e-12)
    h = 1e-6
    numeric = np.array(
        [
            (blocked(crit, theta + h * e) - blocked(crit, theta - h * e)) / (2 * h)
            for e in np.eye(theta.size)
        ]
    )
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


def _dense_z(f):
    Z = np.zeros((f.codes.size, f.n_levels * f.q))
    for a in range(f.q):
        Z[np.arange(f.codes.size), f.codes * f.q + a] = f.columns[:, a]
    return Z


@pytest.mark.parametrize("rows", ["sorted", "in runs", "scattered"])  # segment sums or not
@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_products_match_dense_products(monkeypatch, rows, q, weighted):
    """Per-level sums equal the dense ``Zᵀ[Z X y]``, across chunk boundaries, rows in
    level order or not, with a second factor's block beside them."""
    monkeypatch.setattr(crossproducts, "CHUNK_ROWS", 37)  # levels span chunks
    rng = np.random.default_rng(q)
    n, m, p = 300, 12, 3
    codes = rng.integers(0, m, size=n)
    if rows != "scattered":
        codes = np.sort(codes)
    if rows == "in runs":
        codes = rng.permutation(m)[codes]
    assert crossproducts._rows_grouped(codes, m) == (rows != "scattered")
    first = factor(
        codes, np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))]), m, (tuple(range(q)),)
    )
    second = factor(rng.integers(0, 5, size=n), np.ones((n, 1)), 5, ((0,),), name="h")
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.normal(size=n)
    w = np.sqrt(rng.uniform(0.5, 2.0, size=n)) if weighted else np.ones(n)
    cp = raw_criterion(X, y, [first, second], w if weighted else None).cp
    Z1, Z2 = _dense_z(first) * w[:, None], _dense_z(second) * w[:, None]
    XY = np.column_stack([X, y]) * w[:, None]
    A11 = (Z1.T @ Z1).reshape(m, q, m, q)[np.arange(m), :, np.arange(m), :]
    np.testing.assert_allclose(cp.A11, A11, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.Z1tXY, (Z1.T @ XY).reshape(m, q, p + 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.Z2tXY, Z2.T @ XY, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.XYtXY, XY.T @ XY, rtol=1e-12)


@pytest.mark.parametrize("blocks_of_two", [((0, 1),), ((0,), (1,))])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_compact_objective_equals_blocked_factor(blocks_of_two, reml, weighted):
    """The Schur-complement map gives the blocked factor's criterion (q = 1 and 2,
    correlated or not, a zero variance included)."""
    for q in (1, 2):
        blocks = blocks_of_two if q == 2 else None
        crit, term, theta = _problem(q, weighted=weighted, seed=3, blocks=blocks, reml=reml)
        assert crit._map is not None
        for th in (theta, theta * 30.0, np.where(term.theta_rows == term.theta_cols, 0.0, theta)):
            assert crit(th) == pytest.approx(blocked(crit, th), rel=1e-11)


def test_schur_complement_map_only_where_it_pays():
    crit, term, _ = _problem(3)
    assert schur_complement_map(crit.cp, term) is None  # no closed-form inverse
    crit, term, _ = _problem(2)
    assert schur_complement_map(crit.cp, term, max_entries=10) is None  # too many products
    assert schur_complement_map(crit.cp, term) is not None


@pytest.mark.parametrize("q", [1, 2, 3, 5])
def test_first_block_factor_solves_its_levels(q):
    """Per level, ``L Lᵀ = Tᵀ A T + I`` and ``L C = Tᵀ Z₁ᵀ[X y]``, in both layouts."""
    crit, _, theta = _problem(q, seed=q)
    cp = crit.cp
    L = crit.factor(theta)
    T = L.T[0]
    M = T.T @ cp.A11 @ T + np.eye(q)
    np.testing.assert_allclose(L.L11 @ L.L11.transpose(0, 2, 1), M, rtol=1e-12)
    m, _, k = cp.Z1tXY.shape
    C = L.L31t.reshape(m, q, k)
    np.testing.assert_allclose(L.L11 @ C, T.T @ cp.Z1tXY, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        inverse_lower(L.L11), np.linalg.inv(L.L11), rtol=1e-12, atol=1e-15
    )


def test_central_differences_hessian_of_a_smooth_function():
    from sklmixed._core.check import _central_differences

    def fun(t):
        return np.exp(t[0]) * np.cos(t[1]) + t[0] * t[2] ** 2 + 3.0 * t[1] * t[2]

    theta = np.array([0.3, -0.7, 1.1])
    x, y, z = theta
    gradient = np.array(
        [np.exp(x) * np.cos(y) + z**2, -np.exp(x) * np.sin(y) + 3 * z, 2 * x * z + 3 * y]
    )
    hessian = np.array(
        [
            [np.exp(x) * np.cos(y), -np.exp(x) * np.sin(y), 2 * z],
            [-np.exp(x) * np.sin(y), -np.exp(x) * np.cos(y), 3.0],
            [2 * z, 3.0, 2 * x],
        ]
    )
    g, H, n_evals = _central_differences(fun, theta, fun(theta), np.full(3, 1e-4))
    assert n_evals == 3 * 3 + 3
    np.testing.assert_allclose(g, gradient, rtol=1e-7)
    np.testing.assert_allclose(H, hessian, rtol=1e-5, atol=1e-6)


def test_slopes_start_estimates_the_relative_covariance_factor():
    """Per-level least squares moments land near the true T on a large simulated design."""
    from sklmixed._core.terms import slopes_start

    rng = np.random.default_rng(3)
    m, per_level = 400, 30
    codes = np.repeat(np.arange(m), per_level)
    n = codes.size
    columns = np.column_stack([np.ones(n), rng.normal(size=n)])
    T_true = np.array([[0.8, 0.0], [0.3, 0.5]])  # relative to sigma = 1
    b = rng.normal(size=(m, 2)) @ T_true.T
    resid = (columns * b[codes]).sum(axis=1) + rng.normal(size=n)
    f = factor(codes, columns, m, ((0, 1),))
    term = layout(f)
    cp = raw_criterion(np.ones((n, 1)), resid, [f]).cp
    theta = slopes_start(term, cp.A11, cp.Z1tXY[:, :, -1], float(cp.XYtXY[-1, -1]), n)
    np.testing.assert_allclose(theta, T_true[term.theta_rows, term.theta_cols], atol=0.1)


def test_slopes_start_declines_what_it_cannot_estimate():
    from sklmixed._core.terms import slopes_start

    crit, term, _ = _problem(2, n=40, m=20)  # two rows a level: no per-level fit to speak of
    cp = crit.cp
    A, Zr = cp.A11, cp.Z1tXY[:, :, -1]
    assert slopes_start(term, A, Zr, float(cp.XYtXY[-1, -1]), 40) is None
    crit1, term1, _ = _problem(1)
    cp1 = crit1.cp
    assert slopes_start(term1, cp1.A11, cp1.Z1tXY[:, :, -1], 1.0, 600) is None  # no slope


def _quadratic(g, H):
    return lambda theta: float(g @ theta + 0.5 * theta @ H @ theta)


def test_check_predicts_the_decrease_of_a_convex_quadratic():
    from sklmixed._core.check import check_optimum

    g, H = np.array([1.0, -2.0, 0.5]), np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    f = _quadratic(g, H)
    theta = np.zeros(3)
    check = check_optimum(f, theta, f(theta), np.full(3, -np.inf), step=2.0**-8)
    newton = -np.linalg.solve(H, g)
    np.testing.assert_allclose(check.newton_step, newton, rtol=1e-8)
    assert check.predicted_decrease == pytest.approx(0.5 * g @ np.linalg.solve(H, g), rel=1e-8)
    assert check.min_curvature == pytest.approx(np.linalg.eigvalsh(H)[0], rel=1e-8)
    assert not check.ok  # 0.9 > tol = 1e-3


def test_check_keeps_bound_entries_that_would_move_down_fixed():
    """On its bound with a positive slope, an entry stays out of the Newton step; the
    decrease is the free entries' alone."""
    from sklmixed._core.check import check_optimum

    g, H = np.array([2.0, -1.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    f = _quadratic(g, H)
    theta, lower = np.zeros(2), np.array([0.0, -np.inf])
    check = check_optimum(f, theta, f(theta), lower, step=2.0**-8)
    np.testing.assert_allclose(check.newton_step, [0.0, 1.0], atol=1e-8)
    assert check.predicted_decrease == pytest.approx(0.5, rel=1e-8)
    # One parameter on its bound, sloping down into it: nothing is free, all is well.
    check = check_optimum(lambda t: float(3.0 * t[0] + t[0] ** 2), np.zeros(1), 0.0, np.zeros(1))
    assert check.ok and check.predicted_decrease == 0.0


def test_check_flags_a_saddle_point():
    from sklmixed._core.check import check_optimum

    f = _quadratic(np.zeros(2), np.diag([1.0, -1.0]))
    check = check_optimum(f, np.zeros(2), 0.0, np.full(2, -np.inf), step=2.0**-8)
    assert not check.ok and "saddle" in check.message
    assert check.min_curvature == pytest.approx(-1.0, rel=1e-8)


@pytest.mark.parametrize("reml", [True, False])
def test_compact_objective_without_fixed_effects(reml):
    """p = 0 (no fixed effects): the Schur complement is r² alone."""
    rng = np.random.default_rng(7)
    n, m = 200, 15
    codes = rng.integers(0, m, size=n)
    f = factor(codes, np.column_stack([np.ones(n), rng.normal(size=n)]), m, ((0, 1),))
    crit = raw_criterion(np.zeros((n, 0)), rng.normal(size=n) + 1.0, [f], reml=reml)
    theta = np.array([0.8, -0.2, 0.5])
    assert crit._map is not None
    assert crit(theta) == pytest.approx(blocked(crit, theta), rel=1e-12)


@pytest.mark.parametrize("blocks_of_two", [((0, 1),), ((0,), (1,))])
@pytest.mark.parametrize("reml", [True, False])
def test_compact_objective_batch_equals_one_at_a_time(monkeypatch, blocks_of_two, reml):
    from sklmixed._core import schur_map
    from sklmixed._core.check import check_optimum

    for q in (1, 2):
        blocks = blocks_of_two if q == 2 else None
        crit, term, theta = _problem(q, weighted=True, seed=4, blocks=blocks, reml=reml)
        points = theta + np.random.default_rng(q).normal(scale=0.2, size=(7, theta.size))
        one_by_one = [crit(t) for t in points]
        batch = crit.batch(points)
        np.testing.assert_allclose(batch, one_by_one, rtol=1e-13)

        f = crit
        lower = term.theta_lower()
        alone = check_optimum(f, theta, f(theta), lower)
        batched = check_optimum(f, theta, f(theta), lower, fun_batch=crit.batch)
        # Values agreeing to 1e-13 differ in their last bits, which the Hessian divides
        # by h² ≈ 1e-8: agreement to ~1e-16 · |f| / h² of its scale is all there is.
        noise = 1e-16 * abs(f(theta)) / 1e-8
        np.testing.assert_allclose(batched.hessian, alone.hessian, atol=10 * noise)
        np.testing.assert_allclose(batched.gradient, alone.gradient, atol=1e-4 * noise)
        assert batched.n_evals == alone.n_evals == theta.size**2 + theta.size

    # A Schur complement that is not positive definite: the blocked factor decides.
    def not_positive_definite(a, **kwargs):
        return a, 1

    monkeypatch.setattr(schur_map, "_potrf", not_positive_definite)
    np.testing.assert_allclose(
        crit.batch(points), [blocked(crit, t) for t in points], rtol=1e-15
    )
