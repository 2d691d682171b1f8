"""Warnings raised by sklmixed."""

__all__ = ["SingularFitWarning"]


class SingularFitWarning(UserWarning):
    """The fit lies on the boundary of the parameter space (lme4's singular fit).

    A variance component is estimated as exactly zero, or a correlation as ±1. The
    estimates are a legitimate optimum, but the random-effects structure is richer
    than the data can support; ``is_singular_`` is True.
    """
