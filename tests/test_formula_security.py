"""A formula is data, never code: an injection corpus through every entry point.

Each payload must be refused with a ValueError quoting what is wrong, while tripwires
on the ways Python runs code (exec, eval, compile, os.system, subprocess, imports of
os-level modules, files opened for writing) record that none was reached, and a
sentinel file that every shell payload would create is never created.
"""

import builtins
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sklmixed
from sklmixed import MixedLMRegressor
from sklmixed.design.formula import FormulaTerms, parse_formula

SENTINEL = "/tmp/sklmixed_formula_pwned"
SHELL = f"touch {SENTINEL}"
# The payload of the issue, verbatim: a checker pairing backticks without regard to
# quotes validated a different text from the one evaluated.
ISSUE = (
    'y ~ x + I(x + 0 * ("`" == `exec`("import os; os.system(\'id\')")) + 0 * len("`")) + (1 | g)'
)

PAYLOADS = {
    "issue": ISSUE,
    "issue with sentinel": ISSUE.replace("id", SHELL),
    # Backticks inside strings, quotes inside backticks.
    "backtick in string": f'y ~ x + I(log("`") + `exec`("{SHELL}") + log("`")) + (1 | g)',
    "string quotes around backtick": "y ~ x + I('`' == `eval`('1')) + (1 | g)",
    "quote in backtick call": '`exec("import os")`(x) ~ x + (1 | g)',
    "backtick spanning quotes": 'y ~ I(`x") + __import__("os`) + `__import__`("os") + (1 | g)',
    # Attribute walks from allowed functions, subscripts, lambdas, dunders.
    "globals of log": 'y ~ log.__globals__["os"] + (1 | g)',
    "class of I": "y ~ I.__class__.__bases__[0] + (1 | g)",
    "class of a literal": "y ~ (1).__class__ + (1 | g)",
    "class of a call": "y ~ log(x).__class__ + (1 | g)",
    "dollar": "y ~ log(x)$system + (1 | g)",
    "at": "y ~ x@system + (1 | g)",
    "subscript": "y ~ x[0] + (1 | g)",
    "double subscript": 'y ~ I(x[["os"]]) + (1 | g)',
    "lambda call": "y ~ I((lambda: 1)()) + (1 | g)",
    "R function": "y ~ I(function(x) x) + (1 | g)",
    "R lambda": "y ~ I(\\(x) x) + (1 | g)",
    "dunder import": f'y ~ __import__("os").system("{SHELL}") + (1 | g)',
    "backtick dunder": 'y ~ `__import__`("os") + (1 | g)',
    "builtins": "y ~ I(__builtins__) + (1 | g)",
    "semicolon": f"y ~ x; {SHELL}",
    # Unicode look-alikes: NFKC folds them to names that must not be callable.
    "fullwidth exec": f'y ~ x + ｅｘｅｃ("{SHELL}") + (1 | g)',
    "mathematical bold eval": 'y ~ x + 𝐞𝐯𝐚𝐥("1") + (1 | g)',
    "fullwidth underscores": 'y ~ ＿＿import＿＿("os") + (1 | g)',
    "fullwidth backtick name": "y ~ `ｅｘｅｃ`(x) + (1 | g)",
    # Every place a formula holds an expression.
    "response": f'exec("{SHELL}") ~ x + (1 | g)',
    "response dunder": '__import__("os") ~ x + (1 | g)',
    "bar left side": 'y ~ x + (exec("1") | g)',
    "bar left side attribute": "y ~ x + (1 + x.__class__[0] | g)",
    "grouping factor": 'y ~ x + (1 | exec("1"))',
    "nested grouping factor": 'y ~ x + (1 | g/eval("1"))',
    "offset": f'y ~ x + offset(exec("{SHELL}")) + (1 | g)',
    "poly degree": 'y ~ poly(x, degree = __import__("os")) + (1 | g)',
    "poly degree call": 'y ~ poly(x, degree = exec("1")) + (1 | g)',
    "scale center": 'y ~ scale(x, center = eval("1")) + (1 | g)',
    "log base": 'y ~ log(x, base = exec("1")) + (1 | g)',
    "factor levels": 'y ~ factor(x, levels = exec("1")) + (1 | g)',
    "cbind": f'cbind(exec("{SHELL}"), x) ~ x + (1 | g)',
    "cbind on the right": "y ~ cbind(x, x) + (1 | g)",
    "getattr": 'y ~ getattr(x, "__class__") + (1 | g)',
    "open": f'y ~ I(open("{SENTINEL}", "w")) + (1 | g)',
    "system": f'y ~ system("{SHELL}") + (1 | g)',
}

_FORBIDDEN_IMPORTS = {"os", "subprocess", "shutil", "socket", "ctypes", "pty", "posix"}


