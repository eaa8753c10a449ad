"""PSIS k-hat of mean-field ADVI (Adadelta, 10,000 steps) on known-good and known-bad
models, for several numbers of draws and seeds: how well `psis_khat` flags a poor
approximation and how noisy it is.

Usage::

    python benchmarks/khat.py [--seeds 4]
"""

from __future__ import annotations

import argparse
import warnings

import pymc as pm

from models import MODELS, centered_schools, collinear_regression, gaussian_means
from pymc_adadelta import adadelta, psis_khat
from run_info import header

warnings.filterwarnings("ignore")
DRAWS = (1000, 4000, 8000, 16000)
STEPS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    print(header("khat"))
    print("| model | " + " | ".join(f"{d} draws: min to max" for d in DRAWS) + " |")
    print("|---|" + "---|" * len(DRAWS))
    builders = {
        "gaussian_means (exact)": gaussian_means,
        "centered_schools": centered_schools,
        "collinear_regression": collinear_regression,
        **{name: build for name, (build, _) in MODELS.items()},
    }
    for name, build in builders.items():
        with build():
            approx = pm.fit(STEPS, obj_optimizer=adadelta(), progressbar=False, random_seed=1)
        cells = []
        for draws in DRAWS:
            khats = [psis_khat(approx, draws, random_seed=s) for s in range(args.seeds)]
            cells.append(f"{min(khats):.2f} to {max(khats):.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
