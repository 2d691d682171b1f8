"""Crossed and multi-factor fits: sklmixed against glmm, mixedlm and lme4.

Usage::

    python benchmarks/crossed.py [--cases insteval,movielens,three] [--rounds 3]
                                 [--tools sklmixed,glmm,mixedlm,lme4] [--json out.json]

The cases:

``insteval``
    lme4's ``InstEval`` (73,421 ratings of 1,128 lecturers ``d`` by 2,972 students
    ``s``), written by ``insteval.R`` when ``Rscript`` is on the PATH, otherwise a
    seeded data set of the same shape (:func:`insteval_like`);
    ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)``, REML.
``movielens``
    A seeded data set shaped like MovieLens-1M (:func:`movielens_like`: 1,000,209
    ratings, 6,040 users, 3,706 items, heavy-tailed activity and popularity);
    ``rating ~ 1 + (1 | user) + (1 | item)``, REML.
``three``
    Three crossed factors (:func:`three_factor`: 200,000 rows, 4,000 subjects,
    1,500 items, 400 sessions); ``y ~ x + (1 | subject) + (1 | item) + (1 | session)``,
    REML.

Each tool fits each case in a fresh process (``worker.py``, ``lme4.R``: one fit
per process, whose peak memory and time are recorded). The tools take turns: round
1 runs every tool once, then round 2, and so on, so that each sees the same load
on a shared machine; the table reports the best time over the rounds and the
memory of the first. lme4 runs once on the cases where one fit takes minutes
(``--lme4-rounds``). The machine's load average is printed before every round.
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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import Model, Problem  # noqa: E402
from data import Dataset, _labels, _used_levels_only  # noqa: E402
from run import compare_to_lme4, environment, format_table, make_row, run_tool, write_data  # noqa: E402
from runners import RUNNERS  # noqa: E402

HERE = Path(__file__).resolve().parent
TOOLS = ("sklmixed", "glmm", "mixedlm", "lme4")


# ----------------------------------------------------------------------------- data
def insteval(workdir) -> Dataset:
    """lme4's ``InstEval`` through ``insteval.R``, or :func:`insteval_like` without R.

    ``service`` is a factor with levels ``0`` and ``1``, as in lme4; ``dept:service``
    is a grouping factor of 28 levels.
    """
    if shutil.which("Rscript") is None:
        return insteval_like()
    path = Path(workdir) / "insteval.csv"
    subprocess.run(["Rscript", "--vanilla", str(HERE / "insteval.R"), str(path)], check=True)
    frame = pd.read_csv(path, dtype={"s": str, "d": str, "dept": str, "service": str})
    for f in ("s", "d", "dept", "service"):
        frame[f] = pd.Categorical(frame[f])
    return Dataset("InstEval", frame, ("s", "d", "dept", "service"))


def insteval_like(seed: int = 0) -> Dataset:
    """A seeded data set of ``InstEval``'s shape (when R is not available).

    73,421 ratings (integers 1 to 5) of 1,128 lecturers by 2,972 students; each
    lecturer in one of 14 departments; ``service`` (a factor, ``1`` in 43% of the
    rows); numbers
    of ratings per student and per lecturer skewed as in InstEval (gamma and
    log-normal weights). Standard deviations: students 0.32, lecturers 0.52,
    department × service 0.07, residual 1.18.
    """
    rng = np.random.default_rng([seed, 17, 1])
    n, n_s, n_d, n_dept = 73_421, 2_972, 1_128, 14
    p_s = rng.gamma(2.0, size=n_s)
    p_d = rng.lognormal(0.0, 1.0, size=n_d)
    s = rng.choice(n_s, size=n, p=p_s / p_s.sum())
    d = rng.choice(n_d, size=n, p=p_d / p_d.sum())
    dept = rng.integers(0, n_dept, size=n_d)[d]
    service = (rng.random(n) < 0.43).astype(float)
    eta = (
        3.2
        - 0.07 * service
        + 0.32 * rng.standard_normal(n_s)[s]
        + 0.52 * rng.standard_normal(n_d)[d]
        + 0.07 * rng.standard_normal((n_dept, 2))[dept, service.astype(int)]
        + 1.18 * rng.standard_normal(n)
    )
    frame = pd.DataFrame({"y": np.clip(np.round(eta), 1, 5)})
    frame["service"] = pd.Categorical.from_codes(service.astype(int), categories=["0", "1"])
    frame["s"] = _labels("s", s, n_s)
    frame["d"] = _labels("d", d, n_d)
    frame["dept"] = _labels("dept", dept, n_dept)
    factors = ("s", "d", "dept", "service")
    return Dataset("InstEval-like", _used_levels_only(frame, factors), factors)


def movielens_like(
    n_rows: int = 1_000_209, n_users: int = 6_040, n_items: int = 3_706, *, seed: int = 0
) -> Dataset:
    """A seeded data set shaped like MovieLens-1M.

    Every user rates at least 20 distinct items (as in MovieLens-1M); the numbers of
    ratings per user are log-normal (a long tail of users with over a thousand) and
    the items each user rates are drawn without replacement with Zipf-like popularity
    (the most popular items are rated by about half of the users). Ratings are
    integers 1 to 5: ``round(3.58 + user + item + e)`` clipped, with standard
    deviations 0.45 (users), 0.50 (items) and 0.90 (residual).

    Parameters
    ----------
    n_rows, n_users, n_items : int
        Size (defaults: MovieLens-1M's).
    seed : int, default=0

    Returns
    -------
    Dataset
        Columns ``rating, user, item``; rows grouped by user.
    """
    rng = np.random.default_rng([seed, 17, 2])
    # Ratings per user: 20 + log-normal, scaled to n_rows in total, at most n_items / 2.
    extra = rng.lognormal(0.0, 1.1, size=n_users)
    counts = 20 + np.floor(extra / extra.sum() * (n_rows - 20 * n_users)).astype(np.int64)
    counts = np.minimum(counts, n_items // 2)
    short = n_rows - counts.sum()
    while short > 0:  # hand out the rounding remainder to users below the cap
        room = np.flatnonzero(counts < n_items // 2)
        take = rng.choice(room, size=min(short, room.size), replace=False)
        counts[take] += 1
        short = n_rows - counts.sum()
    # Popularity: Zipf-like weights over a random order of the items.
    weight = 1.0 / (np.arange(1, n_items + 1) + 10.0) ** 0.9
    log_weight = np.log(weight[rng.permutation(n_items)])
    items = np.empty(n_rows, dtype=np.int64)
    start = 0
    for u, k in enumerate(counts):
        # Weighted sampling without replacement: the k largest Gumbel-perturbed keys.
        keys = log_weight + rng.gumbel(size=n_items)
        items[start : start + k] = np.argpartition(keys, -k)[-k:]
        start += k
    users = np.repeat(np.arange(n_users), counts)
    eta = (
        3.58
        + 0.45 * rng.standard_normal(n_users)[users]
        + 0.50 * rng.standard_normal(n_items)[items]
        + 0.90 * rng.standard_normal(n_rows)
    )
    frame = pd.DataFrame({"rating": np.clip(np.round(eta), 1, 5)})
    frame["user"] = _labels("u", users, n_users)
    frame["item"] = _labels("i", items, n_items)
    frame = _used_levels_only(frame, ["user", "item"])
    return Dataset(f"MovieLens-like {n_rows:,}", frame, ("user", "item"))


def three_factor(
    n_rows: int = 200_000,
    n_subjects: int = 4_000,
    n_items: int = 1_500,
    n_sessions: int = 400,
    *,
    seed: int = 0,
) -> Dataset:
    """Three crossed factors: subjects × items × sessions, with one covariate.

    Subjects, items and sessions are drawn independently for each row (subjects
    uniformly, items and sessions with log-normal weights); ``y = 1 + 0.3 x +
    subject + item + session + e`` with standard deviations 0.6, 0.4, 0.25 and 1.
    """
    rng = np.random.default_rng([seed, 17, 3])
    subject = rng.integers(0, n_subjects, size=n_rows)
    p_item = rng.lognormal(0.0, 0.8, size=n_items)
    p_session = rng.lognormal(0.0, 0.5, size=n_sessions)
    item = rng.choice(n_items, size=n_rows, p=p_item / p_item.sum())
    session = rng.choice(n_sessions, size=n_rows, p=p_session / p_session.sum())
    x = rng.standard_normal(n_rows)
    y = (
        1.0
        + 0.3 * x
        + 0.6 * rng.standard_normal(n_subjects)[subject]
        + 0.4 * rng.standard_normal(n_items)[item]
        + 0.25 * rng.standard_normal(n_sessions)[session]
        + rng.standard_normal(n_rows)
    )
    frame = pd.DataFrame({"y": y, "x": x})
    frame["subject"] = _labels("s", subject, n_subjects)
    frame["item"] = _labels("i", item, n_items)
    frame["session"] = _labels("t", session, n_sessions)
    factors = ("subject", "item", "session")
    return Dataset(f"three crossed {n_rows:,}", _used_levels_only(frame, factors), factors)


# ----------------------------------------------------------------------------- cases
def problems(names, workdir):
    """The chosen cases as :class:`cases.Problem` (data built here, seeded)."""
    out = []
    if "insteval" in names:
        model = Model("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", True,
                      "y", ("service",), ("s", "d", "dept"))
        out.append(Problem("insteval", insteval(workdir), (model,)))
    if "movielens" in names:
        model = Model("MovieLens", "rating ~ 1 + (1 | user) + (1 | item)", True, "rating",
                      (), ("user", "item"))
        out.append(Problem("movielens", movielens_like(), (model,)))
    if "three" in names:
        model = Model("three crossed", "y ~ x + (1 | subject) + (1 | item) + (1 | session)",
                      True, "y", ("x",), ("subject", "item", "session"))
        out.append(Problem("three", three_factor(), (model,)))
    return out


# ----------------------------------------------------------------------------- runs
def _input_mb(frame):
    """Memory of the input frame, MiB (what "peak under twice the input" refers to)."""
    return float(frame.memory_usage(deep=True).sum()) / 2**20


def interleaved(problem, tools, rounds, lme4_rounds, workdir, timeout):
    """Every tool once per round, in turn, each fit in a fresh process.

    Returns
    -------
    list of dict
        One row per tool (see ``run.make_row``): the best time over the rounds, the
        peak memory of the first round, and ``loads``, the load average before each
        round.
    """
    needs_csv = "lme4" in tools and RUNNERS["lme4"].missing() is None
    paths = write_data(problem, workdir, needs_csv)
    model = problem.models[0]
    job = paths | {
        "factors": list(problem.dataset.factors),
        "models": [asdict(model)],
        "repeats": 1,
        "budget": 0.0,
        "per_eval": False,
    }
    results = {tool: [] for tool in tools}
    versions, loads = {}, []
    for r in range(rounds):
        loads.append(os.getloadavg()[0])
        print(f"  round {r + 1}: load average {loads[-1]:.2f}", file=sys.stderr, flush=True)
        for tool in tools:
            runner = RUNNERS[tool]
            if runner.missing() is not None or (tool == "lme4" and r >= lme4_rounds):
                continue
            if results[tool] and results[tool][-1]["status"] != "ok":
                continue  # a tool that failed or timed out is not tried again
            version, out = run_tool(runner, job, workdir, timeout)
            versions[tool] = version
            results[tool] += [o for o in out if o["kind"] == "fit"]
            last = results[tool][-1]
            print(f"    {tool}: {last.get('seconds', [None])[0]} s, {last.get('peak_mb')} MB, "
                  f"{last['status']}", file=sys.stderr, flush=True)
    rows = []
    for tool in tools:
        runner = RUNNERS[tool]
        if not results[tool]:
            reason = runner.missing() or "not run"
            result = {"model": model.name, "kind": "fit", "status": "missing", "reason": reason}
        else:
            ok = [o for o in results[tool] if o["status"] == "ok"]
            result = dict(ok[0] if ok else results[tool][-1])
            if ok:
                result["seconds"] = [min(s for o in ok for s in o["seconds"])]
        row = make_row(problem, model, tool, versions.get(tool), result)
        row["rounds"] = len(results[tool])
        row["loads"] = loads
        row["input_mb"] = _input_mb(problem.dataset.frame)
        rows.append(row)
    compare_to_lme4(rows)
    return rows


def parse_args(argv=None):
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="insteval,movielens,three")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--rounds", type=int, default=3, help="fits per tool, interleaved")
    parser.add_argument("--lme4-rounds", type=int, default=None,
                        help="rounds for lme4 (default: all on insteval and three, 1 on movielens)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per fit")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "crossed.json")
    args = parser.parse_args(argv)
    args.cases = args.cases.split(",")
    args.tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in args.tools if t not in RUNNERS]
    if unknown:
        parser.error(f"unknown tools: {', '.join(unknown)}")
    return args


def main(argv=None):
    """Run the interleaved benchmark and print the table; see the module docstring."""
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sklmixed-crossed-") as tmp:
        for problem in problems(args.cases, tmp):
            print(f"\n== {problem.case}: {problem.dataset.name}", flush=True)
            lme4_rounds = args.lme4_rounds
            if lme4_rounds is None:
                lme4_rounds = 1 if problem.case == "movielens" else args.rounds
            new = interleaved(problem, args.tools, args.rounds, lme4_rounds, Path(tmp),
                              args.timeout)
            print(format_table(new), flush=True)
            print(f"input {new[0]['input_mb']:.1f} MB; load average before each round: "
                  + ", ".join(f"{x:.2f}" for x in new[0]["loads"]), flush=True)
            rows += new
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)},
                                     "environment": environment(), "rows": rows}, indent=1))
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
