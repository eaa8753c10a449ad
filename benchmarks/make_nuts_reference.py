"""Run long NUTS fits of the benchmark models once and store posterior means and sds.

Usage: ``python benchmarks/make_nuts_reference.py`` (writes benchmarks/nuts_reference.json).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pymc as pm

from models import MODELS

warnings.filterwarnings("ignore")
OUT = pathlib.Path(__file__).with_name("nuts_reference.json")


def summarize(model: pm.Model) -> dict[str, dict[str, list]]:
    with model:
        idata = pm.sample(
            2000, tune=1000, chains=4, cores=2, random_seed=11, target_accept=0.95,
            progressbar=False, compute_convergence_checks=False,
        )  # fmt: skip
    posterior = idata.posterior if hasattr(idata, "posterior") else idata["posterior"]
    return {
        name: {
            "mean": np.asarray(posterior[name].mean(("chain", "draw"))).ravel().tolist(),
            "sd": np.asarray(posterior[name].std(("chain", "draw"))).ravel().tolist(),
        }
        for name in model.named_vars
        if name in posterior
    }


def main() -> None:
    reference = {name: summarize(build()) for name, (build, _) in MODELS.items()}
    reference["_about"] = {"sampler": "NUTS 4x2000 draws, 1000 tune, target_accept 0.95",
                           "pymc": pm.__version__}  # fmt: skip
    OUT.write_text(json.dumps(reference, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
