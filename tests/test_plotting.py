"""sklmixed.plotting: what each plot draws is the model's numbers (non-interactive backend)."""

import sys

import numpy as np
import pytest
from scipy.stats import norm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklmixed import MixedLMRegressor, lmer, plotting  # noqa: E402
from sklmixed.datasets import load_exam  # noqa: E402


@pytest.fixture(scope="module")
def exam():
    return load_exam().frame


@pytest.fixture(scope="module")
def slope_fit(exam):
    return lmer("normexam ~ standLRT + (1 + standLRT | school)", data=exam)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_caterpillar_draws_modes_and_intervals(slope_fit):
    ax = plotting.caterpillar(slope_fit, column="standLRT", level=0.9)
    modes = slope_fit.random_effects_["school"]["standLRT"].to_numpy()
    cond_var = slope_fit.random_effects_cond_var_["school"][:, 1, 1]
    points = ax.lines[0].get_xdata()
    order = np.argsort(modes, kind="stable")
    np.testing.assert_array_equal(points, modes[order])
    # The error bars' ends: mode -/+ z * conditional standard deviation.
    segments = ax.collections[0].get_segments()
    half = np.array([s[1][0] - s[0][0] for s in segments]) / 2
    np.testing.assert_allclose(half, norm.ppf(0.95) * np.sqrt(cond_var[order]), rtol=1e-12)


def test_each_plot_uses_the_axes_given_and_returns_it(slope_fit, exam):
    fig, axes = plt.subplots(2, 2)
    drawn = [
        plotting.caterpillar(slope_fit, ax=axes[0, 0]),
        plotting.shrinkage(slope_fit, exam, ax=axes[0, 1]),
        plotting.residuals_vs_fitted(slope_fit, ax=axes[1, 0]),
        plotting.qq_modes(slope_fit.result_, ax=axes[1, 1]),  # a result works too
    ]
    assert drawn == list(axes.ravel())
    assert len(fig.axes) == 4


def test_shrinkage_joins_per_school_least_squares_to_the_modes(slope_fit, exam):
    ax = plotting.shrinkage(slope_fit, exam)
    own = ax.collections[0].get_offsets()
    shrunk = ax.collections[1].get_offsets()
    np.testing.assert_allclose(shrunk, slope_fit.random_effects_["school"].to_numpy())
    # School 1 on its own: least squares of its residuals from the fixed effects.
    rows = exam["school"] == 1
    beta = slope_fit.fixed_effects_.to_numpy()
    Z = np.column_stack([np.ones(rows.sum()), exam.loc[rows, "standLRT"]])
    r = exam.loc[rows, "normexam"].to_numpy() - Z @ beta
    np.testing.assert_allclose(own[0], np.linalg.lstsq(Z, r, rcond=None)[0], rtol=1e-10)
    # The modes are pulled towards 0: smaller in spread than the schools' own estimates.
    assert np.nanstd(own[:, 0]) > np.std(shrunk[:, 0])


def test_shrinkage_of_a_random_intercept_against_the_identity(exam):
    X, y = exam[["standLRT", "school"]], exam["normexam"]
    model = MixedLMRegressor(group="school").fit(X, y)
    ax = plotting.shrinkage(model, X, y)
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], model.random_effects_["school"].iloc[:, 0])
    assert np.all(np.abs(points[:, 1]) <= np.abs(points[:, 0]) + 1e-12)  # shrunk, never grown


def test_residuals_and_qq(slope_fit):
    ax = plotting.residuals_vs_fitted(slope_fit)
    np.testing.assert_allclose(ax.collections[0].get_offsets(),
                               np.column_stack([slope_fit.fitted_, slope_fit.residuals_]))
    ax = plotting.qq_modes(slope_fit)
    modes = np.sort(slope_fit.random_effects_["school"]["(Intercept)"].to_numpy())
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], modes)
    assert points[0, 0] == pytest.approx(norm.ppf(0.5 / 65))  # R's ppoints for n > 10


def test_clear_errors(slope_fit, exam, monkeypatch):
    with pytest.raises(ValueError, match="not a grouping factor"):
        plotting.caterpillar(slope_fit, factor="class")
    with pytest.raises(ValueError, match="not a random effect"):
        plotting.qq_modes(slope_fit, column="schavg")
    with pytest.raises(TypeError, match="fitted sklmixed estimator"):
        plotting.caterpillar(MixedLMRegressor())
    with pytest.raises(TypeError, match="not a result"):
        plotting.shrinkage(slope_fit.result_, exam)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plotting.caterpillar(slope_fit)
