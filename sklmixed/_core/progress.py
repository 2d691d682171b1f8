"""A progress display for long fits: evaluations, criterion, elapsed time, on stderr."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Prints the optimizer's progress to stderr as ``fit_lmm``'s ``callback``.

    Each line shows the evaluations so far, the lowest criterion value seen and the
    seconds since the display started. Lines go to stderr (not to logging), so that
    they show in a terminal and a notebook alike without configuration and leave
    stdout to the program.

    Parameters
    ----------
    label : str
        What is minimized, e.g. ``"REML criterion"``.
    verbose : int, default=1
        1: a line at most every ``interval`` seconds, and one at the end
        (:meth:`close`); 2 or more: a line per evaluation.
    interval : float, default=1.0
    stream : file-like, default=sys.stderr

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress("REML criterion", verbose=2, stream=out)
    >>> progress(1, 2.5)
    >>> out.getvalue().split()[:5]
    ['sklmixed:', 'evaluation', '1,', 'REML', 'criterion']
    """

    def __init__(self, label, verbose=1, interval=1.0, stream=None):
        self.label = label
        self.verbose = verbose
        self.interval = interval
        self.stream = sys.stderr if stream is None else stream
        self.start = time.perf_counter()
        self.last = self.start
        self.n_evals = 0
        self.best = float("inf")

    def __call__(self, n_evals, value):
        self.n_evals = n_evals
        self.best = min(self.best, value)
        now = time.perf_counter()
        if self.verbose >= 2 or now - self.last >= self.interval:
            self._line(now)

    def close(self):
        """The final line: evaluations, lowest criterion, total elapsed time."""
        if self.n_evals:
            self._line(time.perf_counter(), done=True)

    def _line(self, now, done=False):
        self.last = now
        head = "done after" if done else "evaluation"
        print(
            f"sklmixed: {head} {self.n_evals:,}, {self.label} {self.best:.10g}, "
            f"{now - self.start:.1f} s",
            file=self.stream,
            flush=True,
        )
