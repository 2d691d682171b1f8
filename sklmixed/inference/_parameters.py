"""The parameters lme4's ``confint`` reports, and their map to θ and σ.

lme4 names the variance parameters ``.sig01``, ``.sig02``, ... (each term's lower
triangle column by column, θ's order: a standard deviation on the diagonal, a
correlation below it), then ``.sigma``, then the fixed effects. A term's covariance
is ``σ² T Tᵀ`` with ``T`` its relative covariance factor, so the standard deviations
and correlations are those of ``σ² T Tᵀ`` and, back, ``T = chol(D R D) / σ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ParameterMap", "percent_labels"]


def percent_labels(level):
    """R's column names of an interval at ``level``: ``["2.5 %", "97.5 %"]``
    (``format(100 * a, digits = 3)`` followed by ``" %"``)."""
    from ..report.rformat import format_one

    alpha = (1.0 - level) / 2.0
    return [f"{format_one(100 * a, digits=3)} %" for a in (alpha, 1.0 - alpha)]


def _tril_column_wise(q):
    rows, cols = [], []
    for col in range(q):
        for row in range(col, q):
            rows.append(row)
            cols.append(col)
    return np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)


@dataclass(frozen=True)
class ParameterMap:
    """lme4's profile parameters of a fit: names, bounds and the map to θ.

    Attributes
    ----------
    names : tuple of str
        ``.sig01``, ..., ``.sigma`` (the variance parameters), then the fixed effects.
        A GLMM of a family without a scale (binomial, Poisson) has no ``.sigma``.
    n_var : int
        Number of variance parameters, ``.sigma`` included when there is one.
    term_sizes : tuple of int
        Columns of each random-effects term, in lme4's order.
    lower, upper : ndarray
        Bounds of the variance parameters: 0 for a standard deviation, ±1 for a
        correlation, 0 for ``σ``.
    """

    names: tuple
    n_var: int
    term_sizes: tuple
    lower: np.ndarray
    upper: np.ndarray
    has_sigma: bool = True

    @classmethod
    def of(cls, result):
        """The map of a :class:`~sklmixed.result.MixedLMResult`."""
        sizes = tuple(len(term.column_names) for term in result.terms)
        # lme4's useSc: a linear model has σ; binomial and Poisson GLMMs have none.
        has_sigma = getattr(result, "family", "gaussian") == "gaussian"
        is_sd = np.concatenate(
            [np.equal(*_tril_column_wise(q)) for q in sizes] + [np.ones(int(has_sigma), bool)]
        )
        n_var = is_sd.size
        n_sig = n_var - int(has_sigma)
        names = tuple(f".sig{k:02d}" for k in range(1, n_sig + 1))
        names += (".sigma",) * int(has_sigma) + tuple(result.fixed_effects.index)
        return cls(
            names=names,
            n_var=n_var,
            term_sizes=sizes,
            lower=np.where(is_sd, 0.0, -1.0),
            upper=np.where(is_sd, np.inf, 1.0),
            has_sigma=has_sigma,
        )

    @property
    def n_theta(self) -> int:
        """Number of θ entries (variance parameters less ``σ``)."""
        return self.n_var - int(self.has_sigma)

    def to_sdcor(self, theta, sigma):
        """Standard deviations and correlations of each term, then ``σ``.

        Parameters
        ----------
        theta : ndarray of shape (n_theta,) or (B, n_theta)
            θ in lme4's order and the data's units (one row per replicate).
        sigma : float or ndarray of shape (B,)

        Returns
        -------
        ndarray of shape (n_var,) or (B, n_var)
        """
        theta = np.asarray(theta, dtype=float)
        sigma = np.asarray(sigma, dtype=float)
        single = theta.ndim == 1
        theta, sigma = np.atleast_2d(theta), np.atleast_1d(sigma)
        out, start = [], 0
        for q in self.term_sizes:
            rows, cols = _tril_column_wise(q)
            T = np.zeros((theta.shape[0], q, q))
            T[:, rows, cols] = theta[:, start : start + rows.size]
            V = T @ T.transpose(0, 2, 1)
            sd = np.sqrt(np.einsum("bii->bi", V))
            with np.errstate(invalid="ignore", divide="ignore"):
                cor = V[:, rows, cols] / (sd[:, rows] * sd[:, cols])
            # A correlation with a zero standard deviation is undefined; lme4's
            # cov2sdcor (behind confint and bootMer's parameters) reports it as 0.
            cor = np.where(np.isfinite(cor), cor, 0.0)
            values = np.where(rows == cols, sd[:, rows] * sigma[:, None], cor)
            out.append(values)
            start += rows.size
        out.append(sigma[:, None])
        values = np.concatenate(out, axis=1)
        return values[0] if single else values

    def to_theta(self, sdcor):
        """θ (lme4's order, the data's units) from standard deviations, correlations
        and ``σ`` (the last entry); None where the correlations are not a valid
        correlation matrix or ``σ`` is not positive."""
        sdcor = np.asarray(sdcor, dtype=float)
        sigma = sdcor[-1]
        if not sigma > 0:
            return None
        out, start = [], 0
        for q in self.term_sizes:
            rows, cols = _tril_column_wise(q)
            values = sdcor[start : start + rows.size]
            start += rows.size
            sd = values[rows == cols]
            if q == 1:
                out.append(sd / sigma)
                continue
            R = np.eye(q)
            off = rows != cols
            R[rows[off], cols[off]] = values[off]
            if q == 2:  # closed form: valid up to |r| = 1 (a singular fit)
                r = R[1, 0]
                C = np.array([[1.0, 0.0], [r, np.sqrt(max(1.0 - r * r, 0.0))]])
            else:
                R = R + np.tril(R, -1).T
                try:
                    C = np.linalg.cholesky(R)
                except np.linalg.LinAlgError:
                    return None
            T = sd[:, None] * C / sigma
            out.append(T[rows, cols])
        return np.concatenate(out) if out else np.zeros(0)
