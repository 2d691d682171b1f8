"""Warnings raised by sklmixed, and the one way they are raised.

Every warning is attributed to the user's own line: :func:`warn` skips the frames of
sklmixed, scikit-learn and the standard library's ``warnings`` machinery, so that a
warning raised while ``cross_val_score`` fits a pipeline points at the call in the
user's script, not at scikit-learn's ``base.py``.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["SingularFitWarning", "UnboundedLikelihoodWarning", "warn"]


class SingularFitWarning(UserWarning):
    """The fit lies on the boundary of the parameter space (lme4's singular fit).

    A variance component is estimated as exactly zero, or a correlation as ±1. The
    estimates are a legitimate optimum, but the random-effects structure is richer
    than the data can support; ``is_singular_`` is True.
    """


class UnboundedLikelihoodWarning(UserWarning):
    """The likelihood has no maximum: the model reproduces the response exactly.

    With y constant within every group, or a function of the features, the random
    effects fit y without residual, the residual variance falls to 0 and the
    likelihood grows without bound. ``log_likelihood_`` is ``inf``; the estimates are
    where the optimizer stopped, at the edge of what double precision can compute,
    and are not a maximum-likelihood fit (lme4 reports ``logLik = Inf`` or a number
    made of rounding errors there).
    """


def _package_dir(module_name):
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) + os.sep if path else None


_SKIPPED = None


def _skipped_prefixes():
    global _SKIPPED
    if _SKIPPED is None:
        _SKIPPED = tuple(
            p for p in (_package_dir("sklmixed"), _package_dir("sklearn"), _package_dir("joblib"))
            if p
        )
    return _SKIPPED


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside sklmixed and scikit-learn.

    Parameters
    ----------
    message : str
    category : type of Warning, default=UserWarning
    """
    skipped = _skipped_prefixes()
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(skipped):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1 if frame is not None else 2)
