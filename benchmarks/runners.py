"""The tools compared: a small registry of runners.

Each runner turns a :class:`cases.Model` and a DataFrame into a fitted model of one
tool and reads back what the table reports (log-likelihood, number of deviance
evaluations, convergence). Timing, repetition and memory measurement are not
here: ``worker.py`` does them the same way for every Python runner, and ``lme4.R``
does them for lme4 inside R.

Adding a tool: subclass :class:`PythonRunner` (or :class:`Runner` for another
language), implement ``fit`` (and ``predict`` if the tool predicts with random
effects), and decorate the class with :func:`register`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from time import perf_counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Fitted",
    "PythonRunner",
    "RRunner",
    "Runner",
    "RUNNERS",
    "Unsupported",
    "register",
]

HERE = Path(__file__).resolve().parent

#: Tool name -> runner instance, in table order.
RUNNERS: dict = {}


class Unsupported(Exception):
    """The tool cannot fit this model (or cannot predict): a skip, not a failure."""


@dataclass
class Fitted:
    """What a runner reports about one fit.

    Attributes
    ----------
    model : object
        The tool's fitted model (passed back to ``predict``).
    loglik : float
        Log-likelihood at the optimum, REML or ML as fitted (lme4's ``logLik``).
    n_eval : int or None
        Evaluations of the objective, where the tool reports them.
    converged : bool or None
        The tool's own convergence flag, where it has one.
    """

    model: Any
    loglik: float
    n_eval: int | None = None
    converged: bool | None = None


def register(cls):
    """Class decorator: add an instance of a runner class to :data:`RUNNERS`."""
    RUNNERS[cls.name] = cls()
    return cls


class Runner:
    """A tool and how to start the process that benchmarks it.

    Attributes
    ----------
    name : str
        Name in the table and for ``--tools``.
    needs_csv : bool
        Whether the runner reads the data as CSV (otherwise as a pandas pickle).
    """

    name = ""
    needs_csv = False

    def missing(self) -> str | None:
        """Why the tool cannot run here, or None when it can (checked without importing)."""
        raise NotImplementedError

    def command(self, job_path: Path) -> list:
        """Command line of the process that runs the job in ``job_path``."""
        raise NotImplementedError


class RRunner(Runner):
    """A tool run by ``Rscript`` with a script in this folder (see ``lme4.R``)."""

    script = ""

    def missing(self):
        if shutil.which("Rscript") is None:
            return "Rscript not on PATH"
        return None

    def command(self, job_path):
        return ["Rscript", "--vanilla", str(HERE / self.script), str(job_path)]


class PythonRunner(Runner):
    """A Python tool, run by ``worker.py`` in a fresh interpreter.

    Attributes
    ----------
    module : str
        Module that must be importable.
    """

    module = ""

    def missing(self):
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} not installed"
        return None

    def command(self, job_path):
        return [sys.executable, str(HERE / "worker.py"), str(job_path)]

    def version(self) -> str:
        """Installed version of the tool."""
        from importlib.metadata import version

        return version(self.module)

    def prepare(self, model, frame):
        """The tool's input for ``model`` as its users would hold it (not timed).

        ``frame`` itself for tools that take the data frame; :meth:`fit` and
        :meth:`predict` receive what this returns.
        """
        return frame

    def fit(self, model, frame) -> Fitted:
        """Fit ``model`` (a :class:`cases.Model`) to ``frame`` (as :meth:`prepare` gave it)."""
        raise NotImplementedError

    def predict(self, model, fitted: Fitted, frame) -> np.ndarray:
        """Predictions of ``model`` fitted as ``fitted``, with random effects, for ``frame``.

        Levels not seen in the fit get the population prediction.
        """
        raise Unsupported("no prediction with random effects")

    def seconds_per_eval(self, model, frame, fitted: Fitted, seconds: float) -> float | None:
        """Estimated time of one objective evaluation, or None if not estimable."""
        return None


@register
class Lme4(RRunner):
    """lme4's ``lmer`` in R; ``lme4.R`` times only the ``lmer()`` call."""

    name = "lme4"
    needs_csv = True
    script = "lme4.R"


def fixed_columns(model, frame) -> pd.DataFrame:
    """The fixed-effect columns of ``model`` (without intercept) from ``frame``.

    A name ``"a:b"`` is computed as the product of columns ``a`` and ``b``.
    """
    columns = {}
    for name in model.fixed:
        parts = name.split(":")
        columns[name] = np.prod([frame[p].to_numpy() for p in parts], axis=0)
    return pd.DataFrame(columns, index=frame.index)


@register
class Sklmixed(PythonRunner):
    """sklmixed through its formula function, ``sklmixed.lmer(formula, data, REML)``."""

    name = "sklmixed"
    module = "sklmixed"

    def fit(self, model, frame, **params):
        import sklmixed

        est = sklmixed.lmer(model.formula, data=frame, REML=model.reml, **params)
        return _fitted(est)

    def predict(self, model, fitted, frame):
        return fitted.model.predict(frame)

    def seconds_per_eval(self, model, frame, fitted, seconds):
        """``(t_search - t_setup) / (n_search - 1)``, both fits without the convergence check.

        ``t_search`` times a fit with ``check_convergence=False`` (its ``n_search``
        evaluations are the search's alone); ``t_setup`` the same fit capped at one
        evaluation (``max_iter=1``), which does everything else a fit does (design,
        cross-products, final solution, fitted attributes). The difference is the
        cost of ``n_search - 1`` evaluations, the optimizer's own work included.
        """

        def timed(**params):
            start = perf_counter()
            est = self.fit(model, frame, check_convergence=False, **params).model
            return perf_counter() - start, est.n_iter_

        runs = [timed() for _ in range(3)]
        n_search = runs[0][1]
        if n_search < 2:
            return None
        setup = float(np.median([timed(max_iter=1)[0] for _ in range(3)]))
        search = float(np.median([t for t, _ in runs]))
        return max(search - setup, 0.0) / (n_search - 1)


def _fitted(est):
    """An sklmixed fit; its evaluations are the search's plus the convergence check's."""
    check = est.convergence_check_
    n_eval = est.n_iter_ + (check.n_evals if check is not None else 0)
    return Fitted(est, est.log_likelihood_, n_eval, est.converged_)


@register
class SklmixedArray(Sklmixed):
    """sklmixed's array interface, ``MixedLMRegressor(group=..., random_effects=...)``.

    X holds the fixed columns (products precomputed) and the grouping columns; for
    a nested model the inner factor's labels are unique across the outer factor,
    so the two grouping columns give ``(1 | outer) + (1 | outer:inner)``.
    """

    name = "sklmixed-array"

    def prepare(self, model, frame):
        """``(X, y)``: an array user holds the features, products included, already."""
        X = fixed_columns(model, frame)
        for g in model.groups:
            X[g] = frame[g]
        return X, frame[model.response] if model.response in frame else None

    def fit(self, model, data, **params):
        from sklmixed import MixedLMRegressor

        est = MixedLMRegressor(
            group=list(model.groups) if len(model.groups) > 1 else model.groups[0],
            random_effects=list(model.slopes) or None,
            fixed_effects=list(model.fixed),
            method="REML" if model.reml else "ML",
            **params,
        )
        X, y = data
        est.fit(X, y)
        return _fitted(est)

    def predict(self, model, fitted, data):
        return fitted.model.predict(data[0])


@register
class Glmm(PythonRunner):
    """``glmm.fit(data, formula, reml=...)``, the Python port of the Rust glmm crate.

    Satterthwaite degrees of freedom and Hessian standard errors are turned off
    (``satterthwaite=False, wald_se="rx"``): lme4's ``lmer`` computes neither.
    """

    name = "glmm"
    module = "glmm"

    def fit(self, model, frame):
        import glmm

        res = glmm.fit(frame, model.formula, reml=model.reml, satterthwaite=False, wald_se="rx")
        return Fitted(res, res.loglik, res.n_eval, res.converged)

    def predict(self, model, fitted, frame):
        raise Unsupported("glmm has no predict for new data")


@register
class Mixedlm(PythonRunner):
    """``mixedlm.lmer(formula, data, REML=...)`` (Rust core, lme4's API)."""

    name = "mixedlm"
    module = "mixedlm"

    def fit(self, model, frame):
        import mixedlm

        res = mixedlm.lmer(model.formula, frame, REML=model.reml)
        return Fitted(res, res.logLik().value, res.function_evals, res.converged)

    def predict(self, model, fitted, frame):
        return fitted.model.predict(newdata=frame, allow_new_levels=True)


@register
class Statsmodels(PythonRunner):
    """statsmodels ``MixedLM.from_formula(...).fit(reml=...)``.

    One grouping factor maps to ``groups`` (with ``re_formula`` for slopes); a
    factor nested in it to a variance component (``vc_formula``). Crossed factors
    are not supported (they need one all-rows group with a dense variance
    component design). ``n_eval`` is the optimizer's function calls (BFGS; it
    also makes as many gradient calls).
    """

    name = "statsmodels"
    module = "statsmodels"

    def fit(self, model, frame):
        import statsmodels.formula.api as smf

        if len(model.groups) > 1 and not model.nested:
            raise Unsupported(
                "crossed factors need one all-rows group with a dense "
                "variance-component design"
            )
        rhs = " + ".join(model.fixed) or "1"
        vc = {model.groups[1]: f"0 + C({model.groups[1]})"} if model.nested else None
        re = "~" + " + ".join(model.slopes) if model.slopes else "1"
        mod = smf.mixedlm(f"{model.response} ~ {rhs}", frame, groups=model.groups[0],
                          re_formula=re, vc_formula=vc)
        res = mod.fit(reml=model.reml, full_output=True)
        fcalls = sum(h.get("fcalls", 0) for h in getattr(res, "hist", None) or [])
        return Fitted(res, float(res.llf), fcalls or None, bool(res.converged))

    def predict(self, model, fitted, frame):
        raise Unsupported("statsmodels predicts fixed effects only")
