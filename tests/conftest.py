"""Test configuration: property tests draw the same examples on every run, so that a
CI failure reproduces locally (set HYPOTHESIS_PROFILE=explore for fresh examples)."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
