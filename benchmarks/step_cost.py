"""Seconds per compiled VI step: sgd vs ``pm.adadelta`` vs ``pymc_adadelta.adadelta``.

A fourth column, ``sgd+state``, is sgd plus one extra shared array updated by a trivial
op: the least any optimizer that keeps state in the graph can cost on that backend.

All step functions of a row are compiled from the same model and timed in turns
(round robin, several rounds, best block of each kept), in one process, so that the
ratios are comparable on a noisy shared machine. Prints one table per backend.

Usage::

    python benchmarks/step_cost.py [--backends c numba] [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
import warnings

import numpy as np
import pymc as pm
import pytensor

from models import synthetic_regression as regression
from pymc_adadelta import adadelta
from pymc_adadelta._compat import BACKEND_MODES, available_backends

warnings.filterwarnings("ignore")

# (method, latent dimension) -> number of variational parameters 2d or d + d(d+1)/2
ROWS = [("advi", 1), ("advi", 100), ("advi", 1000), ("fullrank_advi", 1), ("fullrank_advi", 19),
        ("fullrank_advi", 62)]  # fmt: skip


def sgd_with_one_state_array(grads: list, params: list) -> dict:
    """Sgd plus one extra shared array bumped by a trivial op: the cost floor of any
    optimizer that keeps state in the graph, whatever its arithmetic."""
    updates = pm.sgd(grads, params, learning_rate=1e-3)
    size = sum(p.get_value().size for p in params)
    state = pytensor.shared(np.zeros((2, size + 1)), name="state")
    updates[state] = state + 1.0
    return updates


def step_functions(model: pm.Model, method: str, mode: str) -> dict:
    optimizers = {"sgd": pm.sgd(learning_rate=1e-3), "sgd+state": sgd_with_one_state_array,
                  "pm.adadelta": pm.adadelta(), "ours": adadelta()}  # fmt: skip
    steps = {}
    for name, optimizer in optimizers.items():
        with model:
            inference = pm.ADVI() if method == "advi" else pm.FullRankADVI()
            steps[name] = inference.objective.step_function(
                obj_optimizer=optimizer, compile_kwargs={"mode": mode}
            )
    return steps


def time_round_robin(steps: dict, rounds: int, target_s: float = 0.05) -> dict[str, float]:
    for step in steps.values():  # warm up and size the blocks
        for _ in range(50):
            step()
    t0 = time.perf_counter()
    for _ in range(50):
        steps["sgd"]()
    block = max(20, int(target_s / ((time.perf_counter() - t0) / 50)))
    best = dict.fromkeys(steps, np.inf)
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            best[name] = min(best[name], (time.perf_counter() - t0) / block)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", nargs="+", default=[b for b in ("c", "numba")
                        if b in available_backends()])  # fmt: skip
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smallest rows only")
    args = parser.parse_args()
    versions = f"pymc {pm.__version__}  pytensor {pytensor.__version__}"
    print(f"# step_cost  {datetime.date.today()}  {platform.machine()}  "
          f"python {platform.python_version()}  {versions}")  # fmt: skip
    rows = ROWS[:2] if args.quick else ROWS
    worst = 0.0
    for backend in args.backends:
        print(f"\nbackend={backend}")
        print("| method | latent d | params | sgd µs/step | sgd+state / sgd | pm.adadelta / sgd "
              "| ours / sgd | ours / pm.adadelta |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for method, d in rows:
            n_params = 2 * d if method == "advi" else d + d * (d + 1) // 2
            steps = step_functions(regression(d), method, BACKEND_MODES[backend])
            t = time_round_robin(steps, args.rounds)
            ours, theirs = t["ours"] / t["sgd"], t["pm.adadelta"] / t["sgd"]
            worst = max(worst, ours)
            floor = t["sgd+state"] / t["sgd"]
            print(f"| {method} | {d} | {n_params} | {t['sgd'] * 1e6:.1f} | {floor:.3f} "
                  f"| {theirs:.3f} | {ours:.3f} | {t['ours'] / t['pm.adadelta']:.3f} |",
                  flush=True)  # fmt: skip
    print(f"\nworst ours/sgd: {worst:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
