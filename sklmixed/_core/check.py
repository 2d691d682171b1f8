"""A check of a reported optimum: could the criterion still fall?

lme4's ``checkConv`` compares a scaled gradient with a fixed tolerance, which misfires
at boundary optima and on large data sets. The check here asks the question that
matters: how much lower could the criterion go according to a local quadratic model
(central-difference gradient and Hessian), the bounds respected?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ConvergenceCheck", "check_optimum"]


@dataclass(frozen=True)
class ConvergenceCheck:
    """Finite-difference check of the optimum, on the scale of θ.

    lme4's ``checkConv`` compares a scaled gradient with a fixed tolerance, which
    misfires at boundary optima and on large data sets. Here the question asked is
    the one that matters: how much lower could the criterion go according to a local
    quadratic model, the boundary respected? The optimum is in doubt when that
    predicted improvement exceeds ``tol`` (criterion units, i.e. twice the
    log-likelihood) or when the curvature is clearly negative (a saddle).

    Attributes
    ----------
    gradient : ndarray of shape (k,)
        Central-difference gradient at θ.
    hessian : ndarray of shape (k, k)
        Central-difference Hessian at θ.
    predicted_decrease : float
        Decrease of the criterion the local model predicts for a feasible Newton step.
    min_curvature : float
        Smallest eigenvalue of the Hessian over the directions the step may take.
    newton_step : ndarray of shape (k,)
        The feasible Newton step of the local model (zeros when there is none).
    n_evals : int
        Criterion evaluations the check cost.
    ok : bool
        False when the optimum is in doubt.
    message : str
        Why, when not ok.
    """

    gradient: np.ndarray
    hessian: np.ndarray
    predicted_decrease: float
    min_curvature: float
    newton_step: np.ndarray
    n_evals: int
    ok: bool
    message: str


# Curvature below this fraction of the largest is taken as flat (no Newton step).
_FLAT = 1e-10


def check_optimum(
    fun, theta, fmin, lower, *, gradient=None, fun_batch=None, step=1e-4, tol=1e-3
) -> ConvergenceCheck:
    """Check a reported optimum by central differences (the deviance is smooth in θ,
    also across the bound: it depends on θ through ``T Tᵀ``).

    Parameters
    ----------
    fun : callable
        The criterion.
    theta : ndarray of shape (k,)
        The optimum found.
    fmin : float
        ``fun(theta)``.
    lower : ndarray of shape (k,)
        Lower bounds; entries on their bound may only move up.
    gradient : callable, optional
        The analytic gradient; the Hessian is then its central difference
        (``2k + 1`` gradients instead of ``k² + k`` criterion values).
    fun_batch : callable, optional
        ``fun_batch(points)``: ``fun`` at each row of ``points`` in one call.
    step : float
        Relative finite-difference step.
    tol : float
        Largest acceptable predicted decrease of the criterion.

    Returns
    -------
    ConvergenceCheck
    """
    k = theta.size
    if not np.isfinite(fmin):
        return ConvergenceCheck(
            np.full(k, np.nan),
            np.full((k, k), np.nan),
            np.nan,
            np.nan,
            np.zeros(k),
            0,
            False,
            "the criterion is not finite at the optimum",
        )
    h = step * np.maximum(1.0, np.abs(theta))
    if gradient is not None:
        g, H, n_evals = _gradient_and_hessian(gradient, theta, h)
    else:
        g, H, n_evals = _central_differences(fun, theta, fmin, h, fun_batch)
    if not (np.isfinite(g).all() and np.isfinite(H).all()):
        return ConvergenceCheck(
            g,
            H,
            np.nan,
            np.nan,
            np.zeros(k),
            n_evals,
            False,
            "the criterion is not finite next to the optimum",
        )
    return _judge(g, H, h, theta, lower, n_evals, tol)


def _gradient_and_hessian(gradient, theta, h):
    """The gradient at θ and the central difference of the gradient around it."""
    k = theta.size
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        H[:, i] = (gradient(theta + e) - gradient(theta - e)) / (2.0 * h[i])
    return gradient(theta), 0.5 * (H + H.T), 2 * k + 1


def _central_differences(fun, theta, fmin, h, fun_batch=None):
    """Gradient and Hessian of ``fun`` at θ from ``k² + k`` values around it.

    Off the diagonal, ``f(θ + hᵢ + hⱼ) + f(θ − hᵢ − hⱼ)`` differs from ``2 f(θ)`` by
    ``hᵢ² Hᵢᵢ + 2 hᵢhⱼ Hᵢⱼ + hⱼ² Hⱼⱼ`` up to fourth order, and the axis points already
    give the diagonal terms: two values per pair instead of four, as accurate.
    ``fun_batch(points)``, when given, evaluates all the points in one call.
    """
    k = theta.size
    steps = np.diag(h)
    pairs = [(i, j) for i in range(k) for j in range(i)]
    offsets = np.concatenate(
        [steps, -steps] + [np.array([steps[i] + steps[j], -steps[i] - steps[j]]) for i, j in pairs]
    ).reshape(-1, k)
    points = theta + offsets
    if fun_batch is not None and k > 1:
        values = np.asarray(fun_batch(points), dtype=float)
    else:
        values = np.array([fun(point) for point in points])
    f_plus, f_minus = values[:k], values[k : 2 * k]
    H = np.diag((f_plus - 2.0 * fmin + f_minus) / h**2)
    for n, (i, j) in enumerate(pairs):
        f_both = values[2 * k + 2 * n] + values[2 * k + 2 * n + 1]
        pure = H[i, i] * h[i] ** 2 + H[j, j] * h[j] ** 2
        H[i, j] = H[j, i] = (f_both - 2.0 * fmin - pure) / (2.0 * h[i] * h[j])
    return (f_plus - f_minus) / (2.0 * h), H, len(points)


def _judge(g, H, h, theta, lower, n_evals, tol) -> ConvergenceCheck:
    """How much lower a local quadratic model, bounds respected, puts the criterion."""
    k = theta.size
    # Newton step on the free set; an entry on its bound joins it only when moving up
    # looks downhill (negative slope or negative curvature).
    at_bound = np.isfinite(lower) & (theta <= lower)
    free = ~at_bound | (g < 0) | (np.diag(H) < 0)
    step_dir = np.zeros(k)
    extremes_of = None  # (free set, extreme eigenvalues of H on it), reused below
    for _ in range(k + 1):
        idx = np.flatnonzero(free)
        if idx.size == 0:
            break
        Hf = H[idx][:, idx]
        lo, hi = _extreme_eigenvalues(Hf)
        extremes_of = (idx, lo, hi)
        if lo <= _FLAT * max(hi, 0.0):
            break
        step_dir[:] = 0.0
        try:
            step_dir[idx] = -np.linalg.solve(Hf, g[idx])
        except np.linalg.LinAlgError:  # singular up to rounding: treat as flat
            step_dir[:] = 0.0
            break
        wrong_way = at_bound & free & (step_dir < 0)
        if not wrong_way.any():
            break
        free &= ~wrong_way
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return ConvergenceCheck(g, H, 0.0, np.inf, np.zeros(k), n_evals, True, "")
    if extremes_of is not None and np.array_equal(extremes_of[0], idx):
        lo, hi = extremes_of[1:]
    else:
        lo, hi = _extreme_eigenvalues(H[idx][:, idx])
    scale = max(abs(lo), abs(hi), 1.0)
    if lo < -1e-3 * scale:
        return ConvergenceCheck(
            g,
            H,
            np.inf,
            lo,
            np.zeros(k),
            n_evals,
            False,
            "the Hessian of the criterion has a negative eigenvalue: a saddle point, not a minimum",
        )
    if lo <= _FLAT * hi or not step_dir.any():
        # Flat but not negative: no Newton step; judge by the gradient along free directions.
        step_dir[:] = 0.0
        decrease = float(np.abs(g[idx]).max() * h.max())
    else:
        decrease = float(-(g @ step_dir + 0.5 * step_dir @ H @ step_dir))
    ok = decrease <= tol
    message = (
        ""
        if ok
        else (
            f"a quadratic model of the criterion at the optimum predicts it can still fall by "
            f"{decrease:.2g} (gradient {np.array2string(g, precision=3)})"
        )
    )
    return ConvergenceCheck(g, H, decrease, lo, step_dir, n_evals, ok, message)


def _extreme_eigenvalues(H):
    """Smallest and largest eigenvalue of a small symmetric matrix, as floats."""
    if H.shape[0] == 1:
        return float(H[0, 0]), float(H[0, 0])
    eig = np.linalg.eigvalsh(H)  # ascending
    return float(eig[0]), float(eig[-1])
