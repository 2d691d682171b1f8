"""Reports of a fitted result: lme4's printed summary (text, HTML, DataFrames)."""

from .summary import Summary

__all__ = ["Summary"]
