"""Random valid designs for the harness against lme4: data (CSV) and an lme4 formula.

Each design has 1 to 3 grouping factors (crossed or nested), random slopes
(correlated, uncorrelated ``||``, or a separate ``(0 + x | g)`` term), ML or REML,
response and covariate scales from 1e-3 to 1e3, and small, unbalanced groups (some
levels with one row). Designs are small (at most a few hundred rows) so that several
hundred fit in minutes on a shared machine.

Run ``python benchmarks/harness/generate.py OUT --n 300 --seed 1``: it writes
``OUT/<id>.csv`` and ``OUT/designs.json`` (one entry per design: id, formula, REML).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pandas as pd

__all__ = ["random_design", "write_designs"]


def _sizes(rng, m, mean):
    """Unbalanced level sizes: 1 + Poisson, at least one level of size 1 half the time."""
    sizes = 1 + rng.poisson(mean, size=m)
    if rng.random() < 0.5:
        sizes[rng.integers(m)] = 1
    return sizes


def _factor_labels(prefix, codes):
    return np.array([f"{prefix}{c}" for c in codes], dtype=object)


def random_design(rng):
    """One random design: ``(frame, formula, REML, meta)``.

    The formula is valid for lme4: every grouping factor has fewer random effects
    (levels times columns) than there are rows, and at least two levels.
    """
    while True:
        drawn = _draw(rng)
        if drawn is not None:
            return drawn


def _draw(rng):
    """A design, or None where a factor has too many random effects for its rows."""
    n_factors = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    m1 = int(rng.integers(3, 26))
    sizes = _sizes(rng, m1, rng.uniform(1.0, 8.0))
    codes1 = np.repeat(np.arange(m1), sizes)
    n = codes1.size
    factors = {"g1": codes1}
    structure = []
    for j in range(2, n_factors + 1):
        kind = "nested" if rng.random() < 0.4 else "crossed"
        parent = factors[f"g{j - 1}"]
        if kind == "nested":
            # 1 to 4 sub-levels in each parent level, rows spread among them.
            n_sub = rng.integers(1, 5, size=parent.max() + 1)
            sub = np.array([rng.integers(n_sub[p]) for p in parent])
            codes = np.unique(np.stack([parent, sub], 1), axis=0, return_inverse=True)[1].ravel()
        else:
            m = int(rng.integers(2, 16))
            codes = rng.integers(m, size=n)
        factors[f"g{j}"] = codes
        structure.append(kind)
    order = rng.permutation(n)  # rows in no particular order
    x_scale = 10.0 ** rng.uniform(-3, 3)
    y_scale = 10.0 ** rng.uniform(-3, 3)
    x1 = rng.normal(rng.normal(0, 2), 1, size=n) * x_scale
    x2 = rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2})
    use_f = rng.random() < 0.25
    if use_f:
        frame["f"] = rng.choice(["a", "b", "c"], size=n)
    # Random-effects terms, as text, and the simulated response.
    sigma = 1.0
    eta = 0.3 * x2 + rng.normal() * x1 / x_scale
    terms = []
    for j, (name, codes) in enumerate(factors.items()):
        m = codes.max() + 1
        sd0 = 0.0 if rng.random() < 0.2 else 10.0 ** rng.uniform(-1.5, 0.5)
        slope = j == 0 and rng.random() < 0.6 or j > 0 and rng.random() < 0.15
        q = 2 if slope else 1
        if slope and n <= 2 * m + 4:
            slope, q = False, 1
        if m < 2 or m * q >= n - 2:
            return None
        b0 = rng.normal(0, sd0, size=m)
        eta = eta + b0[codes]
        if slope:
            sd1 = 0.0 if rng.random() < 0.2 else 10.0 ** rng.uniform(-1.5, 0.5)
            rho = rng.uniform(-0.9, 0.9)
            b1 = rho * b0 / max(sd0, 1e-12) * sd1 + np.sqrt(1 - rho**2) * rng.normal(0, sd1, m)
            eta = eta + b1[codes] * x1 / x_scale
            kind = rng.choice(["corr", "uncorr", "split"], p=[0.5, 0.3, 0.2])
            text = {
                "corr": f"(1 + x1 | {name})",
                "uncorr": f"(1 + x1 || {name})",
                "split": f"(1 | {name}) + (0 + x1 | {name})",
            }[kind]
        else:
            text = f"(1 | {name})"
        terms.append(text)
    if structure[:1] == ["nested"] and rng.random() < 0.5:
        # lme4's nesting operator, g2's labels repeated across g1's levels.
        g1, g2 = factors["g1"], factors["g2"]
        factors["g2"] = np.array([np.flatnonzero(np.unique(g2[g1 == a]) == b)[0]
                                  for a, b in zip(g1, g2)])
        if terms[0] == "(1 | g1)" and terms[1] == "(1 | g2)":
            terms[0:2] = ["(1 | g1/g2)"]
        else:
            terms[1] = terms[1].replace("g2", "g1:g2")
    y = y_scale * (eta + sigma * rng.normal(size=n))
    frame["y"] = y
    for name, codes in factors.items():
        frame[name] = _factor_labels(name[-1] + "L", codes)
    fixed = "x1 + x2" + (" + f" if use_f else "")
    formula = f"y ~ {fixed} + " + " + ".join(terms)
    reml = bool(rng.random() < 0.5)
    meta = {
        "n": int(n),
        "n_factors": n_factors,
        "structure": structure,
        "x_scale": float(x_scale),
        "y_scale": float(y_scale),
    }
    return frame.iloc[order].reset_index(drop=True), formula, reml, meta


def write_designs(out, n_designs, seed):
    """Write ``n_designs`` designs to ``out`` (CSV files and ``designs.json``)."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    designs = []
    for i in range(n_designs):
        ident = f"s{seed}_{i:04d}"
        frame, formula, reml, meta = random_design(rng)
        frame.to_csv(out / f"{ident}.csv", index=False, float_format="%.17g")
        designs.append({"id": ident, "formula": formula, "REML": reml, **meta})
    (out / "designs.json").write_text(json.dumps(designs, indent=1))
    return designs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_designs(args.out, args.n, args.seed)


if __name__ == "__main__":
    main()
