"""Benchmark GLMMs (lme4's glmer) against lme4, the glmm package and statsmodels.

Usage::

    python benchmarks/glmm.py                       # every case and tool
    python benchmarks/glmm.py --cases cbpp,verbagg --tools sklmixed,glmm
    python benchmarks/glmm.py --quick               # the reference data sets and 100k only

Cases: the four reference data sets of ``tests/reference/glmm`` (cbpp by Laplace and
by nAGQ = 25, grouseticks, Contraception, VerbAgg) and two synthetic binary data sets,
``y ~ x + (1 + x | g)`` with 100,000 rows in 1,000 groups and 1,000,000 rows in
10,000 groups (seeded; correlated intercept and slope per group).

Tools: ``sklmixed`` (:func:`sklmixed.glmer` on a DataFrame), ``sklmixed-array``
(:class:`sklmixed.MixedLogisticRegression` on the synthetic arrays), ``lme4``
(``glmer`` via ``Rscript benchmarks/glmer.R``, package data read by R itself),
``glmm`` (``glmm.fit``, Rust core), ``statsmodels`` (``BinomialBayesMixedGLM`` /
``PoissonBayesMixedGLM`` by variational Bayes: independent random effects only and no
maximum-likelihood log-likelihood, so its column reads ``n/a``).

Each (tool, case) runs in a fresh process: the data are built, the tool warmed up on a
small fit, then the fit is timed ``--repeats`` times (median reported) and its peak
memory measured once (``memory.PeakMemory``: the resident-set high-water mark above
the process's size before the call, every allocator counted). The table prints the
median seconds, the log-likelihood, peak memory (MiB) and the input's size; results
go to ``benchmarks/results/glmm.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tests" / "data"
# This file is named glmm.py: its folder must not shadow the glmm package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE]

# case -> (data, formula, family, link, nAGQ, lme4's data source)
CASES = {
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
             "binomial", "logit", 1, "package:lme4::cbpp"),
    "cbpp_agq25": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   "binomial", "logit", 25, "package:lme4::cbpp"),
    "grouseticks": ("grouseticks",
                    "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
                    "poisson", "log", 1, "package:lme4::grouseticks"),
    "contraception": ("Contraception",
                      "use ~ age + I(age^2) + urban + livch + (1 + urban | district)",
                      "binomial", "logit", 1, "package:mlmRev::Contraception"),
    "verbagg": ("VerbAgg", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
                "binomial", "logit", 1, "package:lme4::VerbAgg"),
    "binary_100k": ("synthetic:100000:1000", "y ~ x + (1 + x | g)", "binomial", "logit", 1,
                    None),
    "binary_1m": ("synthetic:1000000:10000", "y ~ x + (1 + x | g)", "binomial", "logit", 1,
                  None),
}
QUICK = ["cbpp", "cbpp_agq25", "grouseticks", "contraception", "verbagg", "binary_100k"]
TOOLS = ["sklmixed", "sklmixed-array", "lme4", "glmm", "statsmodels"]


# ------------------------------------------------------------------------- data
def reference_levels(dataset):
    """Factor columns of a reference CSV with their levels in R's order."""
    stems = {"cbpp": "cbpp_laplace", "grouseticks": "grouseticks_poisson",
             "Contraception": "contraception_slope", "VerbAgg": "verbagg_crossed"}
    ref = json.loads((ROOT / "tests/reference/glmm" / f"{stems[dataset]}.json").read_text())
    return ref["factors"]


def load(dataset):
    """The case's DataFrame: factor columns as Categoricals in R's level order."""
    if dataset.startswith("synthetic:"):
        _, n, groups = dataset.split(":")
        return synthetic_binary(int(n), int(groups))
    factors = reference_levels(dataset)
    frame = pd.read_csv(DATA / f"{dataset}.csv", dtype={c: str for c in factors})
    for column, levels in factors.items():
        frame[column] = pd.Categorical(frame[column], categories=levels)
    if dataset == "cbpp":
        frame["failures"] = frame["size"] - frame["incidence"]  # for glmm's cbind
    if dataset in ("Contraception", "VerbAgg"):  # 0/1 for statsmodels
        target = "use" if dataset == "Contraception" else "r2"
        frame[target + "01"] = (frame[target] == "Y").astype(float)
    return frame


