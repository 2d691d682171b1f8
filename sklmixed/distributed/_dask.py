"""The one place that imports Dask, with the message that says how to get it."""

from __future__ import annotations

import sys

__all__ = ["require_dask", "compute"]


def require_dask():
    """``(dask, dask.dataframe)``, or an ImportError naming the extra to install."""
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as error:  # pragma: no cover - exercised without dask only
        raise ImportError(
            "Fitting a Dask DataFrame needs dask[dataframe]: pip install sklmixed[dask]"
        ) from error
    return dask, dd


def compute(*collections, verbose=0, label="pass"):
    """``dask.compute(*collections)``, showing Dask's own progress when ``verbose``.

    With a ``dask.distributed`` client the futures are shown by ``distributed.progress``
    (a text bar on stdout); with Dask's local schedulers by
    ``dask.diagnostics.ProgressBar``. A heading naming the pass goes to stderr.
    """
    dask, _ = require_dask()
    if not verbose:
        return dask.compute(*collections)
    print(f"sklmixed: {label}", file=sys.stderr, flush=True)
    client = _client()
    if client is not None:
        from distributed import progress

        futures = client.compute(list(collections))
        progress(futures)
        print(file=sys.stdout, flush=True)
        return tuple(client.gather(futures))
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        return dask.compute(*collections)


def _client():
    """The active ``dask.distributed`` client, or None (Dask's local schedulers)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None
