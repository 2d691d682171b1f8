"""Denominator df for every fixed effect: sklmixed against lmerTest, pbkrtest and glmm.

    python benchmarks/inference_df.py              # Exam model 5; 1,000,000 x 10,000
    python benchmarks/inference_df.py --quick      # Exam model 5; 100,000 x 1,000
    python benchmarks/inference_df.py --no-r       # without R (lmerTest, pbkrtest)

For each case: the fit's own time, then Satterthwaite's and Kenward–Roger's df of
every fixed effect from the fit (sklmixed: ``satterthwaite(fit)`` and
``kenward_roger(fit)``; lmerTest: ``as_lmerModLmerTest`` and its coefficient table;
pbkrtest: ``vcovAdj`` and ``Lb_ddf`` per coefficient, attempted up to 20,000 rows
since it inverts the n x n covariance; glmm: ``fit(..., satterthwaite=True)`` less the
same fit without). The largest relative difference of each tool's df from sklmixed's
is reported beside its time. Times are medians of ``--repeats`` runs (R: one run),
wall clock, on whatever the machine gives (``docs/performance.md``).

Cases: Exam model 5, ``normexam ~ standLRT * schavg + (1 + standLRT | school)``
(4,059 rows, 65 schools), and the ``single`` case of ``benchmarks/data.py``,
``y ~ x1 + ... + x10 + (1 + x1 + x2 | g)``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import data as bench_data  # noqa: E402

from sklmixed import lmer  # noqa: E402
from sklmixed.inference import kenward_roger, satterthwaite  # noqa: E402

EXAM5 = "normexam ~ standLRT * schavg + (1 + standLRT | school)"
SINGLE = "y ~ " + " + ".join(f"x{j}" for j in range(1, 11)) + " + (1 + x1 + x2 | g)"
PBKRTEST_MAX_ROWS = 20_000

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest); library(jsonlite)})
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
d[[args[3]]] <- factor(d[[args[3]]])
f <- as.formula(args[2])
t0 <- proc.time()[["elapsed"]]
fit <- lme4::lmer(f, data = d, REML = TRUE)
t_fit <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]
lt <- as_lmerModLmerTest(fit)
satt <- summary(lt)$coefficients[, "df"]
t_satt <- proc.time()[["elapsed"]] - t0
out <- list(fit = t_fit, satterthwaite = t_satt, satterthwaite_df = unname(satt))
if (nrow(d) <= as.numeric(args[4])) {
  t0 <- proc.time()[["elapsed"]]
  V <- vcovAdj(fit)
  p <- length(fixef(fit))
  kr <- sapply(seq_len(p), function(i) Lb_ddf(diag(p)[i, , drop = FALSE], vcov(fit), V))
  out$kenward_roger <- proc.time()[["elapsed"]] - t0
  out$kenward_roger_df <- unname(kr)
}
cat(toJSON(out, digits = NA, auto_unbox = TRUE))
"""

GLMM_CHILD = r"""
import json, sys, time, warnings
import pandas as pd
import glmm
warnings.simplefilter("ignore")
frame = pd.read_parquet(sys.argv[1])
frame[sys.argv[3]] = frame[sys.argv[3]].astype(str).astype("category")
# A warm-up fit on a few rows, then each fit once on its own copy of the data (a
# repeated fit of the same frame may reuse what the first computed).
glmm.fit(frame.head(2000).copy(), sys.argv[2], reml=True, satterthwaite=True, wald_se="rx")
out = {}
for satt in (False, True):
    data = frame.copy()
    t0 = time.perf_counter()
    res = glmm.fit(data, sys.argv[2], reml=True, satterthwaite=satt, wald_se="rx")
    out["with" if satt else "without"] = time.perf_counter() - t0
out["df"] = [float(v) for v in res.coef_df]
print(json.dumps(out))
"""


def _median_time(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a / b - 1))) if a.shape == b.shape else float("nan")


def run_case(name, frame, formula, group, repeats, use_r, timeout):
    row = {"case": name, "rows": len(frame), "levels": int(frame[group].nunique())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_fit, fit = _median_time(lambda: lmer(formula, data=frame), repeats)
        t_satt, satt = _median_time(lambda: satterthwaite(fit), repeats)
        t_kr, kr = _median_time(lambda: kenward_roger(fit), repeats)
    row.update(sklmixed_fit=t_fit, sklmixed_satterthwaite=t_satt, sklmixed_kenward_roger=t_kr,
               satterthwaite_over_fit=t_satt / t_fit, kenward_roger_over_fit=t_kr / t_fit)
    ours_satt, ours_kr = satt["df"].to_numpy(), kr["df"].to_numpy()

    with tempfile.TemporaryDirectory() as tmp:
        parquet = pathlib.Path(tmp) / "data.parquet"
        frame.to_parquet(parquet)
        try:
            done = subprocess.run(
                [sys.executable, "-c", GLMM_CHILD, str(parquet), formula, group],
                capture_output=True, text=True, timeout=timeout, check=True,
            )
            g = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(glmm_fit=g["without"], glmm_satterthwaite=g["with"] - g["without"],
                       glmm_df_vs_sklmixed=_rel(g["df"], ours_satt))
        except (subprocess.SubprocessError, ValueError, KeyError) as exc:
            row["glmm"] = f"failed or timed out: {type(exc).__name__}"
        if use_r:
            csv = pathlib.Path(tmp) / "data.csv"
            frame.to_csv(csv, index=False)
            script = pathlib.Path(tmp) / "df.R"
            script.write_text(R_SCRIPT)
            try:
                done = subprocess.run(
                    ["Rscript", str(script), str(csv), formula, group, str(PBKRTEST_MAX_ROWS)],
                    capture_output=True, text=True, timeout=timeout, check=True,
                )
                r = json.loads(done.stdout.strip().splitlines()[-1])
                row.update(lme4_fit=r["fit"], lmertest_satterthwaite=r["satterthwaite"],
                           lmertest_df_vs_sklmixed=_rel(r["satterthwaite_df"], ours_satt))
                if "kenward_roger" in r:
                    row.update(pbkrtest_kenward_roger=r["kenward_roger"],
                               pbkrtest_df_vs_sklmixed=_rel(r["kenward_roger_df"], ours_kr))
                else:
                    row["pbkrtest"] = f"not attempted above {PBKRTEST_MAX_ROWS:,} rows (n x n)"
            except (subprocess.SubprocessError, ValueError, KeyError, FileNotFoundError) as exc:
                row["R"] = f"failed or timed out: {type(exc).__name__}"
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 x 1,000, not 1e6 x 1e4")
    parser.add_argument("--no-r", action="store_true", help="skip lmerTest and pbkrtest")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per external tool")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)

    exam = bench_data.exam()
    cases = [("exam model 5", exam.frame, EXAM5, "school")]
    rows, levels = (100_000, 1_000) if args.quick else (1_000_000, 10_000)
    single = bench_data.single(rows, levels)
    cases.append((single.name, single.frame, SINGLE, "g"))
    results = []
    for name, frame, formula, group in cases:
        row = run_case(name, frame, formula, group, args.repeats, not args.no_r, args.timeout)
        results.append(row)
        print(json.dumps(row, indent=1), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
