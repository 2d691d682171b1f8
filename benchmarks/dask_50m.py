"""A 50,000,000-row, 100,000-level one-factor fit through Dask, client memory measured.

Writes the data set as parquet files (seeded; one file of ``--rows-per-file`` rows at a
time, so the writer never holds the data set), then fits ``y ~ x + (1 | g)`` by REML on
a ``dask.distributed.LocalCluster`` (2 worker processes, 1 thread each) and reports the
wall time of each step and the peak resident memory of the client process (sampled
every 20 ms by a thread; the scheduler runs in it too) and of the workers.

    python benchmarks/dask_50m.py                      # 50M rows (writes ~1 GB once)
    python benchmarks/dask_50m.py --rows 10_000_000    # a shorter run

The generated files are kept in ``--folder`` and reused when they match.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import threading
import time

import numpy as np
import pandas as pd
import psutil

SEED = 20261203
TRUE = {"intercept": 3.0, "slope": 0.5, "sd_group": 0.8, "sigma": 1.5}


def write_dataset(folder, rows, levels, rows_per_file):
    """Parquet files of ``y = 3 + 0.5 x + b[g] + e``, file ``i`` from its own seed."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "dataset.json"
    spec = {"rows": rows, "levels": levels, "rows_per_file": rows_per_file, "seed": SEED}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return 0.0
    for old in folder.glob("*.parquet"):
        old.unlink()
    start = time.perf_counter()
    effects = np.random.default_rng([SEED, 0]).normal(0.0, TRUE["sd_group"], levels)
    n_files = -(-rows // rows_per_file)
    for i in range(n_files):
        n = min(rows_per_file, rows - i * rows_per_file)
        rng = np.random.default_rng([SEED, 1, i])
        g = rng.integers(0, levels, n)
        x = rng.normal(size=n)
        y = TRUE["intercept"] + TRUE["slope"] * x + effects[g] + rng.normal(0, TRUE["sigma"], n)
        pd.DataFrame({"y": y, "x": x, "g": g}).to_parquet(
            folder / f"part-{i:04d}.parquet", index=False
        )
    marker.write_text(json.dumps(spec))
    return time.perf_counter() - start


class PeakMemory:
    """Peak RSS of this process and of its child processes (the workers), sampled."""

    def __init__(self, interval=0.02):
        self.interval = interval
        self.client = self.workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            self.client = max(self.client, me.memory_info().rss)
            for child in me.children(recursive=True):
                try:
                    self.workers = max(self.workers, child.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--levels", type=int, default=100_000)
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--folder", default="/tmp/sklmixed_dask_benchmark")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()

    folder = pathlib.Path(args.folder) / f"{args.rows}_{args.levels}"
    write_seconds = write_dataset(folder, args.rows, args.levels, args.rows_per_file)

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from sklmixed import MixedLMRegressor

    with PeakMemory() as peak:
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True,
            dashboard_address=None, memory_limit="4GiB",
        ) as cluster, Client(cluster):  # fmt: skip
            ddf = dd.read_parquet(str(folder))
            start = time.perf_counter()
            model = MixedLMRegressor(formula="y ~ x + (1 | g)", verbose=args.verbose).fit(ddf)
            fit_seconds = time.perf_counter() - start
            predict_start = time.perf_counter()
            mean_prediction = float(model.predict(ddf).mean().compute())
            predict_seconds = time.perf_counter() - predict_start
    report = {
        "rows": args.rows,
        "levels": args.levels,
        "files": len(list(folder.glob("*.parquet"))),
        "workers": args.workers,
        "write_seconds": round(write_seconds, 1),
        "fit_seconds": round(fit_seconds, 1),
        "predict_mean_seconds": round(predict_seconds, 1),
        "client_peak_rss_mb": round(peak.client / 2**20),
        "worker_peak_rss_mb": round(peak.workers / 2**20),
        "evaluations": int(model.n_iter_),
        "fixed_effects": model.fixed_effects_.round(5).to_dict(),
        "sd_group": float(np.sqrt(model.variance_components_["vcov"].iloc[0])),
        "sigma": float(model.sigma_),
        "mean_prediction": mean_prediction,
        "residual_quantiles": model.result_.residual_quantiles.round(4).tolist(),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
