"""Fit the harness's designs with sklmixed and compare them with lme4's fits.

Run ``python benchmarks/harness/compare.py DIR`` after ``generate.py`` and
``fit_lme4.R`` (see README.md). For each design it records:

- ``gap``: how much higher lme4's log-likelihood is than ours, both evaluated by our
  criterion (ours at our optimum, ours at lme4's θ): positive means we stopped at a
  worse optimum than lme4's;
- ``gain``: what a tight polish from our optimum gains (a search at tolerance 1e-12
  with a fresh trust region, then L-BFGS-B where the gradient exists), in
  log-likelihood units;
- the warnings we gave; a convergence warning is a false alarm when the polish gains
  less than half the check's threshold (the threshold is 1e-3 on the criterion,
  twice the log-likelihood).

It writes ``DIR/compare.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from sklmixed import lmer
from sklmixed._core.optimize import minimize_theta

# The check's threshold on the predicted decrease of the criterion (check_optimum's tol).
CHECK_TOL = 1e-3
WORSE = 1e-6  # log-likelihood units


def tight_polish(result):
    """The lowest criterion a tight local search from our optimum reaches."""
    fit = result.fit
    crit = fit.criterion
    theta, best = fit.theta_scaled, fit.record.fmin
    for _ in range(3):
        run = minimize_theta(crit, theta, crit.lower, xtol_abs=1e-12, ftol_abs=1e-12,
                             initial_step=1e-3, max_evals=20_000)
        if crit.has_gradient:
            grad = minimize_theta(crit.value_and_gradient, run.theta, crit.lower,
                                  with_gradient=True, ftol_abs=1e-12, max_evals=20_000)
            run = grad if grad.fmin < run.fmin else run
        if not run.fmin < best - 1e-12:
            break
        theta, best = run.theta, run.fmin
    return best


def compare_one(design, lme4, folder):
    """Our fit of one design against lme4's."""
    groups = {c: str for c in ("g1", "g2", "g3", "f")}
    data = pd.read_csv(folder / f"{design['id']}.csv", dtype=groups)
    row = {"id": design["id"], "formula": design["formula"], "REML": design["REML"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            model = lmer(design["formula"], data, REML=design["REML"])
        except Exception as exc:  # noqa: BLE001 - the harness reports every failure
            row["error"] = f"{type(exc).__name__}: {exc}"
            return row
        row["seconds"] = time.perf_counter() - start
    result = model.result_
    row["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    row["convergence_warning"] = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    row["theta"] = list(map(float, result.theta))
    row["logLik"] = float(model.log_likelihood_)
    row["n_evals"] = int(model.n_iter_)
    check = result.convergence_check
    row["predicted"] = None if check is None else float(check.predicted_decrease)
    fmin = result.fit.record.fmin
    if "error" in lme4:
        row["lme4_error"] = lme4["error"]
        return row
    names = list(result.theta_names)
    if names != lme4["theta_names"]:
        row["name_mismatch"] = [names, lme4["theta_names"]]
        return row
    at_lme4 = result.criterion_at(np.asarray(lme4["theta"], float))
    row["gap"] = float((fmin - at_lme4) / 2.0)  # > 0: lme4's θ is better for our criterion
    row["logLik_gap"] = float(lme4["logLik"] - row["logLik"])
    row["gain"] = float((fmin - tight_polish(result)) / 2.0)
    row["lme4_notes"] = lme4.get("notes", [])
    return row


def summarize(rows):
    """Counts: designs, failures, worse than lme4, false alarms, missed warnings."""
    fitted = [r for r in rows if "gap" in r]
    warned = [r for r in fitted if r["convergence_warning"]]
    return {
        "designs": len(rows),
        "compared": len(fitted),
        "errors": [r["id"] for r in rows if "error" in r],
        "lme4_errors": [r["id"] for r in rows if "lme4_error" in r],
        "name_mismatches": [r["id"] for r in rows if "name_mismatch" in r],
        "worse_than_lme4": [(r["id"], r["gap"]) for r in fitted if r["gap"] > WORSE],
        "better_than_lme4_by_1e-6": sum(r["gap"] < -WORSE for r in fitted),
        "warnings": len(warned),
        "false_alarms": [(r["id"], r["predicted"], r["gain"]) for r in warned
                         if 2 * r["gain"] < CHECK_TOL / 2],
        "missed": [(r["id"], r["gain"]) for r in fitted
                   if not r["convergence_warning"] and 2 * r["gain"] > CHECK_TOL],
        "seconds": sum(r.get("seconds", 0.0) for r in rows),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    args = parser.parse_args()
    folder = pathlib.Path(args.folder)
    designs = json.loads((folder / "designs.json").read_text())
    lme4 = {r["id"]: r for r in json.loads((folder / "lme4.json").read_text())}
    rows = [compare_one(d, lme4[d["id"]], folder) for d in designs]
    summary = summarize(rows)
    (folder / "compare.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
