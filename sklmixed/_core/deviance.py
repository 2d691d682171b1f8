"""The profiled deviance and REML criterion from their parts.

With β and σ profiled out (Bates et al. 2015, eqs. 34 and 41)::

    ML:    d(θ)   = log|L_Z|² − Σ log w + n (1 + log(2π r²/n))
    REML:  d_R(θ) = log|L_Z|² − Σ log w + log|R_X|² + (n − p)(1 + log(2π r²/(n − p)))

where ``r²`` is the penalized weighted residual sum of squares.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["criterion_from_parts"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def criterion_from_parts(logdet_L, logdet_RX, pwrss, n, p, sum_log_weights, reml, log=math.log):
    """The profiled criterion (−2 log-likelihood) from ``log|L_Z|²``, ``log|R_X|²`` and
    r² > 0; with ``log=np.log`` the parts may be arrays (one entry per θ)."""
    dev = logdet_L - sum_log_weights
    if reml:
        nmp = n - p
        return dev + logdet_RX + nmp * (1.0 + _LOG_2PI + log(pwrss / nmp))
    return dev + n * (1.0 + _LOG_2PI + log(pwrss / n))
