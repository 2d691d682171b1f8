"""Levels not seen in fit, conditioned on a few labelled rows at the fitted θ, β, σ.

Given rows of new levels with their responses, the new levels' effects ``b`` have, at
fixed θ, β, σ and the fitted modes of the levels already known, a Gaussian
conditional distribution. With ``r = y − Xβ − (the known levels' share)`` on their
rows and ``D = σ² Λ Λᵀ`` the prior covariance::

    mode = D Zᵀ V⁻¹ r,    Cov = D − D Zᵀ V⁻¹ Z D,    V = Z D Zᵀ + σ² W⁻¹

(lme4's conditional mode given β̂, for a level the fit never saw). In lme4's
spherical form it is the penalized least-squares system of the new levels alone,
``M u = Λᵀ Zᵀ W r`` with ``M = Λᵀ Zᵀ W Z Λ + I``, which the fit's own blocked factor
solves (:func:`~sklmixed._core.factor.factorize` with no fixed effects): crossed and
nested factors with new levels are conditioned jointly and exactly.

The new modes depend on the old system's ``w = (u, β)`` through ``r``:
``u_new = const − G w`` with ``G = M⁻¹ Λᵀ Zᵀ W A`` (``A`` the rows' vectors ``a`` in the
old system). A prediction ``aᵀ w + ζᵀ u_new`` that uses a new level (``ζ`` its
coefficients on the new spherical effects) therefore has the variance
``σ² (ãᵀ C⁻¹ ã + ζᵀ M⁻¹ ζ)`` with ``ã = a − Gᵀ ζ``: the uncertainty of β̂ and of the
known modes is carried into it with its sign (the prediction for a group with many
rows hardly depends on β̂).

Nothing is refitted: θ, β, σ and the fitted levels' modes stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .._core.factor import factorize
from .._core.kernels import inverse_lower
from .._core.solution import _conditional_covariances, conditional_modes
from .._core.terms import layouts_of
from ..design.arrays import ModelArrays, RandomFactor
from ..stats.crossproducts import partial_stats
from ..stats.plan import ReductionPlan, block_order
from .joint import JointCovariance, JointRows, lambda_t_matrix

_CHUNK_ROWS = 1 << 16
from .rows import coded_factors, known_entries

__all__ = ["AddedGroups", "condition_new_levels", "solve_random_block"]


@dataclass(frozen=True)
class AddedGroups:
    """Levels added after the fit, and what their predictions need.

    Attributes
    ----------
    names : tuple of str
        Factors with added levels, in the new system's block order.
    n_fit_levels, n_added : tuple of int
        Each one's levels in the fit and added levels (an added level's code less
        its factor's ``n_fit_levels`` is its level in the new system).
    covariance : JointCovariance
        ``ζᵀ M⁻¹ ζ`` of the new system.
    G : ndarray of shape (Q_new, k)
        ``M⁻¹ Λᵀ Zᵀ W A`` on the old system's coordinates ``G_columns``.
    G_columns : ndarray of shape (k,)
        Coordinates in the old ``(u₁, u₂, β)``: ``[0, Q₁)`` first block, ``[Q₁, Q)``
        second block, ``[Q, Q + p)`` β.
    old_widths : tuple of int
        ``(Q₁, Q)`` of the old system.
    conditioning : ModelArrays
        Every row conditioned on so far (codes extended by the added levels), so
        that further rows are conditioned jointly with them.
    modes, cond_cov : dict of str to ndarray
        The added levels' conditional modes ``(n_added, q)`` and covariances
        ``(n_added, q, q)`` in the data's units (given θ, β, σ, as lme4's condVar).
    """

    names: tuple
    n_fit_levels: tuple
    n_added: tuple
    covariance: JointCovariance
    G: np.ndarray
    G_columns: np.ndarray
    old_widths: tuple
    conditioning: ModelArrays
    modes: dict
    cond_cov: dict

    def has_factor(self, name) -> bool:
        return name in self.names

    def relative_variance(self, state, coded, x, subset):
        """``ãᵀ C⁻¹ ã + ζᵀ M⁻¹ ζ`` of the rows ``subset`` (relative to σ²), a bounded
        number of rows at a time."""
        out = np.empty(subset.size)
        for start in range(0, subset.size, _CHUNK_ROWS):
            rows = subset[start : start + _CHUNK_ROWS]
            out[start : start + rows.size] = self._relative_variance(state, coded, x, rows)
        return out

    def _relative_variance(self, state, coded, x, subset):
        n = subset.size
        block1, block2 = _new_entries(self, coded, subset)
        q_new = block1[2].shape[1]
        noise = self.covariance.quadratic_forms(
            JointRows.build(np.zeros((n, 0)), block1, block2, q1=q_new)
        )
        delta = self._sensitivity(block1, block2, n, q_new)  # ζᵀ G: (n, k)
        x_rows, known1, known2, q1 = known_entries(coded, x, subset)
        Q1, Q = self.old_widths
        cols = self.G_columns
        beta = cols >= Q
        x_rows = x_rows - _scatter_columns(delta[:, beta], cols[beta] - Q, x.shape[1])
        # The u parts of −Gᵀζ: first-block entries one coordinate at a time (summed
        # with the row's own by JointRows.build), second-block entries as they are.
        first = (~beta) & (cols < Q1)
        if first.any():
            r, c = np.nonzero(delta[:, first])
            level, a = np.divmod(cols[first][c], q1)
            coef = np.zeros((r.size, q1))
            coef[np.arange(r.size), a] = -delta[:, first][r, c]
            known1 = tuple(np.concatenate(pair) for pair in zip(known1, (r, level, coef)))
        second = (~beta) & (cols >= Q1)
        if second.any():
            r, c = np.nonzero(delta[:, second])
            extra = (r, cols[second][c] - Q1, -delta[:, second][r, c])
            known2 = extra if known2 is None else tuple(map(np.concatenate, zip(known2, extra)))
        rows = JointRows.build(x_rows, known1, known2, q1=q1)
        return state.covariance.quadratic_forms(rows) + noise

    def _sensitivity(self, block1, block2, n, q_new):
        """``ζᵀ G`` of each row (``ζ`` its coefficients on the added spherical effects)."""
        _, levels, coef = block1
        delta = np.zeros((n, self.G.shape[1]))
        for a in range(q_new):
            delta += coef[:, a, None] * np.take(self.G, levels * q_new + a, axis=0)
        if block2 is not None:
            np.add.at(
                delta, block2[0], block2[2][:, None] * self.G[self.n_added[0] * q_new + block2[1]]
            )
        return delta


def _scatter_columns(values, columns, width):
    """An ``(n, width)`` array with ``values`` in ``columns`` and zeros elsewhere."""
    out = np.zeros((values.shape[0], width))
    out[:, columns] = values
    return out


def _new_entries(added, coded, subset=None):
    """Rows' coefficients on the added levels' spherical effects (new-system order)."""
    by_name = {cf.state.name: cf for cf in coded}
    n = coded[0].codes.size if subset is None else subset.size
    pick = (lambda v: v) if subset is None else (lambda v: v[subset])
    block1, rows2, index2, value2, offset = None, [], [], [], 0
    for j, (name, m_fit, m_add) in enumerate(zip(added.names, added.n_fit_levels, added.n_added)):
        cf = by_name[name]
        q = cf.state.T.shape[0]
        codes, coef = pick(cf.codes), pick(cf.coef)
        use = (codes >= m_fit) & cf.included
        if j == 0:
            block1 = (
                np.arange(n),
                np.where(use, codes - m_fit, 0),
                np.where(use[:, None], coef, 0.0),
            )
            continue
        rows = np.flatnonzero(use)
        rows2.append(np.repeat(rows, q))
        index2.append((offset + (codes[rows, None] - m_fit) * q + np.arange(q)).ravel())
        value2.append(coef[rows].ravel())
        offset += m_add * q
    block2 = tuple(map(np.concatenate, (rows2, index2, value2))) if rows2 else None
    return block1, block2


def _as_matrix(block1, block2, n, Q1, width):
    """Entries of a :class:`JointRows` (no β part) as a sparse ``(n, width)`` matrix."""
    rows, levels, coef = block1
    q1 = coef.shape[1]
    r = [np.repeat(rows, q1)]
    c = [(levels[:, None] * q1 + np.arange(q1)).ravel()]
    v = [coef.ravel()]
    if block2 is not None:
        r.append(block2[0])
        c.append(Q1 + block2[1])
        v.append(block2[2])
    return sp.csr_array(
        (np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(n, width)
    )


def solve_random_block(factor, cp, terms, R):
    """``M⁻¹ R`` for ``M = L_Z L_Zᵀ``, the random-effects block of a blocked factor.

    Parameters
    ----------
    factor : BlockedFactor
    cp : CrossProducts
    terms : sequence of TermLayout
    R : ndarray of shape (Q, k)
        Rows in the factor's coordinates (first block level-major, then block 2).

    Returns
    -------
    ndarray of shape (Q, k)
    """
    m1, q1 = terms[0].n_levels, terms[0].q
    Q1 = m1 * q1
    k = R.shape[1]
    L_inv = inverse_lower(factor.L11)  # (m1, q1, q1)
    Y1 = L_inv @ R[:Q1].reshape(m1, q1, k)
    if not cp.has_second_block:
        return (L_inv.transpose(0, 2, 1) @ Y1).reshape(Q1, k)
    L21 = lambda_t_matrix(terms[1:], factor.T[1:]) @ factor.G
    Y2 = scipy.linalg.solve_triangular(
        factor.L22, R[Q1:] - L21 @ Y1.reshape(Q1, k), lower=True, check_finite=False
    )
    U2 = scipy.linalg.solve_triangular(factor.L22, Y2, lower=True, trans=1, check_finite=False)
    U1 = L_inv.transpose(0, 2, 1) @ (Y1 - (L21.T @ U2).reshape(m1, q1, k))
    return np.vstack([U1.reshape(Q1, k), U2])


def condition_new_levels(state, arrays, y, include_all, previous=None):
    """Condition the new levels of ``arrays`` (jointly with ``previous``'s rows).

    Parameters
    ----------
    state : PredictionState
        Of the fit (its ``added`` is ignored: ``previous`` is given explicitly).
    arrays : ModelArrays
        The rows, coded with every level they name: fitted levels below each
        factor's ``n_fit_levels``, added ones (earlier or now) above.
    y : ndarray of shape (n,)
    include_all : tuple of str
        Every factor of the model.
    previous : AddedGroups or None
        Levels added earlier, whose rows are conditioned on again with these.

    Returns
    -------
    AddedGroups
    """
    if previous is not None:
        arrays = _stacked(previous.conditioning, arrays)
        y = np.concatenate([previous.conditioning.y, y])
    arrays = arrays.replace(y=y)
    coded = coded_factors(state, arrays, include_all)
    n = arrays.n_obs
    # r = y − Xβ − offset − the fitted levels' share.
    resid = y - arrays.X @ state.beta
    if arrays.offset is not None:
        resid = resid - arrays.offset
    for cf in coded:
        fitted = cf.fitted
        modes = cf.state.modes[: cf.state.n_fit_levels]
        columns = _columns(arrays, cf.state.name)
        resid[fitted] -= np.einsum("nq,nq->n", columns[fitted], modes[cf.codes[fitted]])
    # The system of the added levels: one RandomFactor per factor with added levels,
    # zero columns on rows whose level is a fitted one.
    with_added = [cf for cf in coded if (cf.codes >= cf.state.n_fit_levels).any()]
    n_added = [int(cf.codes.max()) + 1 - cf.state.n_fit_levels for cf in with_added]
    system = []
    for cf, m_add in zip(with_added, n_added):
        use = cf.codes >= cf.state.n_fit_levels
        original = next(f for f in arrays.factors if f.name == cf.state.name)
        system.append(
            RandomFactor(
                name=cf.state.name,
                codes=np.where(use, cf.codes - cf.state.n_fit_levels, 0).astype(np.intp),
                levels=range(m_add),
                columns=np.where(use[:, None], original.columns, 0.0),
                column_names=original.column_names,
                blocks=original.blocks,
            )
        )
    order = block_order(n_added)
    plan = ReductionPlan(
        order=order, scales=tuple(with_added[i].state.scale for i in order), offset=np.zeros(0)
    )
    system_arrays = ModelArrays(X=np.zeros((n, 0)), fixed_names=(), factors=tuple(system))
    weights = arrays.weights
    stats = partial_stats(system_arrays, plan, resid, weights, arrays.frequency)
    cp = stats.finalize()
    terms = layouts_of(stats)
    ordered = [with_added[i] for i in order]
    theta = np.concatenate([t.theta_of(cf.state.T) for t, cf in zip(terms, ordered)])
    factor = factorize(cp, terms, theta)
    sigma2 = state.sigma**2
    modes = conditional_modes(factor, cp, terms, np.zeros(0))
    cond_cov = _conditional_covariances(factor, cp, terms, sigma2)
    names = tuple(cf.state.name for cf in ordered)
    added = AddedGroups(
        names=names,
        n_fit_levels=tuple(cf.state.n_fit_levels for cf in ordered),
        n_added=tuple(n_added[i] for i in order),
        covariance=JointCovariance(factor, cp, terms),
        G=np.zeros((0, 0)),
        G_columns=np.zeros(0, dtype=np.intp),
        old_widths=_old_widths(state),
        conditioning=arrays,
        modes={
            cf.state.name: m / cf.state.scale for cf, m in zip(ordered, modes)
        },
        cond_cov=(
            None if cond_cov is None else {
                cf.state.name: c / np.outer(cf.state.scale, cf.state.scale)
                for cf, c in zip(ordered, cond_cov)
            }
        ),
    )  # fmt: skip
    return _with_sensitivity(added, state, coded, arrays, factor, cp, terms)


def _with_sensitivity(added, state, coded, arrays, factor, cp, terms):
    """``G = M⁻¹ Λᵀ Zᵀ W A`` on the old-system columns the rows touch."""
    n = arrays.n_obs
    block1, block2 = _new_entries(added, coded)
    q_new = block1[2].shape[1]
    zeta = _as_matrix(block1, block2, n, added.n_added[0] * q_new, _new_width(added, coded))
    w = np.ones(n)
    if arrays.weights is not None:
        w = w * arrays.weights
    if arrays.frequency is not None:
        w = w * arrays.frequency
    A = _old_matrix(coded, arrays.X, added.old_widths)
    B = (zeta.T @ sp.diags_array(w) @ A).tocsc()
    B.eliminate_zeros()
    Q = added.old_widths[1]
    p = arrays.X.shape[1]
    columns = np.union1d(np.unique(B.tocoo().col), Q + np.arange(p))
    dense = B[:, columns].toarray() if columns.size else np.zeros((B.shape[0], 0))
    G = solve_random_block(factor, cp, terms, dense) if columns.size else dense
    return replace(added, G=G, G_columns=columns.astype(np.intp))


def _new_width(added, coded):
    """``Q_new``: the added levels' spherical effects."""
    q = {cf.state.name: cf.state.T.shape[0] for cf in coded}
    return int(sum(m * q[name] for name, m in zip(added.names, added.n_added)))


def _old_widths(state):
    """``(Q₁, Q)`` of the fit's joint system."""
    widths = [f.n_fit_levels * f.T.shape[0] for f in state.factors]
    return (widths[0] if widths else 0, int(sum(widths)))


def _old_matrix(coded, x, widths):
    """The rows' vectors ``a`` of the old system (every factor, fitted levels) as a
    sparse ``(n, Q + p)`` matrix."""
    n, p = x.shape
    Q1, Q = widths
    x_rows, block1, block2, q1 = known_entries(coded, x)
    rows, levels, coef = block1
    r = [np.repeat(rows, q1), np.repeat(np.arange(n), p)]
    c = [(levels[:, None] * q1 + np.arange(q1)).ravel(), np.tile(Q + np.arange(p), n)]
    v = [coef.ravel(), np.asarray(x_rows, dtype=float).ravel()]
    if block2 is not None:
        r.append(block2[0])
        c.append(Q1 + block2[1])
        v.append(block2[2])
    matrix = sp.csr_array(
        (np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(n, Q + p)
    )
    matrix.eliminate_zeros()
    return matrix


def _columns(arrays, name):
    return next(f.columns for f in arrays.factors if f.name == name)


def _stacked(a: ModelArrays, b: ModelArrays) -> ModelArrays:
    """The rows of ``a`` then those of ``b`` (same model)."""

    def cat(u, v, n_u, n_v, fill):
        if u is None and v is None:
            return None
        u = np.full(n_u, fill) if u is None else u
        v = np.full(n_v, fill) if v is None else v
        return np.concatenate([u, v])

    factors = tuple(
        RandomFactor(
            name=fa.name,
            codes=np.concatenate([fa.codes, fb.codes]),
            levels=fb.levels,
            columns=np.vstack([fa.columns, fb.columns]),
            column_names=fa.column_names,
            blocks=fa.blocks,
            term_positions=fa.term_positions,
        )
        for fa, fb in zip(a.factors, b.factors)
    )
    n_a, n_b = a.n_obs, b.n_obs
    return ModelArrays(
        X=np.vstack([a.X, b.X]),
        fixed_names=a.fixed_names,
        factors=factors,
        y=None,
        weights=cat(a.weights, b.weights, n_a, n_b, 1.0),
        offset=cat(a.offset, b.offset, n_a, n_b, 0.0),
        frequency=cat(a.frequency, b.frequency, n_a, n_b, 1.0),
    )
