"""Does Adadelta's refinement after the warm start improve the mean, at any posterior scale?

Per posterior: the max |mean error| (reference sds, over every scalar, constrained scale)
of 8,000 draws from the Student-t export with the linear-response covariance, around

- ``warm start``: the fixed-draw optimum alone (no Adadelta phase);
- ``standardized``: `fit()`'s default refinement (accumulators started at the warm
  start's scales, epsilon 1e-16: Adadelta in standardized coordinates);
- ``absolute eps``: the refinement as it was before, ``Adadelta(learning_rate=0.3)`` with
  zero accumulators and epsilon 1e-6 (steps of about sqrt(eps) = 1e-3 in absolute units);

with steps and stop reason of each fit, and the mean `to_arviz` exports after the
standardized fit (the optimum unless the refinement moved the mean by more than its own
Monte Carlo error, `MEAN_NOISE_SDS`). No importance resampling, so that the table
shows the mean itself. Posteriors: ``../shared/posteriordb`` names, and ``scale=S``: a
Gaussian linear regression (200 rows, 3 coefficients) whose posterior sds are about
``0.07 S``, with its exact posterior as the reference.

    python benchmarks/refinement.py                       # sblrc, diamonds, scales 1e-4..1e3
    python benchmarks/refinement.py sblrc-blr scale=1e-4
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pymc as pm

from posteriordb import SHARED

DEFAULT = ["sblrc-blr", "diamonds-diamonds", "scale=1e-4", "scale=1e-2", "scale=1", "scale=1e3"]


def scaled_regression(scale: float) -> tuple[pm.Model, dict, dict]:
    """The regression of ``scale=S``, with its exact posterior mean and sd of ``beta``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ rng.normal(size=3) + rng.normal(size=200)
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 10.0 * scale, shape=3)
        pm.Normal("y", pm.math.dot(X, beta / scale), 1.0, observed=y)
    design = X / scale
    cov = np.linalg.inv(design.T @ design + np.eye(3) / (100.0 * scale**2))
    return model, {"beta": cov @ design.T @ y}, {"beta": np.sqrt(np.diag(cov))}


def max_error(means: dict, ref_mean: dict, ref_sd: dict) -> float:
    return max(float(np.max(np.abs(means[k] - ref_mean[k]) / ref_sd[k]))
               for k in ref_mean if k in means)  # fmt: skip


def score(result, mean: np.ndarray, ref_mean: dict, ref_sd: dict) -> float:
    from pymc_adadelta.approx.corrected import choose_covariance, export_draws
    from pymc_adadelta.approx.draws import evaluate_model

    chosen = choose_covariance(result.approx, result)._replace(mean=mean)
    q = export_draws(result.approx, chosen, 8000, np.random.default_rng(11))
    posterior = evaluate_model(result.approx.model, q.values, with_lp=False).posterior
    return max_error({k: v.mean(0) for k, v in posterior.items()}, ref_mean, ref_sd)


def run(name: str) -> list[str]:
    from pymc_adadelta import Adadelta, fit
    from pymc_adadelta.approx.draws import gaussian_moments

    if name.startswith("scale="):
        model, ref_mean, ref_sd = scaled_regression(float(name.split("=")[1]))
    else:
        sys.path.insert(0, str(SHARED))
        import models  # type: ignore[import-not-found]

        model = models.build(name)
        ref = models.load_ref(name)
        ref_mean = {k: mean for k, (mean, _) in ref.items()}
        ref_sd = {k: sd for k, (_, sd) in ref.items()}
    rows = []
    fits = {"standardized": {}, "absolute eps": {"optimizer": Adadelta(learning_rate=0.3)}}
    warm_error = None
    for label, kwargs in fits.items():
        began = time.perf_counter()
        result = fit(model=model, random_seed=11, progressbar=False, **kwargs)
        wall = time.perf_counter() - began
        fitted = np.concatenate([gaussian_moments(g).mean for g in result.approx.groups])
        if warm_error is None:
            optimum = np.asarray(result.warm_start.mean)
            warm_error = score(result, optimum, ref_mean, ref_sd)
            rows.append(f"| {name} | warm start | - | - | {warm_error:.3f} |")
        error = score(result, fitted, ref_mean, ref_sd)
        rows.append(f"| {name} | {label} | {result.n_steps} ({result.stop_reason}) | "
                    f"{wall:.1f} | {error:.3f} |")  # fmt: skip
        if label == "standardized":
            from pymc_adadelta.approx.corrected import choose_covariance

            chosen = choose_covariance(result.approx, result)
            exported = score(result, chosen.mean, ref_mean, ref_sd)
            rows.append(f"| {name} | to_arviz's choice: {chosen.mean_label} | - | - | "
                        f"{exported:.3f} |")  # fmt: skip
    return rows


def main() -> None:
    warnings.simplefilter("ignore")
    names = sys.argv[1:] or DEFAULT
    print("| posterior | mean from | steps (stop) | wall s | max \\|mean err\\| (ref sd) |")
    print("|---|---|---|---|---|")
    for name in names:
        for row in run(name):
            print(row, flush=True)


if __name__ == "__main__":
    main()
