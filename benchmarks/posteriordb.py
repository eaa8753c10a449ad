"""fit() on the 11 posteriordb posteriors of ../shared/posteriordb, against their references.

Per posterior and method: wall time (model build excluded; compilation, warm start, fit
and ``to_arviz`` with its defaults included), steps, stop reason, warm-start time and its
linear-response share, the covariance exported, max |mean error| (ref sds), sd ratio
range, PSIS k-hat (exported), and beside them the NUTS / nutpie figures of ANCHORS.md.

    python benchmarks/posteriordb.py                      # all, advi and fullrank_advi
    python benchmarks/posteriordb.py --models arK-arK kidiq-kidscore_momiq --methods advi
    python benchmarks/posteriordb.py --nutpie             # also re-measure nutpie here
    python benchmarks/posteriordb.py --json out.json
    python benchmarks/posteriordb.py --table out.json      # the table of a saved run

Each (posterior, method) runs in its own process, one at a time (2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: ../shared/posteriordb next to the repository (or $POSTERIORDB).
SHARED = Path(
    os.environ.get("POSTERIORDB", Path(__file__).resolve().parents[2] / "shared" / "posteriordb")
)
MEAN_TOL, SD_RANGE, KHAT_OK = 0.10, (0.8, 1.25), 0.7


def anchors() -> dict[tuple[str, str], dict[str, float]]:
    """ANCHORS.md's full table: ``{(posterior, "nuts"|"nutpie"): {wall, err, lo, hi}}``."""
    rows = {}
    for line in (SHARED / "ANCHORS.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7 or cells[1] not in ("NUTS (PyMC)", "NUTS (nutpie)"):
            continue
        try:
            values = [float(c) for c in cells[2:7]]
        except ValueError:
            continue
        kind = "nuts" if cells[1] == "NUTS (PyMC)" else "nutpie"
        rows[(cells[0], kind)] = dict(zip(("wall", "warm", "err", "lo", "hi"), values, strict=True))
    return rows


def run_one(name: str, method: str) -> dict:
    """Fit one posterior in this process and score the default export."""
    import warnings

    sys.path.insert(0, str(SHARED))
    import numpy as np

    import models  # type: ignore[import-not-found]
    from pymc_adadelta import fit, to_arviz
    from pymc_adadelta._compat import arviz_group, arviz_root_attrs

    model = models.build(name)
    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(model=model, method=method, random_seed=11, progressbar=False)
        data = to_arviz(result, random_seed=11)
    wall = time.perf_counter() - began
    posterior = arviz_group(data, "posterior")
    means = {k: posterior[k].mean(("chain", "draw")).to_numpy() for k in posterior.data_vars}
    sds = {k: posterior[k].std(("chain", "draw"), ddof=1).to_numpy() for k in posterior.data_vars}
    worst = models.compare(name, means, sds)["_worst"]
    attrs = arviz_root_attrs(data)
    started = result.warm_start
    return {
        "posterior": name, "method": method, "wall": wall, "steps": int(result.n_steps),
        "stop": result.stop_reason, "err": worst["max_mean_err_sd"],
        "lo": worst["sd_ratio_min"], "hi": worst["sd_ratio_max"],
        "khat": float(attrs.get("psis_khat", np.nan)), "covariance": attrs.get("covariance"),
        "warm": None if started is None else started.reason,
        "warm_s": None if started is None else started.seconds,
        "lr_s": None if started is None else started.covariance_seconds,
        "lr": None if started is None else started.covariance_reason,
        "flagged": any("k-hat" in str(w.message) for w in caught),
    }  # fmt: skip


def run_nutpie(name: str) -> dict:
    """nutpie as in ANCHORS.md (2 chains x 1000, seed 11), on this machine."""
    sys.path.insert(0, str(SHARED))
    import nutpie

    import models  # type: ignore[import-not-found]

    model = models.build(name)
    began = time.perf_counter()
    kwargs = {"target_accept": 0.95} if name.startswith(("eight", "gp_")) else {}
    compiled = nutpie.compile_pymc_model(model)
    trace = nutpie.sample(compiled, draws=1000, tune=1000, chains=2, cores=1, seed=11,
                          progress_bar=False, **kwargs)  # fmt: skip
    wall = time.perf_counter() - began
    post = trace.posterior
    means = {k: post[k].mean(("chain", "draw")).to_numpy() for k in post.data_vars}
    sds = {k: post[k].std(("chain", "draw"), ddof=1).to_numpy() for k in post.data_vars}
    worst = models.compare(name, means, sds)["_worst"]
    return {"posterior": name, "method": "nutpie (here)", "wall": wall,
            "err": worst["max_mean_err_sd"], "lo": worst["sd_ratio_min"],
            "hi": worst["sd_ratio_max"]}  # fmt: skip


def _subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False)  # fmt: skip
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:200]}


