"""Minibatch fits against the full-data answer: `fit()`, `pm.fit(adam)`, MAP+Laplace.

Each (model, N, method) runs in its own child process so that its peak memory (ru_maxrss)
is its own. Data: 20 standardized features, logistic or Poisson regression, batch 1000.
From N=1e7 on (``--stream-from``) the rows are written chunk by chunk to a zarr store in
a temporary folder (deleted afterwards) and the minibatch fits stream them with
`StreamingBatches`, never holding them in memory; full-data MAP+Laplace loads them
(its peak memory includes them); the full-data `fit()` runs up to N=1e5 only (it takes
Adadelta steps over all rows: 256 s at 1e5).

    python benchmarks/minibatch.py --sizes 1e5 1e6 1e7 --models logistic poisson
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

D, BATCH = 20, 1000
STORE_CHUNK = 1 << 16  # rows per zarr chunk
#: Largest N of the full-data `fit()`: it takes Adadelta steps on all rows (256 s at 1e5).
FULL_FIT_MAX = 1e5


def data(model: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, D))
    beta = rng.normal(0, 0.3, D)
    eta = x @ beta - 0.5
    y = rng.random(n) < 1 / (1 + np.exp(-eta)) if model == "logistic" else rng.poisson(np.exp(eta))
    return x, y.astype("float64")


def write_store(model: str, n: int, path: Path) -> None:
    """The data of `data` for ``n`` rows, written to zarr arrays ``x`` and ``y`` in chunks."""
    import zarr

    group = zarr.open_group(path, mode="w")
    xs = group.create_array("x", shape=(n, D), chunks=(STORE_CHUNK, D), dtype="float64")
    ys = group.create_array("y", shape=(n,), chunks=(STORE_CHUNK,), dtype="float64")
    rng = np.random.default_rng(n)
    beta = np.random.default_rng(0).normal(0, 0.3, D)
    for start in range(0, n, STORE_CHUNK):
        x = rng.normal(size=(min(STORE_CHUNK, n - start), D))
        eta = x @ beta - 0.5
        y = rng.random(len(x)) < 1 / (1 + np.exp(-eta)) if model == "logistic" else rng.poisson(
            np.exp(eta))  # fmt: skip
        xs[start : start + len(x)] = x
        ys[start : start + len(x)] = y.astype("float64")


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


def run_one(model: str, n: int, method: str, store: str | None = None) -> dict:
    warnings.filterwarnings("ignore")
    import pymc as pm

    import pymc_adadelta as pa

    if method == "fit_full" and n > FULL_FIT_MAX:
        raise SystemExit("fit_full is left out above FULL_FIT_MAX")
    stream = None
    if store is None:
        x, y = data(model, n)
    else:
        import zarr

        group = zarr.open_group(store, mode="r")
        if method == "laplace":
            x, y = group["x"][:], group["y"][:]
    t = time.perf_counter()
    if method == "laplace":
        with build(model, x, y, n, None) as m:
            mp = pm.find_MAP(progressbar=False)
            h = pm.find_hessian(mp, vars=[m["a"], m["b"]])
        mean = np.concatenate([[mp["a"]], mp["b"]])
        sd = np.sqrt(np.diag(np.linalg.inv(h)))
        out = {"passes": float("nan"), "stop": "-"}
    elif method in ("fit_minibatch", "pm_fit_adam"):
        if store is None:
            model_ = _minibatch_model(model, x, y, n)
        else:
            model_ = _streamed_model(model, group["x"], n)
            with model_:
                stream = pa.StreamingBatches({"x": group["x"], "y": group["y"]},
                                             batch_size=BATCH, random_seed=1)  # fmt: skip
        with model_:
            if method == "fit_minibatch":
                r = pa.fit(random_seed=1, progressbar=False,
                           callbacks=[stream] if stream else None)  # fmt: skip
                approx = r.approx
                out = {"passes": r.history.attrs.get("passes"), "stop": r.stop_reason}
                fit_seconds = time.perf_counter() - t
                out["peak_fit_mb"] = _peak_mb()
                out.update(_export(r, model_, n))
            else:
                steps = int(min(20 * n / BATCH, 20_000))
                approx = pm.fit(steps, obj_optimizer=pm.adam(), progressbar=False,
                                random_seed=1, callbacks=[stream] if stream else None)  # fmt: skip
                out = {"passes": steps * BATCH / n, "stop": "max_steps"}
        mean, sd = approx.mean.eval(), approx.std.eval()
    else:  # full-data fit()
        with build(model, x, y, n, None):
            r = pa.fit(random_seed=1, progressbar=False)
        mean, sd = r.approx.mean.eval(), r.approx.std.eval()
        out = {"passes": float(r.n_steps), "stop": r.stop_reason}
    seconds = fit_seconds if method == "fit_minibatch" else time.perf_counter() - t
    out.update(seconds=seconds, mean=mean.tolist(), sd=sd.tolist(), peak_mb=_peak_mb())
    out.setdefault("peak_fit_mb", out["peak_mb"])
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _export(result: object, model: object, n: int) -> dict:
    """`to_arviz` with log weights: its time, k-hat, and its log p against the exact one.

    The exact full-data log p of the first exported draws (``a`` and ``b`` are their own
    unconstrained values) checks the difference estimator's stated error sd.
    """
    import pymc_adadelta as pa
    from pymc_adadelta.approx.full_data import full_data

    t = time.perf_counter()
    _import_arviz()  # once per process (a notebook has done it): timed on its own
    arviz_seconds = time.perf_counter() - t
    t = time.perf_counter()
    data = pa.to_arviz(result, random_seed=2)
    seconds = time.perf_counter() - t
    attrs, stats = data.attrs, data["sample_stats"]
    k = int(max(10, min(100, 2e8 / n)))  # exact draws: at most 2e8 likelihood terms
    post = data["posterior"]
    values = {"a": post["a"].values[0, :k], "b": post["b"].values[0, :k]}
    error = stats["lp"].values[0, :k] - full_data(model).logp(values)
    stated = stats["lp_error_sd"].values[0, :k] if "lp_error_sd" in stats else np.zeros(k)
    return {"export_seconds": seconds, "arviz_import_seconds": arviz_seconds,
            "khat": attrs["psis_khat"],
            "lp_estimator": attrs["lp_estimator"], "lp_error_sd": attrs.get("lp_error_sd", 0.0),
            "lp_rows": [attrs.get("lp_hessian_rows", n), attrs.get("lp_residual_rows", n)],
            "checked": k, "max_error": float(np.abs(error).max()),
            "max_z": float(np.max(np.abs(error) / np.maximum(stated, 1e-300)))}  # fmt: skip


def _import_arviz() -> None:
    """What the export imports from ArviZ: ``arviz`` (0.x) or arviz-base and arviz-stats (1.x).

    ArviZ 1 takes over a second to import on these machines (arviz-base lazily loads
    jax and numpyro, and a missing numpyro makes lazy_loader inspect the whole stack).
    """
    import arviz  # noqa: F401

    try:
        import arviz_base  # noqa: F401
        import arviz_stats  # noqa: F401
    except ImportError:  # ArviZ 0.x
        pass


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


def _streamed_model(model: str, xs: object, n: int) -> object:
    import pymc as pm

    with pm.Model() as m:
        xm = pm.Data("x", np.zeros((BATCH, D)))
        ym = pm.Data("y", np.zeros(BATCH))
        a = pm.Normal("a", 0, 5)
        b = pm.Normal("b", 0, 5, shape=D)
        eta = a + pm.math.dot(xm, b)
        if model == "logistic":
            pm.Bernoulli("y_obs", logit_p=eta, observed=ym, total_size=n)
        else:
            pm.Poisson("y_obs", mu=pm.math.exp(eta), observed=ym, total_size=n)
    return m


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["1e5", "1e6"])
    parser.add_argument("--models", nargs="+", default=["logistic", "poisson"])
    parser.add_argument(
        "--methods", nargs="+", default=["laplace", "fit_minibatch", "pm_fit_adam", "fit_full"]
    )
    parser.add_argument("--stream-from", type=float, default=1e7,
                        help="stream the data from a zarr store from this N on")  # fmt: skip
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        model, n, method, *store = args.child
        print(json.dumps(run_one(model, int(float(n)), method, *store)))
        return
    from run_info import header

    print(header("minibatch"), flush=True)
    print("| model | N | method | seconds | passes | stop | peak MB | max mean error (sd) "
          "| sd ratio |\n| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | --- |",
          flush=True)  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="minibatch_bench_", dir="/tmp"))
    try:
        for model in args.models:
            for size in args.sizes:
                _table(model, size, args.methods, folder, float(size) >= args.stream_from)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _print_exports()


def _table(model: str, size: str, methods: list[str], folder: Path, streamed: bool) -> None:
    store: list[str] = []
    if streamed:
        path = folder / f"{model}_{size}.zarr"
        write_store(model, int(float(size)), path)
        store = [str(path)]
    if streamed or float(size) > FULL_FIT_MAX:
        methods = [m for m in methods if m != "fit_full"]
    try:
        rows = {}
        for method in methods:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", model, size, method, *store],
                capture_output=True, text=True, env=os.environ,
            )  # fmt: skip
            if proc.returncode:
                print(f"{model} {size} {method} failed: {proc.stderr[-500:]}", flush=True)
                continue
            rows[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if store:
            shutil.rmtree(store[0], ignore_errors=True)
    ref = rows.get("laplace")
    if "fit_minibatch" in rows:
        _export_row(model, size, bool(store), rows["fit_minibatch"])
    for method, r in rows.items():
        err = ratio = "-"
        if ref is not None:
            e = np.abs(np.array(r["mean"]) - ref["mean"]) / np.array(ref["sd"])
            q = np.array(r["sd"]) / np.array(ref["sd"])
            err, ratio = f"{e.max():.3f}", f"{q.min():.2f}-{q.max():.2f}"
        passes = "-" if r["passes"] != r["passes"] else f"{r['passes']:.1f}"
        print(
            f"| {model} | {size}{' (zarr)' if store else ''} | {method} | {r['seconds']:.1f} "
            f"| {passes} | {r['stop']} | {r['peak_mb']:.0f} | {err} | {ratio} |",
            flush=True,
        )


EXPORTS: list[str] = []


def _export_row(model: str, size: str, streamed: bool, r: dict) -> None:
    """One line of the export table, printed at the end."""
    EXPORTS.append(
        f"| {model} | {size}{' (zarr)' if streamed else ''} | {r['seconds']:.1f} "
        f"| {r['arviz_import_seconds']:.1f} | {r['export_seconds']:.1f} "
        f"| {r['export_seconds'] / r['seconds']:.2f} "
        f"| {r['lp_rows'][0]} / {r['lp_rows'][1]} | {r['lp_error_sd']:.3f} "
        f"| {r['max_error']:.3f} ({r['checked']}) | {r['max_z']:.1f} | {r['khat']:.2f} "
        f"| {r['peak_fit_mb']:.0f} / {r['peak_mb']:.0f} |"
    )


EXPORT_COLUMNS = (
    "model", "N", "fit s", "ArviZ import s", "export s", "export / fit", "lp rows (T / S)",
    "stated error sd (p99, nats)", "max actual error (draws)", "max error / stated sd",
    "k-hat", "peak MB fit / export",
)  # fmt: skip


def _print_exports() -> None:
    if not EXPORTS:
        return
    print("\n`to_arviz(result)` after `fit()` on the minibatch model (default 4,000 draws, "
          "8,000 proposals with log weights; ArviZ imported first, timed on its own):\n\n"
          f"| {' | '.join(EXPORT_COLUMNS)} |\n| --- | --- |{' ---: |' * (len(EXPORT_COLUMNS) - 2)}",
          flush=True)  # fmt: skip
    print("\n".join(EXPORTS), flush=True)


if __name__ == "__main__":
    main()
