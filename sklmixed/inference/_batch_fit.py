"""Many refits of one grouping factor at once: the criterion of B responses, and a
bounded Newton search over θ for all of them together.

The replicates of a parametric bootstrap share every cross-product but the response
column, so one evaluation handles all of them as arrays with the replicate as the
last axis (levels last within, as in ``_core``): ``Mᵢ = TᵀAᵢT + I`` and its Cholesky
factor for every level and replicate, the ``[X y]`` Schur complement per replicate,
and the criterion from its parts (:func:`~sklmixed._core.deviance.criterion_from_parts`,
the same formula as the fit's). The search is Newton's method with central
differences on the scale of unit-RMS columns (the fit's check uses the same
points), without bounds: the criterion depends on θ through ``T Tᵀ`` only, so every
covariance is reached with any signs on the diagonal of ``T``, and a projection on
the bounds would stop a replicate on the wrong face (the path to a better optimum can
cross a zero diagonal entry). At the end each column of ``T`` with a negative
diagonal entry is negated (the same ``T Tᵀ``), and entries within 1e-5 of zero are
put on it where that does not raise the criterion (lme4's ``check.boundary``), so a
singular replicate is exactly singular. A replicate the search does not settle is
refitted on its own by the fit's optimizer.
"""

from __future__ import annotations

import numpy as np

from .._core.deviance import criterion_from_parts
from .._core.kernels import cholesky_levels, forward_solve_levels

__all__ = ["BatchCriterion", "newton_search"]

_STEP = 1e-3  # central-difference step on θ of unit-RMS columns
_MAX_ITER = 60
_MAX_HALVINGS = 31
_HALVINGS_AT_ONCE = 6


