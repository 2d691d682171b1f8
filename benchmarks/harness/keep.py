"""Keep a design as a regression test: its data and formula in tests/reference/harness/.

    python benchmarks/harness/keep.py design DIR ID NAME [--note TEXT]
    python benchmarks/harness/keep.py naming

``design`` copies harness design ``ID`` of folder ``DIR`` as case ``NAME``;
``naming`` writes the cases of lme4's term order and names (terms that tie in their
number of levels, a factor used twice, an interaction used twice). Both write
``NAME.csv`` and add the case to ``cases.json``; then
``Rscript tests/reference/harness/make_harness.R`` writes lme4's fit of every case
(``NAME.json``), which the tests compare with.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pandas as pd

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "tests" / "reference" / "harness"
CASES = REFERENCE / "cases.json"


def add_case(name, frame, formula, reml, source):
    """Write ``NAME.csv`` and record the case in ``cases.json``."""
    REFERENCE.mkdir(parents=True, exist_ok=True)
    frame.to_csv(REFERENCE / f"{name}.csv", index=False, float_format="%.17g")
    cases = json.loads(CASES.read_text()) if CASES.exists() else []
    cases = [c for c in cases if c["name"] != name]
    cases.append({"name": name, "formula": formula, "REML": reml, "source": source})
    CASES.write_text(json.dumps(cases, indent=1) + "\n")


def naming_cases():
    """Data whose terms tie in their number of levels or repeat a factor."""
    rng = np.random.default_rng(20261203)
    n = 240
    a = rng.integers(5, size=n)
    g = np.tile(np.arange(10), n // 10)
    h = rng.permutation(np.repeat(np.arange(10), n // 10))
    k = np.repeat(np.arange(4), n // 4)
    x = rng.normal(size=n)
    gk = g * 4 + k
    y = (
        1.0
        + 0.5 * x
        + rng.normal(0, 0.8, 5)[a]
        + rng.normal(0, 1.0, 10)[g]
        + rng.normal(0, 0.7, 10)[h]
        + rng.normal(0, 0.6, 10)[g] * x
        + rng.normal(0, 0.5, 40)[gk]
        + rng.normal(0, 0.4, 40)[gk] * x
        + rng.normal(size=n)
    )
    frame = pd.DataFrame({
        "y": y, "x": x,
        "a": [f"a{v}" for v in a], "g": [f"g{v}" for v in g],
        "h": [f"h{v}" for v in h], "k": [f"k{v}" for v in k],
    })  # fmt: skip
    cases = {
        # lme4 orders terms by rev(order(nlevels)) once some term has more levels than
        # the one before it: ties come out in reverse.
        "ties_reversed": "y ~ x + (1 | a) + (1 | g) + (1 | h) + (0 + x | g)",
        # No term has more levels than the one before it: the order as written.
        "ties_as_given": "y ~ x + (1 | g) + (1 | h)",
        # A factor with two terms: every name goes through make.names (g:k is g.k).
        "interaction_twice": "y ~ x + (1 | g) + (1 | g:k) + (0 + x | g:k)",
        "factor_twice_beside_an_interaction": "y ~ x + (1 | g:k) + (1 | g) + (0 + x | g)",
        # No factor repeats: the names stay as they are (k:g).
        "nested_once": "y ~ x + (1 | g/k)",
    }
    for name, formula in cases.items():
        add_case(name, frame, formula, True, "naming: lme4's term order and names")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    design = sub.add_parser("design")
    design.add_argument("folder")
    design.add_argument("id")
    design.add_argument("name")
    design.add_argument("--note", default="")
    sub.add_parser("naming")
    args = parser.parse_args()
    if args.command == "naming":
        naming_cases()
        return
    folder = pathlib.Path(args.folder)
    spec = {d["id"]: d for d in json.loads((folder / "designs.json").read_text())}[args.id]
    frame = pd.read_csv(folder / f"{args.id}.csv", dtype=str)
    source = f"harness design {args.id}" + (f": {args.note}" if args.note else "")
    add_case(args.name, frame, spec["formula"], spec["REML"], source)


if __name__ == "__main__":
    main()
