"""The stateful pieces of a formula: factor levels, centring, scaling, polynomials.

Each is learned on the training data and applied unchanged to new data, as R's
``predict`` does through ``makepredictcall`` (``scale``'s centre and scale,
``poly``'s ``coefs``) and the training factor levels (``xlev``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .deparse import format_level

__all__ = [
    "FactorValue",
    "Levels",
    "MatrixValue",
    "learn_levels",
    "poly_fit",
    "poly_predict",
    "scale_fit",
]


@dataclass(frozen=True)
class FactorValue:
    """A factor evaluated on data: integer codes into ``levels``."""

    codes: np.ndarray
    levels: Levels

    def labels(self):
        """The level label of each row, as an object array."""
        return np.asarray(self.levels.labels, dtype=object)[self.codes]


@dataclass(frozen=True)
class MatrixValue:
    """A variable of several columns (``poly``): names are the variable's + a suffix."""

    values: np.ndarray
    suffixes: tuple


@dataclass(frozen=True)
class Levels:
    """A factor's levels learned at fit: their values (to match new data) and labels."""

    values: tuple
    labels: tuple

    def codes(self, values, variable):
        """Codes of new values in these levels.

        Parameters
        ----------
        values : array-like or FactorValue
        variable : str
            The variable's name, for the message.

        Returns
        -------
        ndarray of intp

        Raises
        ------
        ValueError
            Naming the variable and the levels not seen in the training data.
        """
        if isinstance(values, FactorValue):
            values = values.labels()
            index = pd.Index(self.labels, dtype=object)
        else:
            index = pd.Index(self.values, dtype=object)
        values = np.asarray(values, dtype=object)
        codes = index.get_indexer(values)
        if codes.size and codes.min() < 0:
            unseen = list(dict.fromkeys(values[codes < 0].tolist()))
            shown = ", ".join(repr(v) for v in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
            raise ValueError(
                f"Variable {variable!r} has level(s) {shown} not seen in the training data "
                f"(known levels: {list(self.values)}); the model has no coefficient for it."
            )
        return codes.astype(np.intp)


def learn_levels(values, *, logical_both=True):
    """Levels and codes of a variable at fit, as R's ``factor`` and lme4 make them.

    A pandas Categorical keeps its category order, unused categories dropped (lme4
    fits with ``drop.unused.levels = TRUE``); numbers are sorted numerically and
    strings in C-locale (code point) order; a logical has the levels FALSE, TRUE
    (both, as R's ``model.matrix`` codes a logical) unless ``logical_both`` is False.

    Parameters
    ----------
    values : ndarray, pandas.Categorical or FactorValue
    logical_both : bool, default=True

    Returns
    -------
    levels : Levels
    codes : ndarray of intp
    """
    if isinstance(values, FactorValue):
        present = np.zeros(len(values.levels.values), dtype=bool)
        present[values.codes] = True
        keep = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        levels = Levels(
            tuple(values.levels.values[i] for i in keep),
            tuple(values.levels.labels[i] for i in keep),
        )
        return levels, lookup[values.codes].astype(np.intp)
    if isinstance(values, pd.Categorical):
        codes = np.asarray(values.codes, dtype=np.intp)
        present = np.zeros(len(values.categories), dtype=bool)
        present[codes] = True
        lookup = np.cumsum(present) - 1
        kept = values.categories[present].tolist()
        return Levels(tuple(kept), tuple(format_level(v) for v in kept)), lookup[codes]
    values = np.asarray(values)
    if values.dtype.kind == "b" and logical_both:
        return Levels((False, True), ("FALSE", "TRUE")), values.astype(np.intp)
    codes, uniques = pd.factorize(values, sort=True)
    kept = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
    return Levels(tuple(kept), tuple(format_level(v) for v in kept)), codes.astype(np.intp)


def scale_fit(x, center, scale):
    """The state of R's ``scale(x, center, scale)`` on training ``x``.

    Parameters
    ----------
    x : ndarray
    center, scale : bool

    Returns
    -------
    centre : float or None
        The mean, if centring.
    scale : float or None
        The standard deviation (or root mean square without centring), if scaling.
    """
    c = float(np.mean(x)) if center else None
    centred = x - c if center else x
    s = None
    if scale:
        # R divides by the standard deviation when centring, else by the root mean
        # square sqrt(sum(x^2) / (n - 1)); both with n - 1.
        s = float(np.sqrt(np.sum(centred * centred) / max(len(x) - 1, 1)))
    return c, s


def poly_fit(x, degree):
    """Orthogonal polynomials of training ``x`` and their coefficients (R's ``poly``).

    The basis is the QR decomposition of the centred Vandermonde matrix, columns
    scaled to unit norm; ``alpha`` and ``norm2`` describe the three-term recurrence
    that reproduces the same polynomials on new data (R's ``coefs``).

    Parameters
    ----------
    x : ndarray
    degree : int
        Less than the number of unique values of ``x``.

    Returns
    -------
    Z : ndarray of shape (n, degree)
    coefs : tuple
        ``(alpha, norm2)``: alpha of length degree, norm2 of length degree + 2.
    """
    x = np.asarray(x, dtype=np.float64)
    unique = np.unique(x).size
    if degree >= unique:
        raise ValueError(
            f"poly(): 'degree' ({degree}) must be less than the number of unique points ({unique})."
        )
    mean = float(x.mean())
    centred = x - mean
    vander = np.vander(centred, degree + 1, increasing=True)
    q, r = np.linalg.qr(vander)
    # Q scaled by R's diagonal: the monic orthogonal polynomials (sign-free).
    z = q * np.diag(r)
    norm2 = np.sum(z * z, axis=0)
    alpha = (np.sum(centred[:, None] * z * z, axis=0) / norm2 + mean)[:degree]
    norm2 = np.concatenate([[1.0], norm2])
    return z[:, 1:] / np.sqrt(norm2[2:]), (alpha, norm2)


def poly_predict(x, coefs, degree):
    """The polynomials of :func:`poly_fit` on new data, by the three-term recurrence.

    Parameters
    ----------
    x : ndarray
    coefs : tuple
        From :func:`poly_fit`.
    degree : int

    Returns
    -------
    ndarray of shape (len(x), degree)
    """
    alpha, norm2 = coefs
    x = np.asarray(x, dtype=np.float64)
    z = np.empty((x.size, degree + 1))
    z[:, 0] = 1.0
    z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        z[:, i + 1] = (x - alpha[i]) * z[:, i] - (norm2[i + 1] / norm2[i]) * z[:, i - 1]
    return z[:, 1:] / np.sqrt(norm2[2:])
