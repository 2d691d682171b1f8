"""Time of the parametric bootstrap and of profile intervals against lme4.

Two measurements, interleaved with lme4's own (``inference_intervals.R``):

- 10,000 parametric bootstrap replicates of ``Reaction ~ Days + (Days | Subject)``
  on sleepstudy (``bootstrap``; lme4: ``bootMer`` with ``use.u = FALSE``, timed on
  ``--nsim`` replicates and reported per replicate and scaled to 10,000);
- profile intervals of every parameter of Exam model 5,
  ``normexam ~ standLRT * schavg + (1 + standLRT | school)`` (``confint()``; lme4:
  ``confint(fit, method = "profile")``).

Each sklmixed time is the median of ``--repeats`` runs (wall clock and the process's
CPU time: the machine is usually shared, and CPU time is what the work costs).

::

    python benchmarks/inference_intervals.py                 # with lme4 (Rscript)
    python benchmarks/inference_intervals.py --no-r --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))

import pandas as pd  # noqa: E402

from sklmixed import lmer  # noqa: E402

DATA = HERE.parent / "tests" / "data"


def _timed(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--nsim", type=int, default=500, help="lme4's bootMer replicates")
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    args = parser.parse_args(argv)

    sleep = pd.read_csv(DATA / "sleepstudy.csv")
    exam = pd.read_csv(DATA / "Exam.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ss = lmer("Reaction ~ Days + (Days | Subject)", sleep)
        m5 = lmer("normexam ~ standLRT * schavg + (1 + standLRT | school)", exam)
    boot_wall, boot_cpu = _timed(lambda: ss.bootstrap(args.n_boot, random_state=1), args.repeats)
    prof_wall, prof_cpu = _timed(lambda: m5.confint(), args.repeats)
    out = {
        "sklmixed": {
            "bootstrap_replicates": args.n_boot,
            "bootstrap_seconds": boot_wall,
            "bootstrap_cpu_seconds": boot_cpu,
            "profile_exam5_seconds": prof_wall,
            "profile_exam5_cpu_seconds": prof_cpu,
        }
    }
    if not args.no_r:
        run = subprocess.run(
            ["Rscript", str(HERE / "inference_intervals.R"), str(args.repeats), str(args.nsim)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(run.stdout.strip().splitlines()[-1])
        per = r["boot_seconds"] / r["boot_nsim"]
        out["lme4"] = {
            "bootMer_replicates": r["boot_nsim"],
            "bootMer_seconds": r["boot_seconds"],
            "bootMer_seconds_per_10000": per * 10_000,
            "profile_exam5_seconds": statistics.median(r["profile_seconds"]),
        }
        out["speedup"] = {
            "bootstrap": per * args.n_boot / boot_wall,
            "profile_exam5": out["lme4"]["profile_exam5_seconds"] / prof_wall,
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
