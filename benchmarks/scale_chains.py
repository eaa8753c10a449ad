"""Several fits at once: 4 fits in 2 worker processes against the same 4 one after another.

Both runs are one call of ``fit(..., chains=4)`` on the same model with the same seeds,
so they do the same work: ``cores=2`` runs the chains in a forkserver process pool,
``cores=1`` runs them one after another in this process; both then rebuild the results
and compute R-hat and ESS across the fits. With dask installed, the same fits also run
on a ``LocalCluster`` of 2 single-threaded worker processes. Each mode runs once untimed
first (``first call``: starting the forkserver or the cluster, compiling), then
``rounds`` timed times, alternating; the table gives the median wall time.

BLAS runs one thread per fit in every mode (the workers set it themselves; the serial
run is limited here), so that the table compares processes, not BLAS threading: on a
2-core machine with another busy process, a fit with 2 OpenBLAS threads was measured
8x slower than with one (24 s against 2.8 s), which would flatter the parallel run.

Usage::

    python benchmarks/scale_chains.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from threadpoolctl import threadpool_limits

from models import synthetic_regression
from pymc_adadelta import fit
from run_info import header, seconds

warnings.filterwarnings("ignore")

CHAINS = 4
CORES = 2
STEPS = 15_000
COEFS = 50
OBSERVATIONS = 2_000  # 800 kB of data: each worker's fits in its core's cache


def run_chains(rounds: int, steps: int = STEPS, observations: int = OBSERVATIONS) -> list[str]:
    """Markdown table rows: wall time of the fits per mode, median of ``rounds`` runs."""
    model = synthetic_regression(COEFS, observations)
    load = os.getloadavg()[0]
    with _modes(model, steps) as modes, threadpool_limits(limits=1):
        first = {name: seconds(run) for name, run in modes.items()}
        times: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(rounds):
            for name, run in modes.items():
                times[name].append(seconds(run))
    median = {name: statistics.median(values) for name, values in times.items()}
    serial = median["serial, this process (cores=1)"]
    rows = [
        f"{CHAINS} fits of {steps} steps (regression, {COEFS} coefficients, {observations} "
        f"rows), {CORES} workers vs one after another, median of {rounds} runs "
        f"({os.cpu_count()} CPUs, load average {load:.1f} at the start)",
        "",
        "| run | wall s | vs serial | first call s |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows += [
        f"| {name} | {median[name]:.1f} | {median[name] / serial:.2f} | {first[name]:.1f} |"
        for name in modes
    ]
    return rows


@contextlib.contextmanager
def _modes(model: Any, steps: int) -> Iterator[dict[str, Callable[[], Any]]]:
    """The runs to time, by name; a dask LocalCluster for the last when dask is there."""
    settings = {"model": model, "chains": CHAINS, "convergence": None, "progressbar": False,
                "random_seed": 1}  # fmt: skip
    modes: dict[str, Callable[[], Any]] = {
        f"parallel, {CORES} forkserver processes": lambda: fit(steps, cores=CORES, **settings),
        "serial, this process (cores=1)": lambda: fit(steps, cores=1, **settings),
    }
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        yield modes
        return
    with (
        LocalCluster(n_workers=CORES, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        name = f"dask LocalCluster, {CORES} worker processes"
        modes[name] = lambda: fit(steps, client=client, **settings)
        yield modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--observations", type=int, default=OBSERVATIONS)
    args = parser.parse_args()

    print(header("scale_chains"))
    print("\n".join(run_chains(args.rounds, args.steps, args.observations)))


if __name__ == "__main__":
    main()
