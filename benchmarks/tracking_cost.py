"""Per-step cost of tracking the fit: untracked vs `AccumulatorTracker` vs PyMC's Tracker.

Each variant is its own ``pm.ADVI`` fit of the same model, run through PyMC's own loop
(``inference.refine(block, progressbar=False)`` after a first ``fit`` that compiles and
installs the callbacks); variants are timed in turns (round robin, best block kept) in one
process and printed as ratios to the untracked fit.

Usage::

    python benchmarks/tracking_cost.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pymc as pm
from pymc.variational.callbacks import Tracker

from models import synthetic_regression as regression
from pymc_adadelta import AccumulatorTracker, Adadelta
from run_info import header

warnings.filterwarnings("ignore")
LATENT_DIMS = (1, 100, 1000)
BLOCK = 2000


def variant(model: pm.Model, kind: str) -> pm.ADVI:
    optimizer = Adadelta()
    with model:
        inference = pm.ADVI()
    approx = inference.approx
    if kind == "untracked":
        callbacks = []
    elif kind == "no-op":
        callbacks = [lambda approx, losses, i: None]
    elif kind == "ours":
        callbacks = [AccumulatorTracker(optimizer, every=1)]
    else:
        callbacks = [Tracker(mean=approx.mean.eval, std=approx.std.eval)]
    inference.fit(50, obj_optimizer=optimizer, callbacks=callbacks, progressbar=False)
    return inference


def run_block(inference: pm.ADVI) -> float:
    t0 = time.perf_counter()
    inference.refine(BLOCK, progressbar=False)
    return (time.perf_counter() - t0) / BLOCK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(header("tracking_cost") + "  default mode")
    print("| latent d | untracked µs/step | no-op callback / untracked "
          "| AccumulatorTracker(every=1) / untracked "
          "| pm.callbacks.Tracker(mean, std) / untracked |")  # fmt: skip
    print("|---|---|---|---|---|")
    worst = 0.0
    for d in LATENT_DIMS:
        model = regression(d)
        variants = {k: variant(model, k) for k in ("untracked", "no-op", "ours", "pymc")}
        best = dict.fromkeys(variants, np.inf)
        for r in range(args.rounds + 1):
            for name, inference in variants.items():
                seconds = run_block(inference)
                if r:  # round 0 warms up
                    best[name] = min(best[name], seconds)
        ours, theirs = best["ours"] / best["untracked"], best["pymc"] / best["untracked"]
        worst = max(worst, ours)
        noop = best["no-op"] / best["untracked"]
        print(f"| {d} | {best['untracked'] * 1e6:.1f} | {noop:.3f} | {ours:.3f} | {theirs:.3f} |",
              flush=True)  # fmt: skip
    print(f"\nworst AccumulatorTracker ratio: {worst:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