@pytest.fixture
def tripwires(monkeypatch, data):
    """Record (and block) every way the payloads could run code; yield the record."""
    # A first fit and prediction, before the wires: the libraries' lazy imports are done.
    MixedLMRegressor(formula="y ~ x + sex + (1 | g)").fit(data).predict(data)
    if os.path.exists(SENTINEL):
        os.remove(SENTINEL)
    calls = []

    def from_pytest():
        # pytest compiles source to report a failure, and a library's lazy import runs
        # the module's own code through importlib: neither is a formula's doing.
        caller = sys._getframe(2).f_globals.get("__name__", "")
        return caller.startswith(
            ("_pytest", "pluggy", "ast", "inspect", "traceback", "importlib", "<frozen")
        )

    def blocked(name, real):
        def trip(*args, **kwargs):
            if from_pytest():
                return real(*args, **kwargs)
            calls.append((name, args))
            raise AssertionError(f"{name} was called with {args!r}")

        return trip

    for name in ("exec", "eval", "compile"):
        monkeypatch.setattr(builtins, name, blocked(name, getattr(builtins, name)))
    monkeypatch.setattr(os, "system", blocked("os.system", os.system))
    monkeypatch.setattr(os, "popen", blocked("os.popen", os.popen))
    monkeypatch.setattr(subprocess, "Popen", blocked("subprocess.Popen", subprocess.Popen))
    real_import, real_open = builtins.__import__, builtins.open

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] in _FORBIDDEN_IMPORTS and not from_pytest():
            calls.append(("import", name))
        return real_import(name, *args, **kwargs)

    def guarded_open(file, mode="r", *args, **kwargs):
        if (any(c in mode for c in "wax+") or str(file) == SENTINEL) and not from_pytest():
            calls.append(("open", file, mode))
            raise AssertionError(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    monkeypatch.setattr(builtins, "open", guarded_open)
    yield calls
    assert not os.path.exists(SENTINEL)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 24
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": x + rng.normal(size=n),
            "x": x,
            "g": np.repeat(np.arange(6), 4),
            "sex": np.tile(["F", "M"], n // 2),
        }
    )


def _quotes_the_formula(message, formula):
    """Whether ``message`` quotes a piece of ``formula`` (or the whole of it)."""
    pieces = re.findall(r"'((?:[^'\\]|\\.)+)'|\"((?:[^\"\\]|\\.)+)\"", message)
    return any(p and (p in formula or p in repr(formula)) for pair in pieces for p in pair)


@pytest.mark.parametrize("formula", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_is_refused_and_nothing_runs(formula, data, tripwires):
    with pytest.raises(ValueError) as info:
        FormulaTerms(formula).fit(data)
    assert _quotes_the_formula(str(info.value), formula), str(info.value)
    assert tripwires == []


@pytest.mark.parametrize("formula", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_through_lmer_and_the_estimator(formula, data, tripwires):
    with pytest.raises(ValueError):
        sklmixed.lmer(formula, data)
    with pytest.raises(ValueError):
        MixedLMRegressor(formula=formula).fit(data)
    assert tripwires == []


def test_the_issue_payload_is_refused_when_parsed(tripwires):
    with pytest.raises(ValueError, match="Unknown function 'exec'"):
        parse_formula(ISSUE)
    assert tripwires == []


def test_lookalikes_fold_to_plain_names(data, tripwires):
    # A look-alike of an allowed function is that function; of a column, that column.
    design = FormulaTerms("y ~ ｌｏｇ(𝐱 + 10) + (1 | g)").fit(data)
    assert design.fixed_names == ["(Intercept)", "log(x + 10)"]
    np.testing.assert_allclose(design.fixed_matrix(data)[:, 1], np.log(data.x + 10))
    assert tripwires == []


def test_quotes_and_backticks_in_strings_are_only_text(data, tripwires):
    # Quote-aware: the backticks are characters of strings, compared as data.
    design = FormulaTerms("y ~ x + I(sex == \"`exec`('id')\") + (1 | g)").fit(data)
    assert design.fixed_names == ["(Intercept)", "x", "I(sex == \"`exec`('id')\")TRUE"]
    np.testing.assert_array_equal(design.fixed_matrix(data)[:, 2], 0.0)
    assert tripwires == []


def test_payloads_in_data_values_are_only_levels(data, tripwires):
    model = MixedLMRegressor(formula="y ~ x + sex + (1 | g)").fit(data)
    new = data.assign(sex=[f'__import__("os").system("{SHELL}")'] * len(data))
    with pytest.raises(ValueError, match="not seen in the training data"):
        model.predict(new)
    # A column whose name is a payload is only a name.
    odd = data.rename(columns={"x": 'exec("1")'})
    fit = MixedLMRegressor(formula='y ~ `exec("1")` + (1 | g)').fit(odd)
    plain = MixedLMRegressor(formula="y ~ x + (1 | g)").fit(data)
    assert list(fit.fixed_effects_.index) == ["(Intercept)", '`exec("1")`']
    np.testing.assert_allclose(fit.predict(odd), plain.predict(data), atol=1e-6)
    assert tripwires == []


def test_changing_the_formula_after_fit_refits_nothing_unsafe(data, tripwires):
    model = MixedLMRegressor(formula="y ~ x + (1 | g)").fit(data)
    model.set_params(formula=ISSUE)
    with pytest.raises(ValueError):
        model.fit(data)
    assert tripwires == []


def test_the_tripwires_trip(tripwires):
    # The wires above are live: a call they guard is recorded and refused.
    with pytest.raises(AssertionError):
        os.system("true")
    with pytest.raises(AssertionError):
        builtins.eval("1")
    assert [name for name, *_ in tripwires] == ["os.system", "eval"]
    tripwires.clear()
