"""Does the fit stop by itself, and how close does it get? Compared against long NUTS runs.

For each real-data model in ``models.py``: PyMC's defaults (``pm.fit()``: 10k steps of
ADVI with adagrad_window), ``pm.adadelta`` for 50k steps, ``pymc_adadelta.fit()`` (warm
start, then Adadelta until the "mcse" rule stops it; 50k at most) and
``fit(warm_start=False)`` (Adadelta from PyMC's start until the R-hat rule stops it).
Prints steps used, wall time, the largest |posterior mean error| in NUTS standard
deviations over every coordinate of every variable, and the median ratio of VI to NUTS
standard deviations. NUTS summaries come from ``nuts_reference.json``
(``make_nuts_reference.py``).

Usage: ``python benchmarks/convergence.py [--seeds 11,12,13] [--ours-only | --rules]``
(``--rules``: Stan's relative-ELBO rule and the CUSUM rule of pymc#8384 on the same fits).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import time
import warnings

import numpy as np
import pymc as pm

from models import MODELS
from pymc_adadelta import fit, to_arviz

warnings.filterwarnings("ignore")
METHODS = ("pm.fit defaults", "pm.adadelta 50k", "pymc_adadelta.fit()", "fit(warm_start=False)")
#: Loss-only rules, compared on the same Adadelta fits without a warm start.
RULES = ('no warm start, convergence="stan"', 'no warm start, convergence="cusum"')
REFERENCE = json.loads(pathlib.Path(__file__).with_name("nuts_reference.json").read_text())


def errors(approx, reference: dict, seed: int) -> tuple[float, float]:
    posterior = to_arviz(approx, 4000, random_seed=seed, log_weights=False)["posterior"]
    z, ratios = [], []
    for name, ref in reference.items():
        values = np.asarray(posterior[name]).reshape(-1, len(ref["mean"]))
        sd = np.asarray(ref["sd"])
        z.extend(np.abs(values.mean(axis=0) - ref["mean"]) / sd)
        ratios.extend(values.std(axis=0) / sd)
    return float(np.max(z)), float(np.median(ratios))


def run(name: str, how: str, seed: int) -> tuple[int, float, object]:
    model = MODELS[name][0]()
    t0 = time.perf_counter()
    with model:
        if how == "pm.fit defaults":
            approx = pm.fit(random_seed=seed, progressbar=False)
            steps = len(approx.hist)
        elif how == "pm.adadelta 50k":
            approx = pm.fit(50_000, obj_optimizer=pm.adadelta(), random_seed=seed,
                            progressbar=False)  # fmt: skip
            steps = len(approx.hist)
        else:
            warm = how == "pymc_adadelta.fit()"
            rule = how.split("convergence=")[1].strip('")') if "convergence=" in how else "auto"
            result = fit(random_seed=seed, progressbar=False, warm_start=warm, convergence=rule)
            approx, steps = result.approx, result.n_steps
    return steps, time.perf_counter() - t0, approx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="11")
    parser.add_argument("--ours-only", action="store_true", help="only pymc_adadelta.fit()")
    parser.add_argument("--rules", action="store_true", help="only the loss-only rules")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# convergence  {datetime.date.today()}  python {platform.python_version()}  "
          f"pymc {pm.__version__}  seeds {args.seeds}")  # fmt: skip
    print("| model | gaussian | method | seed | steps | seconds | max mean error (NUTS sd) "
          "| median sd ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    methods = [m for m in METHODS if not args.ours_only or m == "pymc_adadelta.fit()"]
    methods = list(RULES) if args.rules else methods
    for name, (_, gaussian) in MODELS.items():
        for how in methods:
            for seed in seeds:
                steps, seconds, approx = run(name, how, seed)
                max_err, sd_ratio = errors(approx, REFERENCE[name], seed)
                row = f"| {name} | {'yes' if gaussian else 'no'} | {how} | {seed} | {steps} "
                print(f"{row}| {seconds:.1f} | {max_err:.3f} | {sd_ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