def _ok(row: dict) -> str:
    mean_ok = row.get("err", float("inf")) <= MEAN_TOL
    sd_ok = SD_RANGE[0] <= row.get("lo", 0) and row.get("hi", float("inf")) <= SD_RANGE[1]
    return ("m" if mean_ok else "-") + ("s" if sd_ok else "-")


def _ratio(row: dict, here: dict) -> str:
    """Our wall time over nutpie's in the same run ("-" for nutpie's own row)."""
    if row.get("method") == "nutpie (here)" or row["posterior"] not in here:
        return "-"
    return f"{row['wall'] / here[row['posterior']]:.2f}"


def table(rows: list[dict], anchor: dict) -> str:
    head = (
        "| posterior | method | wall s | steps | stop | warm start s (LR s) | covariance "
        "| max \\|mean err\\| | sd ratio | k-hat | ok | NUTS wall s / err "
        "| nutpie wall s / err |"
    )
    lines = [head.replace("| wall s |", "| wall s | ÷ nutpie here |"), "|" + "---|" * 14]
    here = {r["posterior"]: r["wall"] for r in rows if r.get("method") == "nutpie (here)"}
    for r in rows:
        short = r["posterior"].split("-")[-1]
        if "error" in r:
            lines.append(f"| {short} | {r['method']} | crash: {r['error']} |" + " |" * 11)
            continue
        nuts = anchor.get((r["posterior"], "nuts"), {})
        pie = anchor.get((r["posterior"], "nutpie"), {})
        warm = "-" if r.get("warm_s") is None else f"{r['warm_s']:.1f} ({r['lr_s']:.2f})"
        flag = " ⚑" if r.get("flagged") else ""
        lines.append(
            f"| {short} | {r['method']} | {r['wall']:.1f} | {_ratio(r, here)} | "
            f"{r.get('steps', '-')} | "
            f"{r.get('stop', '-')} | {warm} | {r.get('covariance', '-')} | {r['err']:.3f} | "
            f"{r['lo']:.2f}-{r['hi']:.2f} | {r.get('khat', float('nan')):.2f}{flag} | {_ok(r)} | "
            f"{nuts.get('wall', float('nan')):.1f} / {nuts.get('err', float('nan')):.3f} | "
            f"{pie.get('wall', float('nan')):.1f} / {pie.get('err', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="posteriordb names (default: all 11)")
    parser.add_argument("--methods", nargs="*", default=["advi", "fullrank_advi"])
    parser.add_argument("--nutpie", action="store_true", help="also re-measure nutpie here")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--table", help="only print the table of rows saved with --json")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--one-nutpie", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(*args.one)), flush=True)
        return
    if args.one_nutpie:
        print("RESULT " + json.dumps(run_nutpie(args.one_nutpie)), flush=True)
        return
    if args.table:
        print(table(json.loads(Path(args.table).read_text()), anchors()))
        return
    sys.path.insert(0, str(SHARED))
    import models  # type: ignore[import-not-found]

    names = args.models or list(models.POSTERIORS)
    rows = []
    for name in names:
        for method in args.methods:
            row = _subprocess(["--one", name, method])
            row.setdefault("posterior", name)
            row.setdefault("method", method)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.nutpie:
            rows.append(_subprocess(["--one-nutpie", name]))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, anchors()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    code = (
        "import sys,pymc,pytensor,arviz;print(sys.version.split()[0],pymc.__version__,"
        "pytensor.__version__,arviz.__version__)"
    )
    versions = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"\n{time.strftime('%Y-%m-%d')}; Python, PyMC, PyTensor, ArviZ: {versions}")


if __name__ == "__main__":
    main()