class BatchCriterion:
    """The criterion of one grouping factor for B responses sharing ``Z`` and ``X``.

    Parameters
    ----------
    cp : CrossProducts
        The fit's statistics (one grouping factor).
    term : TermLayout
    Z1ty : ndarray of shape (q, m, B)
    Xty : ndarray of shape (p, B)
    yty : ndarray of shape (B,)
    reml : bool
    """

    def __init__(self, cp, term, Z1ty, Xty, yty, reml):
        self.A = cp.A11_entries  # (q, q, m)
        self.WX = cp.Z1tXY_rows[:, :, :-1]  # (q, m, p)
        self.XtX = cp.XYtXY[:-1, :-1]
        self.Z1ty, self.Xty, self.yty = Z1ty, Xty, yty
        self.term, self.reml = term, reml
        self.parts = (cp.n_obs, cp.n_fixed, cp.sum_log_weights)
        q, m, p = self.WX.shape
        self.closed_form = q <= 2
        if self.closed_form:
            # Nᵢ = T Mᵢ⁻¹ Tᵀ has closed-form entries for q ≤ 2 (see _core.schur_map):
            # the X block of the Schur complement is XᵀX − products · N, with the
            # products WᵢᵀWᵢ of the shared columns stored once.
            rows, cols = np.tril_indices(q)
            outer = np.einsum("emr,ems->emrs", self.WX[rows], self.WX[cols])
            off = rows != cols
            outer[off] += outer[off].transpose(0, 1, 3, 2)
            self.products = outer.reshape(rows.size * m, p * p).T.copy()  # (p², n_pairs·m)
            self.WX_flat = self.WX.transpose(2, 0, 1).reshape(p, q * m)  # (p, q·m)

    def factor(self, thetas, idx):
        """Parts at θ (k, J) for replicates ``idx`` (J,): ``log|L|²``, the Cholesky
        factor of the Schur complement ``(p + 1, p + 1, J)``."""
        q, _, m = self.A.shape
        J = thetas.shape[1]
        T = np.zeros((q, q, J))
        T[self.term.theta_rows, self.term.theta_cols] = thetas
        # Tᵀ Aᵢ T + I for every level i and point j: (q, q, m, J).
        AT = np.einsum("abm,bcj->acmj", self.A, T)
        M = np.einsum("baj,bcmj->acmj", T, AT)
        M[np.arange(q), np.arange(q)] += 1.0
        L = _cholesky(M.reshape(q, q, m * J))
        logdet_L = 2.0 * np.log(np.einsum("aam->am", L)).reshape(q, m, J).sum(axis=(0, 1))
        # Tᵀ Zᵢᵀ[X y] per level and point, then L⁻¹ of it: (q, m·J, p + 1).
        p = self.WX.shape[2]
        W = np.empty((q, m, J, p + 1))
        W[..., :p] = np.einsum("baj,bmp->amjp", T, self.WX)
        W[..., p] = np.einsum("baj,bmj->amj", T, self.Z1ty[:, :, idx])
        C = forward_solve_levels(L, W.reshape(q, m * J, p + 1)).reshape(q, m, J, p + 1)
        S = np.empty((p + 1, p + 1, J))
        S[:p, :p] = self.XtX[:, :, None]
        S[:p, p] = S[p, :p] = self.Xty[:, idx]
        S[p, p] = self.yty[idx]
        S -= np.einsum("amjr,amjs->rsj", C, C)
        return logdet_L, _cholesky(S)

    def _closed_form(self, thetas, idx):
        """``log|L|²`` and the Schur complement's Cholesky factor from the closed-form
        ``Nᵢ`` (q ≤ 2): no per-level factorization."""
        q, m, p = self.WX.shape
        J = thetas.shape[1]
        T = np.zeros((q, q, J))
        T[self.term.theta_rows, self.term.theta_cols] = thetas
        A = self.A
        if q == 1:
            t2 = T[0, 0] ** 2  # (J,)
            det = 1.0 + A[0, 0][:, None] * t2  # (m, J)
            N = (t2 / det)[None]  # (1, m, J)
        else:
            t00, t10, t11 = T[0, 0], T[1, 0], T[1, 1]
            d2 = (t00 * t11) ** 2
            s00, s10, s11 = t00 * t00, t00 * t10, t10 * t10 + t11 * t11
            a00, a10, a11 = A[0, 0][:, None], A[1, 0][:, None], A[1, 1][:, None]
            det = d2 * (a00 * a11 - a10 * a10) + s00 * a00 + 2 * s10 * a10 + s11 * a11 + 1.0
            N = np.stack([d2 * a11 + s00, s10 - d2 * a10, d2 * a00 + s11]) / det
        logdet_L = np.log(det).sum(axis=0)
        wy = self.Z1ty[:, :, idx]  # (q, m, J)
        if q == 1:
            v = N * wy
        else:
            v = np.stack([N[0] * wy[0] + N[1] * wy[1], N[1] * wy[0] + N[2] * wy[1]])
        S = np.empty((p + 1, p + 1, J))
        S[:p, :p] = (self.XtX.reshape(-1, 1) - self.products @ N.reshape(-1, J)).reshape(p, p, J)
        S[:p, p] = S[p, :p] = self.Xty[:, idx] - self.WX_flat @ v.reshape(q * m, J)
        S[p, p] = self.yty[idx] - np.einsum("amj,amj->j", wy, v)
        return logdet_L, _cholesky(S)

    def __call__(self, thetas, idx):
        """The criterion at θ (k, J) for replicates ``idx``; +inf where undefined."""
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.closed_form:
                logdet_L, L33 = self._closed_form(thetas, idx)
            else:
                logdet_L, L33 = self.factor(thetas, idx)
            diag = np.einsum("aaj->aj", L33)
            pwrss = diag[-1] ** 2
            logdet_RX = 2.0 * np.log(diag[:-1]).sum(axis=0) if self.reml else 0.0
            n, p, slw = self.parts
            value = criterion_from_parts(
                logdet_L, logdet_RX, pwrss, n, p, slw, self.reml, log=np.log
            )
        return np.where(np.isfinite(value), value, np.inf)

    def solution(self, thetas, idx):
        """β (of the stored response) and r² at θ (k, J) for replicates ``idx``."""
        _, L33 = self.factor(thetas, idx)
        p = L33.shape[0] - 1
        RX = L33[:p, :p].transpose(2, 0, 1)
        beta = np.linalg.solve(RX.transpose(0, 2, 1), L33[p, :p].T[:, :, None])[:, :, 0]
        return beta, L33[p, p] ** 2


