"""Benchmark sklmixed against lme4, statsmodels, glmm and mixedlm.

Usage::

    python benchmarks/run.py [--cases exam,single,crossed,nested] [--quick]
                             [--tools lme4,sklmixed,...] [--json out.json]

For every data set of the chosen cases (``cases.py``), each tool runs in a fresh
process (``worker.py`` for Python tools, ``lme4.R`` through ``Rscript`` for lme4)
that fits every model of the data set: repeated fits, the median wall-clock time,
the peak memory of a fit (``memory.py``), the log-likelihood and the number of
objective evaluations. A tool that is missing, fails, cannot fit a model or runs
past the time-out gets a row saying so. The table is printed as each data set
finishes, and written as JSON with the environment at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, build_case  # noqa: E402
from runners import RUNNERS  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    """How hard to measure.

    Attributes
    ----------
    repeats : int
        Most fits per model (the median time is reported).
    budget : float
        Seconds per model after which no further repeat starts.
    timeout : float
        Seconds one measurement (or a tool's start-up) may take before its process
        is killed and the row says "timeout".
    """

    repeats: int
    budget: float
    timeout: float


QUICK = Settings(repeats=3, budget=2.0, timeout=20.0)
FULL = Settings(repeats=7, budget=60.0, timeout=600.0)

COLUMNS = ["case", "model", "rows", "levels", "tool", "seconds", "reps", "peak MB",
           "logLik", "dlogLik vs lme4", "n eval", "s/eval", "note"]


# ----------------------------------------------------------------------------- data files
def write_data(problem, workdir, csv):
    """Write a problem's data (and prediction data) where the tool processes read them.

    Parameters
    ----------
    problem : cases.Problem
    workdir : Path
    csv : bool
        Also write CSV files (for lme4).

    Returns
    -------
    dict
        ``data`` and ``predict_data`` (pickles), ``csv`` and ``predict_csv``.
    """
    stem = problem.dataset.name.replace(" ", "_").replace(",", "")
    paths = {"data": None, "predict_data": None, "csv": None, "predict_csv": None}
    for key, dataset in [("data", problem.dataset), ("predict_data", problem.predict)]:
        if dataset is None:
            continue
        path = workdir / f"{stem}-{key}"
        dataset.frame.to_pickle(path.with_suffix(".pkl"))
        paths[key] = str(path.with_suffix(".pkl"))
        if csv:
            _write_csv(dataset.frame, path.with_suffix(".csv"))
            paths["csv" if key == "data" else "predict_csv"] = str(path.with_suffix(".csv"))
    return paths


def _write_csv(frame, path):
    """CSV with category labels, through polars when installed (an order faster)."""
    try:
        import polars as pl
    except ImportError:
        frame.to_csv(path, index=False)
        return
    columns = {
        c: frame[c].astype(str).to_numpy() if isinstance(frame[c].dtype, pd.CategoricalDtype)
        else frame[c].to_numpy()
        for c in frame.columns
    }
    pl.DataFrame(columns).write_csv(path)


# ----------------------------------------------------------------------------- processes
def _read_lines(stream, lines):
    """Put each line of ``stream`` on the queue ``lines``, then None (run in a thread)."""
    for line in stream:
        lines.put(line)
    lines.put(None)


#: Environment variables that cap the thread pools of BLAS, OpenMP and Rust's rayon.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "RAYON_NUM_THREADS")


def _follow(proc, timeout):
    """Collect the JSON events of a tool process until it ends or overruns.

    Each measurement (from its ``start`` event), and the start-up before the first,
    may take ``timeout`` seconds; past that the process group is killed.

    Parameters
    ----------
    proc : subprocess.Popen
        Started in a new session, stdout a text pipe.
    timeout : float
        Seconds.

    Returns
    -------
    events : list of dict
        Events in order (``hello``, ``start``, ``result``).
    killed : bool
        Whether the process overran and was killed.
    running : tuple or None
        ``(model, kind)`` of the measurement in progress when it was killed, if any.
    """
    lines = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    events, running, deadline = [], None, time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this module started
            proc.wait()
            return events, True, running
        if line is None:
            proc.wait()
            return events, False, None
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a stray line printed by a tool
        events.append(event)
        if event.get("event") == "start":
            running, deadline = (event["model"], event["kind"]), time.monotonic() + timeout
        elif event.get("event") == "result":
            running = None


def run_tool(runner, job, workdir, timeout, threads=None):
    """Run one tool on one data set in its own process(es), with time-outs.

    The process reports each measurement as JSON lines (see ``worker.py``). When a
    measurement runs past ``timeout`` the process is killed, a "timeout" result is
    recorded and a new process continues with the remaining models.

    Parameters
    ----------
    runner : runners.Runner
    job : dict
        The job without the tool name; ``job["models"]`` lists model dicts.
    workdir : Path
        Where the job file and the process's stderr go.
    timeout : float
        Seconds.
    threads : int, default=None
        Cap on the thread pools of the process (:data:`THREAD_VARIABLES`); None
        leaves each tool's default.

    Returns
    -------
    version : str or None
        The tool's version, as its process reported it.
    results : list of dict
        One ``result`` event per measurement (``kind`` ``fit`` or ``predict``).
    """
    results, version = [], None
    remaining = list(job["models"])
    env = os.environ | {v: str(threads) for v in THREAD_VARIABLES if threads is not None}
    while remaining:
        job_path = workdir / f"job-{runner.name}.json"
        job_path.write_text(json.dumps(job | {"tool": runner.name, "models": remaining}))
        err_path = workdir / f"stderr-{runner.name}.txt"
        with open(err_path, "w") as err:
            proc = subprocess.Popen(runner.command(job_path), stdout=subprocess.PIPE,
                                    stderr=err, text=True, start_new_session=True, env=env)
        events, killed, running = _follow(proc, timeout)
        version = next((e["version"] for e in events if e.get("event") == "hello"), version)
        results += [e for e in events if e.get("event") == "result"]
        reported = {r["model"] for r in results}
        if running is not None:  # killed during a measurement: go on with the next model
            results.append({"model": running[0], "kind": running[1], "status": "timeout",
                            "reason": f"> {timeout:g} s"})
            reported.add(running[0])
        else:  # the process ended (or was killed while starting): nothing more will come
            why = (f"start-up took > {timeout:g} s" if killed
                   else f"process exited with {proc.returncode}: {_tail(err_path)}")
            results += [{"model": m["name"], "kind": "fit", "status": "failed", "reason": why}
                        for m in remaining if m["name"] not in reported]
            break
        remaining = [m for m in remaining if m["name"] not in reported]
    return version, results


def _tail(path, n=200):
    """Last line of a file that says something, at most ``n`` characters."""
    text = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    return text[-1][-n:] if text else "(no output)"


# ----------------------------------------------------------------------------- rows
def _levels(dataset, model):
    """Level counts of a model's grouping factors: ``a+b`` crossed, ``a/b`` nested."""
    counts = [str(dataset.n_levels[g]) for g in model.groups]
    return ("/" if model.nested else "+").join(counts)


def make_row(problem, model, tool, version, result):
    """One table row (a dict with the JSON fields) from a measurement."""
    predict = result["kind"] == "predict"
    frame = problem.predict if predict else problem.dataset
    seconds = result.get("seconds") or []
    return {
        "case": problem.case,
        "data": problem.dataset.name,
        "model": model.name + (" predict" if predict else ""),
        "formula": model.formula,
        "reml": model.reml,
        "kind": result["kind"],
        "rows": len(frame.frame),
        "levels": _levels(problem.dataset, model),
        "tool": tool,
        "version": version,
        "status": result["status"],
        "reason": result.get("reason"),
        "seconds": statistics.median(seconds) if seconds else None,
        "seconds_all": seconds,
        "peak_mb": result.get("peak_mb"),
        "memory_method": result.get("memory_method"),
        "loglik": result.get("loglik"),
        "dloglik_vs_lme4": None,
        "n_eval": result.get("n_eval"),
        "s_per_eval": result.get("s_per_eval"),
        "converged": result.get("converged"),
        "warnings": result.get("warnings") or [],
    }


def compare_to_lme4(rows):
    """Fill ``dloglik_vs_lme4`` (logLik minus lme4's for the same data and model)."""
    reference = {(r["data"], r["model"]): r["loglik"] for r in rows
                 if r["tool"] == "lme4" and r["loglik"] is not None}
    for r in rows:
        ref = reference.get((r["data"], r["model"]))
        if ref is not None and r["loglik"] is not None:
            r["dloglik_vs_lme4"] = r["loglik"] - ref


def _note(row):
    """Status and reason of a row without numbers; else non-convergence and warnings.

    A warning is shown as its category (``"SingularFitWarning"``) when it has one,
    as its text otherwise (R's warnings), with the number of further warnings.
    """
    if row["status"] != "ok":
        return f"{row['status']}: {row['reason']}"
    notes = [] if row["converged"] in (True, None) else ["not converged"]
    shown = []
    for w in row["warnings"]:
        head, _, text = w.partition(": ")
        label = head if head.endswith(("Warning", "Error")) else text or head
        if label not in shown:
            shown.append(label)
    if shown:
        notes.append(shown[0] + (f" (+{len(shown) - 1} more)" if len(shown) > 1 else ""))
    return ", ".join(notes)


def _fmt(value, spec):
    """``format(value, spec)``, or an empty cell for None."""
    return "" if value is None else format(value, spec)


def format_table(rows):
    """The rows as an aligned text table (:data:`COLUMNS`)."""
    cells = [COLUMNS]
    for r in rows:
        cells.append([
            r["case"], r["model"], f"{r['rows']:,}", r["levels"], r["tool"],
            _fmt(r["seconds"], ".4g"), str(len(r["seconds_all"]) or ""),
            _fmt(r["peak_mb"], ".1f"), _fmt(r["loglik"], ".3f"),
            _fmt(r["dloglik_vs_lme4"], ".2e"), _fmt(r["n_eval"], "d"),
            _fmt(r["s_per_eval"], ".3g"), _note(r)[:90],
        ])
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    right = {2, 5, 6, 7, 8, 9, 10, 11}
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def benchmark_problem(problem, tools, settings, workdir, threads=None):
    """All rows of one problem: every tool on every model.

    Parameters
    ----------
    problem : cases.Problem
    tools : list of str
        Names in :data:`runners.RUNNERS`.
    settings : Settings
    workdir : Path
        Where data and job files are written.
    threads : int, default=None
        Thread cap passed to :func:`run_tool`.

    Returns
    -------
    list of dict
        Table rows (see :func:`make_row`), models in order, fits before predictions.
    """
    csv = any(RUNNERS[t].needs_csv and RUNNERS[t].missing() is None for t in tools)
    start = time.perf_counter()
    paths = write_data(problem, workdir, csv)
    print(f"  data written: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    job = paths | {
        "factors": list(problem.dataset.factors),
        "models": [asdict(m) for m in problem.models],
        "repeats": settings.repeats,
        "budget": settings.budget,
        "per_eval": problem.per_eval,
    }
    rows = []
    by_name = {m.name: m for m in problem.models}
    for tool in tools:
        runner = RUNNERS[tool]
        reason = runner.missing()
        if reason is not None:
            results, version = [{"model": m.name, "kind": "fit", "status": "missing",
                                 "reason": reason} for m in problem.models], None
        else:
            start = time.perf_counter()
            version, results = run_tool(runner, job, workdir, settings.timeout, threads)
            print(f"  {tool}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        rows += [make_row(problem, by_name[r["model"]], tool, version, r) for r in results]
    order = {m.name: i for i, m in enumerate(problem.models)}
    rows.sort(key=lambda r: (order[r["model"].removesuffix(" predict")], r["kind"] == "predict"))
    compare_to_lme4(rows)
    return rows


_LOAD_AT_START = os.getloadavg()


def environment():
    """Versions and hardware, for the JSON file."""
    from threadpoolctl import threadpool_info

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": _LOAD_AT_START,
        "blas": [{k: p.get(k) for k in ("internal_api", "version", "num_threads")}
                 for p in threadpool_info()],
    }


def parse_args(argv=None):
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated cases (default: all): " + ", ".join(CASES))
    parser.add_argument("--tools", default=",".join(RUNNERS),
                        help="comma-separated tools (default: all): " + ", ".join(RUNNERS))
    parser.add_argument("--quick", action="store_true",
                        help="no 1M-row fit, a quarter-size crossed case, at most 3 repeats, "
                             "20 s time-out (under two minutes)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json",
                        help="results file (default: benchmarks/results/latest.json)")
    parser.add_argument("--repeats", type=int, help="most fits per model")
    parser.add_argument("--timeout", type=float, help="seconds per measurement")
    parser.add_argument("--threads", type=int,
                        help="cap BLAS/OpenMP/rayon threads of every tool (default: their own)")
    args = parser.parse_args(argv)
    for option, known in [("cases", CASES), ("tools", RUNNERS)]:
        chosen = getattr(args, option).split(",")
        unknown = [c for c in chosen if c not in known]
        if unknown:
            parser.error(f"unknown {option}: {', '.join(unknown)}")
        setattr(args, option, [c for c in known if c in chosen])  # table order
    return args


def main(argv=None):
    """Run the benchmarks and write the table; see the module docstring."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    overrides = {k: v for k, v in [("repeats", args.repeats), ("timeout", args.timeout)]
                 if v is not None}
    settings = Settings(**(asdict(settings) | overrides))
    if _LOAD_AT_START[0] > 0.5:
        print(f"note: load average {_LOAD_AT_START[0]:.1f} at start; other processes "
              "may slow the fits down", file=sys.stderr)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sklmixed-bench-") as tmp:
        for case in args.cases:
            for problem in build_case(case, args.quick):
                print(f"\n== {problem.case}: {problem.dataset.name}", flush=True)
                new = benchmark_problem(problem, args.tools, settings, Path(tmp), args.threads)
                print(format_table(new), flush=True)
                rows += new
    total = time.perf_counter() - started
    print(f"\n== all ({total:.0f} s)\n" + format_table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "settings": asdict(settings) | {"quick": args.quick, "cases": args.cases,
                                        "tools": args.tools, "threads": args.threads},
        "environment": environment(),
        "total_seconds": total,
        "rows": rows,
    }, indent=1))
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