def synthetic_binary(n, n_groups, seed=20240705):
    """``y ~ Bernoulli(logit⁻¹(-0.5 + 0.7x + b0_g + b1_g x))``, ``(b0, b1)`` with sd 0.8,
    0.5 and correlation 0.3; groups of random sizes (about n / n_groups rows)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    x = rng.standard_normal(n)
    cov = np.array([[0.64, 0.3 * 0.8 * 0.5], [0.3 * 0.8 * 0.5, 0.25]])
    b = rng.multivariate_normal(np.zeros(2), cov, n_groups)
    eta = -0.5 + 0.7 * x + b[g, 0] + b[g, 1] * x
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    labels = pd.Categorical.from_codes(g, [f"g{i:05d}" for i in range(n_groups)])
    return pd.DataFrame({"y": y, "x": x, "g": labels})


# ------------------------------------------------------------------------ tools
def fit_sklmixed(frame, case):
    from sklmixed import glmer

    _, formula, family, link, nagq, _ = CASES[case]
    fit = glmer(formula, data=frame, family=family, link=link, nAGQ=nagq)
    return fit.log_likelihood_, bool(fit.converged_)


def fit_sklmixed_array(frame, case):
    from sklmixed import MixedLogisticRegression

    if not CASES[case][0].startswith("synthetic:"):
        raise NotImplementedError("array form run on the synthetic cases only")
    model = MixedLogisticRegression(group="g", random_effects=["x"])
    model.fit(frame[["x", "g"]], frame["y"].to_numpy())
    return model.log_likelihood_, bool(model.converged_)


def fit_glmm(frame, case):
    import glmm

    _, formula, family, link, nagq, _ = CASES[case]
    # glmm's cbind takes two column names, not an expression.
    formula = formula.replace("size - incidence", "failures")
    if formula.startswith(("use ~", "r2 ~")):  # glmm takes a numeric response only
        formula = formula.replace(" ~", "01 ~", 1)
    fit = glmm.fit(frame, formula, family=family, link=link, nagq=nagq,
                   satterthwaite=False, wald_se="rx")
    return float(fit.loglik), bool(fit.converged)


def fit_statsmodels(frame, case):
    from statsmodels.genmod.bayes_mixed_glm import (
        BinomialBayesMixedGLM,
        PoissonBayesMixedGLM,
    )

    dataset, formula, family, _, nagq, _ = CASES[case]
    if dataset == "cbpp":
        raise NotImplementedError("binomial counts (cbind) not supported")
    if nagq > 1:
        raise NotImplementedError("no quadrature")
    # statsmodels: fixed formula + independent variance components (no correlations).
    specs = {
        "grouseticks": ("TICKS ~ YEAR + HEIGHT",
                        {"BROOD": "0 + C(BROOD)", "INDEX": "0 + C(INDEX)",
                         "LOCATION": "0 + C(LOCATION)"}),
        "Contraception": ("use01 ~ age + I(age**2) + urban + livch",
                          {"district": "0 + C(district)", "urban": "0 + C(district):urban"}),
        "VerbAgg": ("r201 ~ Anger + Gender + btype + situ",
                    {"id": "0 + C(id)", "item": "0 + C(item)"}),
    }
    cls = PoissonBayesMixedGLM if family == "poisson" else BinomialBayesMixedGLM
    if dataset.startswith("synthetic:"):
        # Its formula interface builds the dense n x (2 x groups) design (1.6 GB at 100k
        # rows): give the sparse design directly, intercept and slope per group.
        from scipy import sparse

        n, codes = len(frame), frame["g"].cat.codes.to_numpy()
        m = len(frame["g"].cat.categories)
        rows = np.concatenate([np.arange(n), np.arange(n)])
        cols = np.concatenate([codes, m + codes])
        vals = np.concatenate([np.ones(n), frame["x"].to_numpy()])
        exog_vc = sparse.csr_matrix((vals, (rows, cols)), shape=(n, 2 * m))
        exog = np.column_stack([np.ones(n), frame["x"].to_numpy()])
        ident = np.repeat([0, 1], m)
        model = cls(frame["y"].to_numpy(), exog, exog_vc, ident)
    else:
        fixed, vc = specs[dataset]
        model = cls.from_formula(fixed, vc, frame)
    result = model.fit_vb()
    return float("nan"), bool(getattr(result, "converged", True))


PYTHON_TOOLS = {
    "sklmixed": fit_sklmixed,
    "sklmixed-array": fit_sklmixed_array,
    "glmm": fit_glmm,
    "statsmodels": fit_statsmodels,
}


# ----------------------------------------------------------------- one process
def worker(tool, case, repeats, budget):
    """Time one tool on one case in this process; print a JSON line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_memory", HERE / "memory.py")
    memory_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory_module)
    PeakMemory = memory_module.PeakMemory  # noqa: N806

    frame = load(CASES[case][0])
    fit = PYTHON_TOOLS[tool]
    small = "cbpp" if case != "cbpp" else "cbpp_agq25"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # warm-up: imports, first-call costs
            fit(load(CASES[small][0]), small)
        except NotImplementedError:
            pass
        try:
            with PeakMemory() as memory:
                start, cpu = time.perf_counter(), time.process_time()
                loglik, converged = fit(frame, case)
                seconds = [time.perf_counter() - start]
                cpu_seconds = [time.process_time() - cpu]
        except NotImplementedError as why:
            print(json.dumps({"status": "unsupported", "why": str(why)}))
            return
        while len(seconds) < repeats and sum(seconds) < budget:
            start, cpu = time.perf_counter(), time.process_time()
            fit(frame, case)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu)
    print(json.dumps({"status": "ok", "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "peak_mb": memory.peak_mb,
                      "loglik": loglik, "converged": converged}))


