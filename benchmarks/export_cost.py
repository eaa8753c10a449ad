"""Cost of `to_arviz(approx, draws=D)` against PyMC's own ``approx.sample(D)``.

Both produce ArviZ data from the same fitted approximation; ``to_arviz`` also computes
``log p`` and ``log q`` of every draw, the PSIS k-hat, the VI parameters and the
optimization history. Per model and D the two are timed in turns (round robin, median
kept) after one warm-up call each, in one process, and printed as a ratio. The first
call of each on a fresh model (compilation included) is printed too.

Usage::

    python benchmarks/export_cost.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import warnings
from functools import partial

import numpy as np
import pymc as pm

from models import MODELS, synthetic_regression
from pymc_adadelta import adadelta, to_arviz
from run_info import header, seconds

warnings.filterwarnings("ignore")
DRAWS = (1000, 4000)
FIT_STEPS = 2000


def fitted(build) -> object:
    with build():
        return pm.fit(FIT_STEPS, obj_optimizer=adadelta(), progressbar=False, random_seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(header("export_cost") + "  default mode")
    print(
        "| model | draws | approx.sample ms | to_arviz ms | to_arviz / sample "
        "| log_weights=False / sample | first call: sample ms | first call: to_arviz ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    builders = {name: build for name, (build, _) in MODELS.items()}
    builders["regression_d100"] = lambda: synthetic_regression(100)
    worst = worst_no_weights = 0.0
    for model_name, build in builders.items():
        approx = fitted(build)
        first = (
            seconds(partial(approx.sample, DRAWS[0])),
            seconds(partial(to_arviz, approx, DRAWS[0])),
        )
        to_arviz(approx, 10, log_weights=False)  # compiles the variant without log p
        for draws in DRAWS:
            calls = {
                "sample": partial(approx.sample, draws),
                "ours": partial(to_arviz, approx, draws),
                "no_weights": partial(to_arviz, approx, draws, log_weights=False),
            }
            times: dict[str, list[float]] = {name: [] for name in calls}
            for r in range(args.rounds):
                for name, call in calls.items():
                    times[name].append(seconds(partial(call, random_seed=r)))
            sample, ours, no_weights = (float(np.median(t)) for t in times.values())
            worst = max(worst, ours / sample)
            worst_no_weights = max(worst_no_weights, no_weights / sample)
            cold = f"{first[0] * 1e3:.0f} | {first[1] * 1e3:.0f}" if draws == DRAWS[0] else " | "
            print(f"| {model_name} | {draws} | {sample * 1e3:.1f} | {ours * 1e3:.1f} "
                  f"| {ours / sample:.2f} | {no_weights / sample:.2f} | {cold} |",
                  flush=True)  # fmt: skip
    print(f"\nworst to_arviz / approx.sample ratio (warm): {worst:.2f} (target <= 1.2)")
    print(f"worst with log_weights=False: {worst_no_weights:.2f}")


if __name__ == "__main__":
    main()
