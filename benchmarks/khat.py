"""PSIS k-hat of mean-field ADVI (Adadelta, 10,000 steps) on known-good and known-bad
models, for several numbers of draws and seeds: how well `psis_khat` flags a poor
approximation and how noisy it is.

Usage::

    python benchmarks/khat.py [--seeds 4]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import warnings

import numpy as np
import pymc as pm

from models import MODELS
from pymc_adadelta import adadelta, psis_khat

warnings.filterwarnings("ignore")
DRAWS = (1000, 4000, 8000, 16000)
STEPS = 10_000
SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SD = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def centered_schools() -> pm.Model:
    """Centered eight schools: a funnel that mean-field ADVI cannot represent."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta = pm.Normal("theta", mu, tau, shape=8)
        pm.Normal("y", theta, SCHOOLS_SD, observed=SCHOOLS_Y)
    return model


def collinear_regression() -> pm.Model:
    """Two predictors with correlation 0.99995: mean field misses the correlation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    X = np.column_stack([x, x + 0.01 * rng.normal(size=100), rng.normal(size=100)])
    with pm.Model() as model:
        b = pm.Normal("b", 0.0, 10.0, shape=3)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", X @ b, sigma, observed=X @ [1.0, 1.0, -0.5] + rng.normal(size=100))
    return model


def gaussian_means() -> pm.Model:
    """Normal means with known noise: the posterior is exactly mean-field Gaussian."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0, shape=2)
        pm.Normal("y", mu, 1.0, observed=np.random.default_rng(0).normal(size=(50, 2)))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    print(f"# khat  {datetime.date.today()}  {platform.machine()}  pymc {pm.__version__}")
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