def run_lme4(case, repeats, budget, timeout, tmp):
    dataset, formula, family, link, nagq, source = CASES[case]
    if shutil.which("Rscript") is None:
        return {"status": "unsupported", "why": "Rscript not found"}
    factors = []
    if source is None:
        source = str(Path(tmp) / f"{case}.csv")
        load(dataset).to_csv(source, index=False)
        factors = ["g"]
    job = Path(tmp) / f"{case}.json"
    job.write_text(json.dumps({"data": source, "factors": factors, "formula": formula,
                               "family": family, "link": link, "nAGQ": nagq,
                               "repeats": repeats, "budget": budget}))
    return _run(["Rscript", "--vanilla", str(HERE / "glmer.R"), str(job)], timeout)


def _run(command, timeout):
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "why": f"over {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"status": "failed", "why": (done.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(lines[-1])


def input_mb(case):
    frame = load(CASES[case][0])
    return frame.memory_usage(deep=True).sum() / 2**20


# ------------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=None)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of repeats per fit")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", default=str(HERE / "results" / "glmm.json"))
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker, args.repeats, args.budget)
    cases = args.cases.split(",") if args.cases else (QUICK if args.quick else list(CASES))
    tools = args.tools.split(",")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            size = input_mb(case)
            for tool in tools:
                if tool == "lme4":
                    out = run_lme4(case, args.repeats, args.budget, args.timeout, tmp)
                else:
                    out = _run([sys.executable, __file__, "--worker", tool, case,
                                "--repeats", str(args.repeats), "--budget", str(args.budget)],
                               args.timeout)
                row = {"case": case, "tool": tool, "input_mb": size, **out}
                rows.append(row)
                print(format_row(row), flush=True)
    meta = {"load_average_before": load_before, "load_average_after": os.getloadavg(),
            "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print()
    print(markdown_table(rows, meta))


def format_row(row):
    if row.get("status") != "ok":
        return f"{row['case']:<14} {row['tool']:<15} {row.get('status')}: {row.get('why', '')}"
    return (f"{row['case']:<14} {row['tool']:<15} {np.median(row['seconds']):9.3f} s  "
            f"logLik {row['loglik']:.4f}  peak {row['peak_mb'] or float('nan'):8.1f} MiB")


def markdown_table(rows, meta):
    """The results as a Markdown table, one row per case and tool."""
    lines = [
        f"Load average {meta['load_average_before'][0]:.1f} before, "
        f"{meta['load_average_after'][0]:.1f} after ({meta['cpus']} cores, shared).",
        "",
        "| case | tool | seconds (median) | CPU seconds | logLik | peak MiB | input MiB | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"| {row['case']} | {row['tool']} | | | | | {row['input_mb']:.1f} | "
                         f"{row.get('status')}: {row.get('why', '')} |")
            continue
        loglik = "n/a" if row["loglik"] is None or np.isnan(row["loglik"]) else f"{row['loglik']:.4f}"
        peak = "" if row.get("peak_mb") is None else f"{row['peak_mb']:.1f}"
        note = "" if row.get("converged", True) else "not converged (tool's flag)"
        cpu = f"{np.median(row['cpu_seconds']):.4f}" if row.get("cpu_seconds") else ""
        lines.append(f"| {row['case']} | {row['tool']} | {np.median(row['seconds']):.4f} | "
                     f"{cpu} | {loglik} | {peak} | {row['input_mb']:.1f} | {note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
