"""Benchmark one Python tool on one data set, in a process of its own.

Usage: ``python worker.py JOB.json`` (started by ``run.py``). The job names the
tool, the data (a pandas pickle), the models and the repetition settings. The
worker loads the data, warms the tool up on a small problem (imports, first-call
costs), then for each model writes JSON lines to stdout:

``{"event": "start", "model": ..., "kind": "fit"}``
    before each measurement, so ``run.py`` can time it out;
``{"event": "result", "model": ..., "kind": "fit", "status": "ok", ...}``
    the measurement: wall-clock seconds of every repeat, peak memory (see
    ``memory.py``), log-likelihood, evaluations, warnings raised.

With ``predict_data`` in the job, ``predict`` on that frame is measured after each
fit the same way (``kind`` is ``"predict"``). ``lme4.R`` speaks the same protocol.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import Model  # noqa: E402
from data import single  # noqa: E402
from memory import PeakMemory  # noqa: E402
from runners import RUNNERS, Unsupported  # noqa: E402

#: A small problem fitted once, untimed, before the measurements.
WARM_UP_MODEL = Model("warm-up", "y ~ x1 + x2 + (1 + x1 | g)", True, "y", ("x1", "x2"),
                      ("g",), ("x1",))


def emit(**record):
    """Write one JSON line to stdout and flush it."""
    print(json.dumps(record, default=_plain), flush=True)


def _plain(value):
    """JSON form of numpy scalars."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def measure(call, repeats, budget):
    """Time ``call()`` up to ``repeats`` times, within about ``budget`` seconds.

    The first repeat measures memory: garbage is collected first and the peak is
    read around the call (see ``memory.py``); the warnings it raises are recorded.
    The later repeats only time the call, with no collection forced before them, as
    ``timeit`` and R's ``bench::mark`` time code: a full collection right before
    every call empties Python's free lists and the CPU caches, which costs a small
    fit (a few milliseconds) a millisecond that no caller in a loop pays. A fit that
    takes one repeat is timed by the memory run. ``lme4.R`` measures the same way.

    Parameters
    ----------
    call : callable
        The measured call; its result is returned from the last repeat.
    repeats : int
        Most repeats. The first always runs; another runs only if the time spent
        so far plus the median so far stays within ``budget``.
    budget : float
        Seconds.

    Returns
    -------
    out : object
        Result of the last call.
    seconds : list of float
        Wall-clock time of each timed repeat (the memory run's alone when it was
        the only one).
    peak_mb : float
        Peak memory of the first repeat, MiB.
    memory_method : str
        How the peak was measured (``memory.PeakMemory.method``).
    caught : list of str
        Distinct warnings raised, as ``"Category: message"`` (first 120 characters).
    """
    gc.collect()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with PeakMemory() as mem:
            start = time.perf_counter()
            out = call()
            first = time.perf_counter() - start
    caught = list({f"{w.category.__name__}: {str(w.message)[:120]}": None for w in record})
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded above; the same call raises the same
        while 1 + len(seconds) < repeats:
            spent = first + sum(seconds)
            if spent + float(np.median(seconds or [first])) > budget:
                break
            out = None
            start = time.perf_counter()
            out = call()
            seconds.append(time.perf_counter() - start)
    return out, seconds or [first], mem.peak_mb, mem.method, caught


def _failure(exc):
    """Status and reason of an exception raised by a tool."""
    if isinstance(exc, Unsupported):
        return "skipped", str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1]
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return "failed", f"{type(exc).__name__}: {message} ({Path(last.filename).name}:{last.lineno})"


def run_model(runner, model, frame, job):
    """Measure the fit of one model (and its prediction), emitting the results."""
    name = model.name
    emit(event="start", model=name, kind="fit")
    try:
        data = runner.prepare(model, frame)  # the tool's input, outside the clock
        fitted, seconds, peak, method, caught = measure(
            lambda: runner.fit(model, data), job["repeats"], job["budget"]
        )
    except Exception as exc:  # noqa: BLE001 - any failure of a tool is a result
        status, reason = _failure(exc)
        emit(event="result", model=name, kind="fit", status=status, reason=reason)
        return
    per_eval = None
    if job.get("per_eval"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                per_eval = runner.seconds_per_eval(model, data, fitted, float(np.median(seconds)))
        except Exception as exc:  # noqa: BLE001
            caught.append("seconds_per_eval failed: " + _failure(exc)[1])
    emit(event="result", model=name, kind="fit", status="ok", seconds=seconds, peak_mb=peak,
         memory_method=method, loglik=fitted.loglik, n_eval=fitted.n_eval,
         converged=fitted.converged, s_per_eval=per_eval, warnings=caught)

    if job.get("predict_data"):
        emit(event="start", model=name, kind="predict")
        try:
            new = runner.prepare(model, pd.read_pickle(job["predict_data"]))
            _, seconds, peak, method, caught = measure(
                lambda: runner.predict(model, fitted, new), job["repeats"], job["budget"]
            )
        except Exception as exc:  # noqa: BLE001
            status, reason = _failure(exc)
            emit(event="result", model=name, kind="predict", status=status, reason=reason)
            return
        emit(event="result", model=name, kind="predict", status="ok", seconds=seconds,
             peak_mb=peak, memory_method=method, n_rows=len(new), warnings=caught)


def main(job_path):
    """Run the job in ``job_path`` (see the module docstring)."""
    job = json.loads(Path(job_path).read_text())
    runner = RUNNERS[job["tool"]]
    emit(event="hello", tool=runner.name, version=runner.version())
    frame = pd.read_pickle(job["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            runner.fit(WARM_UP_MODEL, single(500, 20, n_features=2).frame)
        except Exception:  # noqa: BLE001 - a real failure shows in the measured fits
            pass
    for spec in job["models"]:
        run_model(runner, Model(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in spec.items()}), frame, job)


if __name__ == "__main__":
    main(sys.argv[1])
