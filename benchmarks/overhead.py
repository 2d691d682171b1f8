"""Per-fit Python overhead on small models: where a fit's time goes besides θ.

Wraps the steps of the road ``MixedLMRegressor.fit`` composes (design, sufficient
statistics, criterion, optimizer, solution, result, fitted attributes) with
``perf_counter`` and fits the Exam models many times; each stage reports its minimum
(and median) time per fit, which is robust to the noise of a shared machine.
``overhead`` is the fit's time outside the optimizer (``_optimize_theta``), the
reduction (``reduce``) and the design.

::

    python benchmarks/overhead.py               # stages of the largest Exam model
    python benchmarks/overhead.py --all         # plus the total of the five models
    python benchmarks/overhead.py --repeats 500
    python benchmarks/overhead.py --clock thread  # CPU time of the main thread
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sklmixed
from sklmixed import MixedLMRegressor, lmer
from sklmixed._core import criterion, fit
from sklmixed.datasets import load_exam
from sklmixed.design import base
from sklmixed.estimators import _base, linear

EXAM_MODELS = [
    ("normexam ~ 1 + (1 | school)", True),
    ("normexam ~ standLRT + (1 | school)", True),
    ("normexam ~ standLRT + (standLRT | school)", False),
    ("normexam ~ standLRT + schavg + (1 + standLRT | school)", True),
    ("normexam ~ standLRT * schavg + (1 + standLRT | school)", True),
]

# (module or class, attribute): the stages timed inside fit.
STAGES = [
    (MixedLMRegressor, "_validate_X"),
    (MixedLMRegressor, "_make_design"),
    (base.Design, "fit_transform"),
    (linear, "reduce"),
    (linear, "check_residual_variation"),
    (criterion.Criterion, "__init__"),
    (fit, "_theta_start"),
    (fit, "_optimize_theta"),
    (criterion.Criterion, "solve"),
    (linear, "fit_lmm"),
    (linear, "linear_predictor"),
    (linear, "build_result"),
    (_base.MixedModelMixin, "_set_fitted_attributes"),
]
EXCLUDED = ("_optimize_theta", "reduce", "fit_transform")

_times: dict[str, float] = defaultdict(float)
# perf_counter by default; --clock thread uses the main thread's CPU time, which a
# busy machine's other processes do not inflate (but each reading costs ~1 µs).
_clock = time.perf_counter


def _timed(name, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        start = _clock()
        try:
            return func(*args, **kwargs)
        finally:
            _times[name] += _clock() - start

    return wrapper


def instrument():
    for owner, name in STAGES:
        if name in vars(owner):
            setattr(owner, name, _timed(name, getattr(owner, name)))


def stage_times(fit, repeats):
    """Per-stage times (ms) of ``repeats`` calls of ``fit``."""
    per_stage = defaultdict(list)
    for _ in range(repeats):
        _times.clear()
        start = _clock()
        fit()
        total = _clock() - start
        stages = dict(_times)
        # fit_lmm holds the start, the optimizer and the solution: report its rest.
        inner = ("_theta_start", "_optimize_theta", "solve")
        stages["fit_lmm"] -= sum(stages.get(k, 0.0) for k in inner)
        stages["fit_lmm (rest)"] = stages.pop("fit_lmm")
        stages["other"] = total - sum(stages.values())
        stages["overhead"] = total - sum(stages.get(k, 0.0) for k in EXCLUDED)
        stages["total"] = total
        for key, value in stages.items():
            per_stage[key].append(value * 1e3)
    return per_stage


def report(title, per_stage):
    print(f"\n{title}")
    print(f"  {'stage':<32}{'min ms':>9}{'median ms':>11}")
    for key, values in per_stage.items():
        if key in ("overhead", "total"):
            continue
        print(f"  {key:<32}{min(values):>9.3f}{statistics.median(values):>11.3f}")
    for key in ("overhead", "total"):
        values = per_stage[key]
        print(f"  {key:<32}{min(values):>9.3f}{statistics.median(values):>11.3f}")


def total_times(fits, repeats):
    """Min and median time (ms) of each fit, uninstrumented."""
    out = []
    for fit in fits:
        values = []
        for _ in range(repeats):
            start = _clock()
            fit()
            values.append((_clock() - start) * 1e3)
        out.append((min(values), statistics.median(values)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--all", action="store_true", help="also time the five Exam models")
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall")
    args = parser.parse_args()
    global _clock
    if args.clock == "thread":
        _clock = time.thread_time
    print(f"sklmixed from {Path(sklmixed.__file__).parent}")
    warnings.simplefilter("ignore")
    df = load_exam().frame
    formula = EXAM_MODELS[-1][0]
    X_array = df[["standLRT", "schavg", "school"]]
    y_array = df["normexam"]
    model_fits = [functools.partial(lmer, f, df, REML=reml) for f, reml in EXAM_MODELS]
    array_fit = functools.partial(
        MixedLMRegressor(group="school", random_effects=["standLRT"]).fit, X_array, y_array
    )
    for fit in model_fits + [array_fit]:  # warm-up
        fit()

    if args.all:
        totals = total_times(model_fits + [array_fit], args.repeats)
        print("\nTotal fit time, uninstrumented (ms)")
        print(f"  {'model':<58}{'min':>8}{'median':>9}")
        labels = [f"{f} ({'REML' if r else 'ML'})" for f, r in EXAM_MODELS]
        labels.append("array: group=school, random_effects=[standLRT]")
        for label, (lo, med) in zip(labels, totals):
            print(f"  {label:<58}{lo:>8.3f}{med:>9.3f}")
        print(
            f"  {'sum of the five lmer models':<58}{sum(t[0] for t in totals[:5]):>8.3f}"
            f"{sum(t[1] for t in totals[:5]):>9.3f}"
        )

    instrument()
    report(f"lmer({formula!r})", stage_times(model_fits[-1], args.repeats))
    report(
        "MixedLMRegressor(group='school', random_effects=['standLRT'])"
        ".fit(df[['standLRT', 'schavg', 'school']], y)",
        stage_times(array_fit, args.repeats),
    )


if __name__ == "__main__":
    main()
