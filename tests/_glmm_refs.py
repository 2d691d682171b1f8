"""Reading the lme4 glmer references of tests/reference/glmm (shared by the GLMM tests)."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).resolve().parent
REF_DIR = HERE / "reference" / "glmm"
DATA_DIR = HERE / "data"
# The shared tool's tolerances (/work/shared/tools/glmer_parity.py).
TOL = {"loglik": 1e-3, "fixef": 1e-3, "fixef_se": 2e-2, "varcorr": 5e-3, "fitted": 1e-3}


def reference_names():
    """Every single-model reference (not the anova, confint or session files)."""
    out = []
    for path in sorted(REF_DIR.glob("*.json")):
        ref = json.loads(path.read_text())
        if "formula" in ref and "fixef" in ref:
            out.append(path.stem)
    return out


def load(name):
    """The reference and its data, factors as pandas Categoricals in R's level order."""
    ref = json.loads((REF_DIR / f"{name}.json").read_text())
    data = pd.read_csv(DATA_DIR / f"{ref['dataset']}.csv")
    for col, levels in (ref.get("factors") or {}).items():
        if col in data:
            data[col] = pd.Categorical(data[col].astype(str), categories=[str(v) for v in levels])
    return ref, data


def glmer_arguments(ref, data):
    """``glmer``'s keyword arguments for a reference (weights and offsets as written)."""
    kwargs = dict(family=ref["family"], link=ref["link"], nAGQ=ref["nAGQ"])
    if ref.get("weights"):
        kwargs["weights"] = ref["weights"]
    if ref.get("offset_in") == "argument":
        match = re.fullmatch(r"log\((\w+)\)", ref["offset"])
        kwargs["offset"] = np.log(data[match.group(1)].to_numpy())
    return kwargs


def norm(name):
    return re.sub(r"[()\[\]\s]|T\.", "", str(name))


def relative_errors(model, ref):
    """Largest relative differences from lme4, as the shared tool measures them."""
    out = {}
    ours = np.sort(np.asarray(model.variance_components_["vcov"], float))
    theirs = np.sort(np.atleast_1d([r["vcov"] for r in ref["varcorr"]]))
    out["varcorr"] = float(np.max(np.abs(ours - theirs)) / max(np.abs(theirs).max(), 1e-12))
    for key, attr, floor in (("fixef", "fixed_effects_", 1e-2), ("fixef_se", "fixed_effects_se_", 1e-8)):
        mine = {norm(k): float(v) for k, v in getattr(model, attr).items()}
        out[key] = max(abs(mine[norm(k)] - v) / max(abs(v), floor) for k, v in ref[key].items())
    fitted = np.asarray(ref["fitted"], float)
    out["fitted"] = float(np.max(np.abs(model.fitted_ - fitted)) / max(np.std(fitted), 1e-12))
    return out