def _cholesky(S):
    """Cholesky factors of blocks stored last-axis (the kernels' layout); NaN where a
    block is not positive definite (the unrolled kernel's sqrt of a negative pivot,
    and the same from LAPACK's path for larger blocks)."""
    if S.shape[0] <= 4:
        return cholesky_levels(S)
    try:
        return cholesky_levels(S)
    except np.linalg.LinAlgError:
        out = np.full_like(S, np.nan)
        for j in range(S.shape[2]):
            try:
                out[:, :, j] = np.linalg.cholesky(S[:, :, j])
            except np.linalg.LinAlgError:
                pass
        return out


def newton_search(crit: BatchCriterion, theta0, lower, n_rep):
    """Minimize the criterion of every replicate from ``theta0``.

    θ = 0 in a column of ``T`` is a stationary point of the criterion whatever the
    data (it depends on that column through ``T Tᵀ``), so a search started there stays
    there: diagonal entries of the start below 1e-3 start at 0.1 instead (within the
    fit's own starting range), and a replicate that ends on a bound is tried just
    off it (1e-3, 1e-2, 0.1) and searched again from there when that is lower.

    Parameters
    ----------
    crit : BatchCriterion
    theta0 : ndarray of shape (k,)
        Start for every replicate (the estimate the responses were simulated from).
    lower : ndarray of shape (k,)
        The bounds (0 on the diagonal of ``T``), met at the end by negating columns.
    n_rep : int

    Returns
    -------
    theta : ndarray of shape (k, n_rep)
    value : ndarray of shape (n_rep,)
    settled : ndarray of bool, shape (n_rep,)
        Whether the search converged for each replicate.
    """
    bounded = np.isfinite(lower)
    start = np.where(bounded & (theta0 < 1e-3), 0.1, theta0)
    reps = np.arange(n_rep)
    theta, value, settled = _newton(crit, np.repeat(start[:, None], n_rep, axis=1), reps)
    theta, value = _snap_to_bounds(crit, _canonical(theta, crit.term), value, lower)
    for d in np.flatnonzero(bounded):
        on = np.flatnonzero(theta[d] == 0)
        if on.size == 0:
            continue
        off = np.array([1e-3, 1e-2, 1e-1])
        trial = np.repeat(theta[:, on, None], off.size, axis=2)
        trial[d] = off
        f = crit(trial.reshape(theta.shape[0], -1), np.repeat(on, off.size)).reshape(on.size, -1)
        best = np.argmin(f, axis=1)
        lower_off = f[np.arange(on.size), best] < value[on] - 1e-10
        if not lower_off.any():
            continue
        again = on[lower_off]
        th2, v2, s2 = _newton(crit, trial[:, lower_off, best[lower_off]], again)
        th2, v2 = _snap_to_bounds(crit, _canonical(th2, crit.term), v2, lower, idx=again)
        better = v2 < value[again]
        theta[:, again[better]], value[again[better]] = th2[:, better], v2[better]
        settled[again] &= s2
    return theta, value, settled


