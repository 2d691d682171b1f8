"""Adaptive Gauss–Hermite quadrature for one scalar random-effects term.

With a single grouping factor and one column, the likelihood is a product over
levels of one-dimensional integrals. Each is taken around the conditional mode
``uⱼ`` with the scale ``sⱼ = 1/Lⱼⱼ`` of the Laplace approximation (Liu and Pierce
1994; lme4's ``nAGQ > 1``): at the nodes ``zₖ`` of a Gauss–Hermite rule for the
standard normal, ``uⱼ + zₖ sⱼ`` moves every row of level ``j`` at once, so a rule of
``K`` nodes costs ``K`` passes over the rows (vector operations, per-level sums by
``bincount``), no loop over levels.

The value returned is on lme4's scale: the deviance residuals replace
``−2 log p(y | μ)``, which leaves out ``Σ −2 log p(yᵢ | μᵢ = yᵢ)`` (the saturated
model's term, a constant). :func:`saturated_constant` gives it, so that the
log-likelihood proper is reported, comparable with the Laplace one.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["MAX_AGQ", "agq_deviance", "saturated_constant", "check_agq"]

MAX_AGQ = 25  # lme4's limit


def check_agq(problem, n_agq):
    """Refuse quadrature lme4 does not define: more than one term, or a vector one."""
    terms = problem.terms
    if n_agq > 1 and not (len(terms) == 1 and terms[0].q == 1):
        raise ValueError(
            f"nAGQ = {n_agq} > 1 needs a single scalar random-effects term such as (1 | g) "
            "(as in lme4); use nAGQ=1 (the Laplace approximation) for this model."
        )
    if not 0 <= n_agq <= MAX_AGQ:
        raise ValueError(f"nAGQ must be between 0 and {MAX_AGQ}; got {n_agq}.")


def agq_deviance(problem, state, n_agq) -> float:
    """lme4's adaptive Gauss–Hermite deviance at a PIRLS fixed point (u only).

    Parameters
    ----------
    problem : GLMMProblem
        One grouping factor with one column.
    state : PIRLSState
        PIRLS converged at (θ, β).
    n_agq : int
        Nodes of the rule.

    Returns
    -------
    float
        ``Σⱼ [uⱼ² + Σᵢ dᵢ] + log|L|² − 2 Σⱼ log Σₖ wₖ e^{zₖ²/2} e^{−Δⱼₖ/2}``, with ``Δⱼₖ``
        the change of level ``j``'s penalized deviance at node ``k``.
    """
    family, y, w = problem.family, problem.arrays.y, problem.prior
    codes = problem.codes[0]
    cols = problem.columns[0][:, 0]
    m = problem.terms[0].n_levels
    t = float(state.factor.T[0][0, 0])
    u = state.u[0][:, 0]
    sd = 1.0 / state.factor.L11_entries[0, 0]
    saturated = np.bincount(codes, problem.saturated, minlength=m)  # per level
    devc0 = u * u + np.bincount(codes, family.kernel(y, state.mu, w), minlength=m) - saturated
    nodes, weights = hermegauss(n_agq)
    weights = weights / np.sqrt(2.0 * np.pi)  # a rule for the standard normal density
    mult = np.zeros(m)
    row_shift = cols * t * sd[codes]  # η moves by this per unit of z
    for z, wk in zip(nodes, weights):
        if z == 0.0:
            mult += wk
            continue
        uk = u + z * sd
        mu = family.link.inverse(state.eta + z * row_shift)
        devc = uk * uk + np.bincount(codes, family.kernel(y, mu, w), minlength=m) - saturated
        mult += wk * np.exp(0.5 * z * z - 0.5 * (devc - devc0))
    return float(devc0.sum() + state.factor.logdet_L - 2.0 * np.log(mult).sum())


def saturated_constant(problem) -> float:
    """``Σ −2 log p(yᵢ | μᵢ = yᵢ)``: what lme4's AGQ deviance leaves out."""
    return float(problem.saturated.sum()) + problem.loglik_constant
