"""Time and peak memory of ``predict`` with standard errors on 1,000,000 rows.

The ``single`` case of ``run.py`` (one factor, 10,000 levels, a correlated random
intercept and slopes on ``x1`` and ``x2``, ten fixed features) is fitted once, then
``predict`` is timed on 1,000,000 new rows of the same levels, interleaved in one
process: without standard errors, with them (``return_std=True``, seen levels), with
them for rows of unseen levels, ``predict_interval(kind="observation")``, and after
``add_groups`` has added 100 new levels (5 rows each) that the rows then use. Each
measurement reports the median of its repeats and the peak memory of its first run
(``memory.PeakMemory``: above what the process held before the call).

::

    python benchmarks/predict_std.py                  # 1,000,000 rows, 10,000 levels
    python benchmarks/predict_std.py --rows 200000 --repeats 3
    python benchmarks/predict_std.py --api formula    # sklmixed.lmer on the DataFrame

The machine the numbers come from is usually shared: medians of several runs, and
the ratios within one run, are what to read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data
from memory import PeakMemory

from sklmixed import MixedLMRegressor, lmer

FEATURES = [f"x{j}" for j in range(1, 11)]


def _fit(frame, api):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if api == "formula":
            formula = "y ~ " + " + ".join(FEATURES) + " + (1 + x1 + x2 | g)"
            return lmer(formula, data=frame)
        model = MixedLMRegressor(group="g", random_effects=["x1", "x2"])
        return model.fit(frame[FEATURES + ["g"]], frame["y"])


def _inputs(frame, api):
    return frame if api == "formula" else frame[FEATURES + ["g"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows predicted")
    parser.add_argument("--levels", type=int, default=10_000)
    parser.add_argument("--fit-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--api", choices=["array", "formula"], default="array")
    args = parser.parse_args(argv)

    train = data.single(args.fit_rows, args.levels).frame
    start = time.perf_counter()
    model = _fit(train, args.api)
    fit_seconds = time.perf_counter() - start
    new = data.single(args.rows, args.levels, seed=1).frame
    X = _inputs(new, args.api)
    unseen = new.assign(g=new["g"].cat.rename_categories(lambda c: f"new-{c}"))
    X_unseen = _inputs(unseen, args.api)
    # 100 new levels with 5 labelled rows each, then rows that use them.
    labelled = data.single(500, 100, seed=2).frame
    labelled["g"] = labelled["g"].cat.rename_categories(lambda c: f"added-{c}")
    added = model.add_groups(_inputs(labelled, args.api), labelled["y"])
    X_added = _inputs(labelled.sample(args.rows, replace=True, random_state=0), args.api)

    cases = [
        ("predict", lambda: model.predict(X)),
        ("predict, return_std=True", lambda: model.predict(X, return_std=True)),
        ("  same, unseen levels", lambda: model.predict(X_unseen, return_std=True)),
        ("  same, random_effects='none'", lambda: model.predict(X, random_effects="none", return_std=True)),
        ("predict_interval(kind='observation')", lambda: model.predict_interval(X, kind="observation")),
        ("add_groups (100 levels, 500 rows)", lambda: model.add_groups(_inputs(labelled, args.api), labelled["y"])),
        ("predict, return_std=True, added levels", lambda: added.predict(X_added, return_std=True)),
    ]  # fmt: skip
    # Untimed warm-up: the joint covariance at the optimum is built on first use.
    model.predict(X.iloc[:10], return_std=True)
    times = {name: [] for name, _ in cases}
    memory = {}
    for repeat in range(args.repeats + 1):
        for name, call in cases:  # interleaved: every case sees the same load
            if repeat == 0:
                with PeakMemory() as mem:
                    call()
                memory[name] = mem.peak_mb
                continue
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)

    print(
        f"fit: {args.fit_rows:,} rows x {args.levels:,} levels ({args.api}) in {fit_seconds:.2f} s; "
        f"predict on {args.rows:,} rows; median of {args.repeats} (shared machine: "
        "load varies)\n"
    )
    base = statistics.median(times["predict"])
    print(f"| {'call':<40} | seconds | vs predict | peak MB |")
    print(f"| {'-' * 40} | ------: | ---------: | ------: |")
    for name, _ in cases:
        t = statistics.median(times[name])
        print(f"| {name:<40} | {t:7.3f} | {t / base:10.1f} | {memory[name]:7.0f} |")


if __name__ == "__main__":
    main()
