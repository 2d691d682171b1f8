"""lme4's interpolation of a profile: ζ as a spline of the parameter, and its inverse.

lme4 interpolates each profile by a natural cubic spline of ζ against the parameter
(``splines::interpSpline``) and inverts it (``splines::backSpline``): on every interval
between knots, the cubic with the knots' parameter values and the reciprocal slopes
of the forward spline at both ends (a Hermite cubic); on the first and last
intervals, the quadratic that keeps the inner end's slope (made linear where its
curvature has the wrong sign). The confidence limits are the inverse at ``±z``.
Points outside the profiled range have no inverse (NaN), as in R.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["InverseSpline"]


class InverseSpline:
    """The parameter as a function of ζ, from a monotone profile (lme4's ``backSpline``).

    Parameters
    ----------
    values : ndarray of shape (k,)
        Parameter values, increasing.
    zeta : ndarray of shape (k,)
        ζ at each value, increasing.
    """

    def __init__(self, values, zeta):
        x = np.asarray(values, dtype=float)
        z = np.asarray(zeta, dtype=float)
        if x.size < 2 or np.any(np.diff(x) <= 0):
            raise ValueError("profile values must be strictly increasing")
        if np.any(np.diff(z) <= 0):
            raise ValueError("non-monotonic profile")
        slopes = CubicSpline(x, z, bc_type="natural")(x, 1) if x.size > 2 else np.full(
            x.size, (z[1] - z[0]) / (x[1] - x[0])
        )
        dz, dx = np.diff(z), np.diff(x)
        b = 1.0 / slopes  # dx/dζ at each knot
        # Hermite cubics: value and slope at both ends of each interval.
        c = (3.0 * dx / dz - 2.0 * b[:-1] - b[1:]) / dz
        d = (b[:-1] + b[1:] - 2.0 * dx / dz) / dz**2
        lin = b[:-1].copy()
        if x.size > 2:
            # First interval: the quadratic with the second knot's slope.
            d[0] = 0.0
            c[0] = (b[1] - dx[0] / dz[0]) / dz[0]
            lin[0] = dx[0] / dz[0] - c[0] * dz[0]
            # Last interval: the quadratic with the last-but-one knot's slope.
            d[-1] = 0.0
            c[-1] = (dx[-1] - dz[-1] * b[-2]) / dz[-1] ** 2
        if c[0] > 0:
            c[0], lin[0] = 0.0, dx[0] / dz[0]
        if c[-1] < 0:
            c[-1], lin[-1] = 0.0, dx[-1] / dz[-1]
            d[-1] = 0.0
        self.knots, self.x = z, x
        self.coef = np.column_stack([x[:-1], lin, c, d])

    def __call__(self, zeta):
        """The parameter at each ζ; NaN outside the profiled range."""
        zeta = np.atleast_1d(np.asarray(zeta, dtype=float))
        # R's cut(): intervals closed on the right, the first knot in the first.
        i = np.searchsorted(self.knots, zeta, side="left") - 1
        i = np.where(zeta == self.knots[0], 0, i)
        inside = (i >= 0) & (i < self.coef.shape[0])
        i = np.clip(i, 0, self.coef.shape[0] - 1)
        t = zeta - self.knots[i]
        a, b, c, d = self.coef[i].T
        out = a + t * (b + t * (c + t * d))
        return np.where(inside, out, np.nan)
