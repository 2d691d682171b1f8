"""Peak memory of one call, measured on the whole process.

Linux keeps a high-water mark of each process's resident set size (``VmHWM`` in
``/proc/self/status``), and writing ``5`` to ``/proc/self/clear_refs`` resets it to
the current resident size. :class:`PeakMemory` resets it just before the call and
reads it just after: the peak is ``VmHWM(after) - VmRSS(before)``, the most memory
the call held at once above what the process already held. Every allocation counts,
whoever made it (numpy, scipy's SuiteSparse/BLAS, Rust or C extensions), which is
what a fair comparison of tools with native cores needs; ``tracemalloc`` would see
only allocations made through Python's allocators.

Where the reset is not available (not Linux, or ``/proc`` read-only), the peak is
the growth of ``resource.getrusage(...).ru_maxrss``, the lifetime peak of the
process; that undercounts a call whose peak stays below an earlier one, so each
tool runs in a fresh process after only loading its data (see ``worker.py``). The
method used is reported with each measurement. ``lme4.R`` measures R the same way.
"""

from __future__ import annotations

import resource
import sys

__all__ = ["PeakMemory"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_mb(field):
    """A ``kB`` field of ``/proc/self/status``, in MB (MiB)."""
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _maxrss_mb():
    """Lifetime peak resident set size of this process, in MB (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def _can_reset():
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        _status_mb("VmHWM")
    except OSError:
        return False
    return True


class PeakMemory:
    """Context manager measuring the peak memory of its block.

    Attributes
    ----------
    method : str
        ``"VmHWM"`` (high-water mark reset before the block) or ``"ru_maxrss"``
        (growth of the process's lifetime peak).
    peak_mb : float
        After the block: the most memory held at once during the block above the
        resident size at its start, in MiB.

    Examples
    --------
    >>> import numpy as np
    >>> with PeakMemory() as mem:
    ...     a = np.ones(10_000_000)
    >>> mem.peak_mb > 70
    True
    """

    _reset_works = None

    def __init__(self):
        if PeakMemory._reset_works is None:
            PeakMemory._reset_works = _can_reset()
        self.method = "VmHWM" if PeakMemory._reset_works else "ru_maxrss"
        self.peak_mb = float("nan")

    def __enter__(self):
        if self.method == "VmHWM":
            with open(_CLEAR_REFS, "w") as f:
                f.write("5")
            self._start = _status_mb("VmRSS")
        else:
            self._start = _maxrss_mb()
        return self

    def __exit__(self, *exc):
        end = _status_mb("VmHWM") if self.method == "VmHWM" else _maxrss_mb()
        self.peak_mb = max(end - self._start, 0.0)
        return False
