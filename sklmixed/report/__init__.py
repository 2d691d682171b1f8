"""Reports of a fitted result: lme4's printed summary (text, HTML, DataFrames)."""

from .summary import Summary
from .summary_glmm import GLMMSummary

__all__ = ["Summary", "GLMMSummary"]
