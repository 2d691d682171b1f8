"""Pictures of a fitted mixed model (matplotlib, an optional dependency).

Each function takes a fitted estimator (or its ``result_``), draws on ``ax`` (a new
figure when None) and returns the Axes:

- :func:`caterpillar`: each level's conditional mode with its prediction interval,
  sorted (lme4's ``dotplot(ranef(fit, condVar = TRUE))``);
- :func:`shrinkage`: each level's own least-squares estimate against its
  conditional mode (MixedModels.jl's ``shrinkageplot``);
- :func:`residuals_vs_fitted`: residuals against fitted values (lme4's ``plot(fit)``);
- :func:`qq_modes`: a normal QQ plot of the conditional modes (lme4's
  ``qqmath(ranef(fit))``);
- :func:`profile_zeta`: the likelihood profile, ζ against each parameter (lme4's
  ``xyplot(profile(fit))``).

matplotlib is imported when a function is called, never by ``import sklmixed``;
without it a clear ImportError says how to install it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..prediction import padded_modes

__all__ = ["caterpillar", "shrinkage", "residuals_vs_fitted", "qq_modes", "profile_zeta"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sklmixed.plotting needs matplotlib: pip install matplotlib (or pip install "
            '"sklmixed[plot]").'
        ) from error
    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _result(model):
    """The :class:`~sklmixed.result.MixedLMResult` of a fitted estimator, or the result itself."""
    result = getattr(model, "result_", model)
    if not hasattr(result, "random_effects_cond_var"):
        raise TypeError(
            f"Expected a fitted sklmixed estimator or its result_; got {type(model).__name__} "
            "(fit it first)."
        )
    return result


def _factor_and_column(result, factor, column):
    """The factor (default: the first) and one of its random-effect columns (default: first)."""
    factors = list(result.random_effects)
    if factor is None:
        factor = factors[0]
    if factor not in result.random_effects:
        raise ValueError(f"factor {factor!r} is not a grouping factor of the model: {factors}.")
    modes = result.random_effects[factor]
    if column is None:
        column = modes.columns[0]
    if column not in modes.columns:
        raise ValueError(
            f"column {column!r} is not a random effect of {factor!r}: {list(modes.columns)}."
        )
    return factor, column, modes


def caterpillar(model, factor=None, column=None, *, level=0.95, sort=True, ax=None):
    """Conditional modes with prediction intervals, one row per level ("caterpillar").

    lme4's ``dotplot(ranef(fit, condVar = TRUE))``: each level's mode ± the normal
    quantile times the square root of its conditional variance.

    Parameters
    ----------
    model : fitted estimator or MixedLMResult
    factor : str, default=None
        The grouping factor; default the first.
    column : str, default=None
        The random effect (``"(Intercept)"``, a slope); default the factor's first.
    level : float, default=0.95
        Coverage of the intervals.
    sort : bool, default=True
        Order the levels by their mode.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib Axes
    """
    result = _result(model)
    factor, column, modes = _factor_and_column(result, factor, column)
    j = list(modes.columns).index(column)
    values = modes[column].to_numpy()
    cond_var = result.random_effects_cond_var.get(factor)
    half = (
        np.zeros_like(values)
        if cond_var is None
        else norm.ppf(0.5 + level / 2) * np.sqrt(np.asarray(cond_var)[:, j, j])
    )
    order = np.argsort(values, kind="stable") if sort else np.arange(values.size)
    ax = _axes(ax, (5, max(3.0, 0.12 * values.size + 1.0)))
    rows = np.arange(values.size)
    ax.errorbar(values[order], rows, xerr=half[order], fmt="o", ms=3, lw=1, capsize=0)
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    labels = [str(v) for v in modes.index[order]]
    if values.size <= 40:
        ax.set_yticks(rows, labels)
    else:
        ax.set_yticks([])
    ax.set_ylim(-1, values.size)
    ax.set_xlabel(f"conditional mode of {column} ({level:.0%} interval)")
    ax.set_ylabel(factor)
    ax.set_title(f"{factor}: {column}")
    return ax


def shrinkage(model, X, y=None, *, groups=None, factor=None, columns=None, ax=None):
    """Each level's own least-squares estimate against its conditional mode.

    MixedModels.jl's ``shrinkageplot``: for every level, the random effects that
    the level's rows alone would give (least squares of the residuals from the
    fixed effects and the other factors' modes on the level's random-effect
    columns) are joined to the conditional modes, which pull them towards 0, the
    more so the less data the level has. Two columns (an intercept and a slope)
    are shown in the plane; one column against the identity line.

    Parameters
    ----------
    model : fitted estimator
        Fitted on ``X, y`` (its design reads the random-effect columns from ``X``).
    X : DataFrame or array-like
        The training data (or any data with the model's columns).
    y : array-like, default=None
        The response; default the formula's left side read from ``X``.
    groups : array-like, default=None
        Group labels, when the model was fitted with ``groups=``.
    factor : str, default=None
        The grouping factor; default the first.
    columns : sequence of str, default=None
        One or two of the factor's random effects; default its first two.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib Axes
    """
    result = _result(model)
    factor, _, modes = _factor_and_column(result, factor, None)
    columns = list(modes.columns[:2] if columns is None else columns)
    unknown = [c for c in columns if c not in modes.columns]
    if unknown or not 1 <= len(columns) <= 2:
        raise ValueError(
            f"columns must be one or two of {factor!r}'s random effects {list(modes.columns)}; "
            f"got {columns}."
        )
    own = _per_level_least_squares(model, X, y, groups, factor)
    index = [list(modes.columns).index(c) for c in columns]
    own, shrunk = own[:, index], modes[columns].to_numpy()
    ax = _axes(ax, (5.5, 5))
    if len(columns) == 2:
        for a, b in zip(own, shrunk):
            ax.plot([a[0], b[0]], [a[1], b[1]], color="grey", lw=0.7)
        ax.scatter(own[:, 0], own[:, 1], s=16, facecolors="none", edgecolors="C1",
                   label="least squares per level")
        ax.scatter(shrunk[:, 0], shrunk[:, 1], s=16, color="C0", label="conditional mode")
        ax.set_xlabel(columns[0])
        ax.set_ylabel(columns[1])
    else:
        ax.scatter(own[:, 0], shrunk[:, 0], s=16, color="C0")
        finite = np.concatenate([own[np.isfinite(own)], shrunk.ravel()])
        lo, hi = finite.min(), finite.max()
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="no shrinkage")
        ax.set_xlabel(f"{columns[0]}: least squares per level")
        ax.set_ylabel(f"{columns[0]}: conditional mode")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.axvline(0.0, color="grey", lw=0.5)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"Shrinkage of the {factor} effects")
    return ax


def _per_level_least_squares(model, X, y, groups, factor):
    """``(n_levels, q)`` random effects of ``factor`` fitted level by level (NaN where a
    level has too few rows for its columns)."""
    if not hasattr(model, "design_"):
        raise TypeError("shrinkage needs the fitted estimator (its design reads X), not a result.")
    if y is None:
        response = getattr(model.design_, "response", None)
        if response is None:
            raise ValueError("shrinkage needs y (the model's formula names no response).")
        y = X[response]
    y = np.asarray(y, dtype=float)
    result = model.result_
    arrays = model.design_.transform(X, groups)
    modes = padded_modes(result, arrays.factors)
    names = [f.name for f in arrays.factors]
    target = arrays.factors[names.index(factor)]
    # Residuals from the fixed effects and every other factor's modes.
    r = y - arrays.X @ result.fixed_effects.to_numpy()
    if arrays.offset is not None:
        r -= arrays.offset
    for f, b in zip(arrays.factors, modes):
        if f.name != factor:
            r -= np.einsum("ij,ij->i", f.columns, b[f.codes])
    seen = target.codes >= 0
    codes, Z, r = target.codes[seen], target.columns[seen], r[seen]
    q, n_levels = Z.shape[1], target.n_levels
    ZtZ = np.zeros((n_levels, q, q))
    np.add.at(ZtZ, codes, Z[:, :, None] * Z[:, None, :])
    Ztr = np.zeros((n_levels, q))
    np.add.at(Ztr, codes, Z * r[:, None])
    out = np.full((n_levels, q), np.nan)
    for j in range(n_levels):
        # A level whose columns are not of full rank on its own rows has no estimate.
        if np.linalg.matrix_rank(ZtZ[j]) == q:
            out[j] = np.linalg.solve(ZtZ[j], Ztr[j])
    return out


def residuals_vs_fitted(model, *, ax=None):
    """Residuals against fitted values, with a horizontal line at 0 (lme4's ``plot(fit)``).

    Parameters
    ----------
    model : fitted estimator or MixedLMResult
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib Axes
    """
    result = _result(model)
    ax = _axes(ax, (5.5, 4))
    ax.scatter(result.fitted, result.residuals, s=6, alpha=0.4)
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fitted values (fixed and random effects)")
    ax.set_ylabel("residuals")
    ax.set_title("Residuals against fitted values")
    return ax


def qq_modes(model, factor=None, column=None, *, ax=None):
    """Normal QQ plot of one random effect's conditional modes, with R's ``qqline``.

    Parameters
    ----------
    model : fitted estimator or MixedLMResult
    factor : str, default=None
        The grouping factor; default the first.
    column : str, default=None
        The random effect; default the factor's first.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib Axes
    """
    result = _result(model)
    factor, column, modes = _factor_and_column(result, factor, column)
    values = np.sort(modes[column].to_numpy())
    n = values.size
    a = 3 / 8 if n <= 10 else 0.5  # R's ppoints()
    theoretical = norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax = _axes(ax, (4.5, 4.5))
    ax.scatter(theoretical, values, s=12)
    # R's qqline: through the first and third quartiles.
    q_data = np.quantile(values, [0.25, 0.75])
    q_norm = norm.ppf([0.25, 0.75])
    slope = (q_data[1] - q_data[0]) / (q_norm[1] - q_norm[0])
    ax.axline((q_norm[0], q_data[0]), slope=slope, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("standard normal quantiles")
    ax.set_ylabel(f"conditional mode of {column}")
    ax.set_title(f"Normal QQ plot: {factor} {column}")
    return ax


def profile_zeta(profile, *, levels=(0.5, 0.8, 0.9, 0.95, 0.99), absolute=False, axes=None):
    """The likelihood profile: ζ against each parameter (lme4's ``xyplot(profile(fit))``).

    One panel per parameter: the profile's points and the natural spline through
    them, a horizontal line at each ``±z`` of ``levels`` and a vertical one at the
    profile interval's limit where ζ meets it. A straight line is a parameter whose
    likelihood is quadratic (Wald intervals would do); a curved or asymmetric one is
    where profile intervals matter (standard deviations near zero, correlations near
    ±1).

    Parameters
    ----------
    profile : Profile or fitted estimator
        A :class:`~sklmixed.inference.Profile` (``fit.profile()``), or a fitted model
        to profile.
    levels : sequence of float, default=(0.5, 0.8, 0.9, 0.95, 0.99)
        Confidence levels marked.
    absolute : bool, default=False
        Draw ``|ζ|`` (lme4's ``absVal = TRUE``).
    axes : sequence of Axes, optional
        One per parameter; a new figure when None.

    Returns
    -------
    ndarray of Axes
    """
    from scipy.interpolate import CubicSpline

    if not hasattr(profile, "table") and hasattr(profile, "profile"):
        profile = profile.profile()
    if not hasattr(profile, "table") or not hasattr(profile, "confint"):
        raise TypeError(f"Expected a Profile or a fitted estimator; got {type(profile).__name__}.")
    names = profile.parameters
    if axes is None:
        n_cols = min(4, len(names))
        n_rows = -(-len(names) // n_cols)
        size = (2.8 * n_cols, 2.6 * n_rows)
        _, axes = _pyplot().subplots(n_rows, n_cols, figsize=size, squeeze=False)
        for ax in axes.ravel()[len(names) :]:
            ax.set_visible(False)
    axes = np.ravel(axes)[: len(names)]
    levels = sorted(levels)
    limits = {level: profile.confint(level) for level in levels}
    for ax, name in zip(axes, names):
        part = profile.table[profile.table[".par"] == name].sort_values(name)
        x, z = part[name].to_numpy(), part[".zeta"].to_numpy()
        grid = np.linspace(x[0], x[-1], 200)
        curve = CubicSpline(x, z, bc_type="natural")(grid) if x.size > 2 else np.interp(grid, x, z)
        show = np.abs if absolute else (lambda v: v)
        ax.plot(grid, show(curve), color="C0")
        ax.plot(x, show(z), "o", color="C0", markersize=2.5)
        for level in levels:
            zq = float(norm.ppf((1 + level) / 2))
            lo, hi = limits[level].loc[name]
            for value, sign in ((lo, -1.0), (hi, 1.0)):
                if np.isfinite(value):
                    top = zq if absolute else sign * zq
                    ax.plot([value, value], [0.0, top], color="0.6", lw=0.8)
            ax.axhline(zq, color="0.85", lw=0.6)
            if not absolute:
                ax.axhline(-zq, color="0.85", lw=0.6)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("|ζ|" if absolute else "ζ")
    return axes