def _newton(crit, theta, reps):
    """Newton's search for the replicates ``reps`` from the columns of ``theta``."""
    k, n_rep = theta.shape
    theta = theta.copy()
    value = crit(theta, reps)
    settled = np.zeros(n_rep, dtype=bool)
    active = np.flatnonzero(np.isfinite(value))
    h, eye = _STEP, np.eye(k)
    pairs = [(i, j) for i in range(k) for j in range(i)]
    offsets = [h * eye[i] for i in range(k)] + [h * (eye[i] + eye[j]) for i, j in pairs]
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        th, f0 = theta[:, active], value[active]
        J = active.size
        # Central differences: all points of all active replicates in one call.
        pts = np.concatenate(
            [th + d[:, None] for d in offsets] + [th - d[:, None] for d in offsets], axis=1
        )
        f = crit(pts, np.tile(reps[active], 2 * len(offsets))).reshape(2, len(offsets), J)
        fp, fm = f[0], f[1]
        g = (fp[:k] - fm[:k]) / (2 * h)
        H = np.empty((J, k, k))
        H[:, np.arange(k), np.arange(k)] = ((fp[:k] + fm[:k] - 2 * f0) / h**2).T
        for n_pair, (i, j) in enumerate(pairs):
            s = fp[k + n_pair] + fm[k + n_pair]
            H[:, i, j] = H[:, j, i] = (s - fp[i] - fm[i] - fp[j] - fm[j] + 2 * f0) / (2 * h**2)
        # Newton's step on |H| (eigenvalues made positive): downhill where H is not
        # positive definite.
        w, V = np.linalg.eigh(H)
        aw = np.abs(w)
        aw = np.maximum(aw, 1e-8 * np.maximum(aw.max(axis=1, keepdims=True), 1e-300))
        step = -np.einsum("jab,jb,jcb,jc->ja", V, 1.0 / aw, V, g.T).T
        decrease = -0.5 * np.einsum("aj,aj->j", g, step)
        done = (decrease < 1e-9) & (np.abs(step).max(axis=0) < 1e-5)
        # Backtracking: the full step, else the longest of halved steps (tried
        # together) that does not raise the criterion.
        new = th + step
        f_new = crit(new, reps[active])
        bad = np.flatnonzero(~(f_new <= f0) & ~done)
        for start in range(1, _MAX_HALVINGS, _HALVINGS_AT_ONCE):
            if bad.size == 0:
                break
            alphas = 0.5 ** np.arange(start, start + _HALVINGS_AT_ONCE)
            trial = th[:, bad, None] + step[:, bad, None] * alphas  # (k, nbad, a)
            f_trial = crit(trial.reshape(k, -1), np.repeat(reps[active[bad]], alphas.size))
            f_trial = f_trial.reshape(bad.size, alphas.size)
            ok = f_trial <= f0[bad, None]
            first = np.argmax(ok, axis=1)
            found = ok[np.arange(bad.size), first]
            new[:, bad[found]] = trial[:, found, first[found]]
            f_new[bad[found]] = f_trial[found, first[found]]
            bad = bad[~found]
        better = f_new <= f0
        theta[:, active[better]] = new[:, better]
        value[active[better]] = f_new[better]
        stop = done | (~better & (decrease < 1e-8))
        settled[active[stop]] = True
        active = active[~stop]
    return theta, value, settled


def _canonical(theta, term):
    """θ with every column of ``T`` whose diagonal entry is negative negated."""
    theta = theta.copy()
    rows, cols = term.theta_rows, term.theta_cols
    for d in np.flatnonzero(rows == cols):
        flip = theta[d] < 0
        column = np.flatnonzero(cols == cols[d])
        theta[np.ix_(column, flip)] *= -1.0
    return theta


def _snap_to_bounds(crit, theta, value, lower, tol=1e-5, idx=None):
    """Diagonal entries within ``tol`` of 0 put on it where the criterion does not rise
    (columns of ``theta`` are the replicates ``idx``, all by default)."""
    reps = np.arange(theta.shape[1]) if idx is None else idx
    for d in np.flatnonzero(np.isfinite(lower)):
        near = np.flatnonzero((theta[d] != 0) & (theta[d] < tol))
        if near.size == 0:
            continue
        trial = theta[:, near].copy()
        trial[d] = 0.0
        f = crit(trial, reps[near])
        ok = f <= value[near]
        theta[:, near[ok]], value[near[ok]] = trial[:, ok], f[ok]
    return theta, value
