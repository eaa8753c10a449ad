"""Minibatch fits against the full-data answer: `fit()`, `pm.fit(adam)`, MAP+Laplace.

Each (model, N, method) runs in its own child process so that its peak memory (ru_maxrss)
is its own. Data: 20 standardized features, logistic or Poisson regression, batch 1000.
N=1e7 is written to a zarr store and streamed with `StreamingBatches` (never in memory).

    python benchmarks/minibatch.py --sizes 1e5 1e6 --models logistic poisson
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

D, BATCH = 20, 1000


def data(model: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, D))
    beta = rng.normal(0, 0.3, D)
    eta = x @ beta - 0.5
    y = rng.random(n) < 1 / (1 + np.exp(-eta)) if model == "logistic" else rng.poisson(np.exp(eta))
    return x, y.astype("float64")


def build(model: str, x: object, y: object, n: int, total: int | None) -> object:
    import pymc as pm

    with pm.Model() as m:
        a = pm.Normal("a", 0, 5)
        b = pm.Normal("b", 0, 5, shape=D)
        eta = a + pm.math.dot(x, b)
        if model == "logistic":
            pm.Bernoulli("y", logit_p=eta, observed=y, total_size=total)
        else:
            pm.Poisson("y", mu=pm.math.exp(eta), observed=y, total_size=total)
    return m


def run_one(model: str, n: int, method: str) -> dict:
    warnings.filterwarnings("ignore")
    import pymc as pm

    import pymc_adadelta as pa

    x, y = data(model, n)
    t = time.perf_counter()
    if method == "laplace":
        with build(model, x, y, n, None) as m:
            mp = pm.find_MAP(progressbar=False)
            h = pm.find_hessian(mp, vars=[m["a"], m["b"]])
        mean = np.concatenate([[mp["a"]], mp["b"]])
        sd = np.sqrt(np.diag(np.linalg.inv(h)))
        out = {"passes": float("nan"), "stop": "-"}
    elif method in ("fit_minibatch", "pm_fit_adam"):
        model_ = _minibatch_model(model, x, y, n)
        with model_:
            if method == "fit_minibatch":
                r = pa.fit(random_seed=1, progressbar=False)
                approx = r.approx
                out = {"passes": r.history.attrs.get("passes"), "stop": r.stop_reason}
            else:
                steps = int(min(20 * n / BATCH, 20_000))
                approx = pm.fit(steps, obj_optimizer=pm.adam(), progressbar=False,
                                random_seed=1)  # fmt: skip
                out = {"passes": steps * BATCH / n, "stop": "max_steps"}
        mean, sd = approx.mean.eval(), approx.std.eval()
    else:  # full-data fit()
        with build(model, x, y, n, None):
            r = pa.fit(random_seed=1, progressbar=False)
        mean, sd = r.approx.mean.eval(), r.approx.std.eval()
        out = {"passes": float(r.n_steps), "stop": r.stop_reason}
    out.update(seconds=time.perf_counter() - t, mean=mean.tolist(), sd=sd.tolist(),
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # fmt: skip
    return out


def _minibatch_model(model: str, x: np.ndarray, y: np.ndarray, n: int) -> object:
    import pymc as pm

    with pm.Model() as m:
        xm, ym = pm.Minibatch(x, y, batch_size=BATCH)
        a = pm.Normal("a", 0, 5)
        b = pm.Normal("b", 0, 5, shape=D)
        eta = a + pm.math.dot(xm, b)
        if model == "logistic":
            pm.Bernoulli("y", logit_p=eta, observed=ym, total_size=n)
        else:
            pm.Poisson("y", mu=pm.math.exp(eta), observed=ym, total_size=n)
    return m


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["1e5", "1e6"])
    parser.add_argument("--models", nargs="+", default=["logistic", "poisson"])
    parser.add_argument(
        "--methods", nargs="+", default=["laplace", "fit_minibatch", "pm_fit_adam", "fit_full"]
    )
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        model, n, method = args.child
        print(json.dumps(run_one(model, int(float(n)), method)))
        return
    for model in args.models:
        for size in args.sizes:
            rows = {}
            for method in args.methods:
                proc = subprocess.run([sys.executable, __file__, "--child", model, size, method],
                                      capture_output=True, text=True, env=os.environ)  # fmt: skip
                if proc.returncode:
                    print(f"{model} {size} {method} failed: {proc.stderr[-500:]}", flush=True)
                    continue
                rows[method] = json.loads(proc.stdout.strip().splitlines()[-1])
            ref = rows.get("laplace")
            for method, r in rows.items():
                err = ratio = "-"
                if ref is not None:
                    e = np.abs(np.array(r["mean"]) - ref["mean"]) / np.array(ref["sd"])
                    q = np.array(r["sd"]) / np.array(ref["sd"])
                    err, ratio = f"{e.max():.3f}", f"{q.min():.2f}-{q.max():.2f}"
                print(f"| {model} | {size} | {method} | {r['seconds']:.1f} | {r['passes']} | "
                      f"{r['stop']} | {r['peak_mb']:.0f} | {err} | {ratio} |", flush=True)  # fmt: skip  # noqa: E501


if __name__ == "__main__":
    main()
