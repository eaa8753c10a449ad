"""Streaming minibatches from a zarr store vs ``pm.Minibatch`` over the data in memory.

The same regression (4 covariates, intercept, noise sd), the same batch size and the
same `fit` settings (no warm start, no stopping rule) at two data sizes. Every fit runs
in its own child process, which reports its steps per second (timed between the first
and the last step, so compiling is left out), the CPU time of all its threads per step
and its peak resident memory (``ru_maxrss``). The in-memory child loads the whole store
into ``pm.Data`` containers and fits with ``pm.Minibatch``; the streaming child feeds
`StreamingBatches` from the store, with its default ``prefetch`` and ``chunks_per_read``.
The store is compressed with zarr's default codec, in chunks of 65,536 rows; it is
written once to a temporary folder and deleted at the end.

Usage::

    python benchmarks/scale_streaming.py [--rounds 3] [--sizes 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")

SIZES = (10**6, 10**7)
BATCH = 1_000
STEPS = 5_000
COLUMNS = 5  # x1..x4, y
CHUNK_ROWS = 1 << 16
COEFS = np.array([1.0, -0.5, 0.25, 2.0])


def write_store(path: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` regression rows ``(x1..x4, y)`` to a zarr array, chunk by chunk."""
    import zarr

    array = zarr.create_array(path, shape=(n, COLUMNS), chunks=(CHUNK_ROWS, COLUMNS),
                              dtype="float64")  # fmt: skip
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK_ROWS):
        x = rng.normal(size=(min(CHUNK_ROWS, n - start), 4))
        y = 0.3 + x @ COEFS + rng.normal(size=len(x))
        array[start : start + len(x)] = np.column_stack([x, y])


def regression(make_rows: Callable[[], Any], total_size: int) -> Any:
    """The model, on the batch ``(x, y)`` of rows that ``make_rows()`` creates in it."""
    import pymc as pm

    with pm.Model() as model:
        x, y = make_rows()
        coef = pm.Normal("coef", 0.0, 5.0, shape=4)
        intercept = pm.Normal("intercept", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", intercept + x @ coef, sigma, observed=y,
                  total_size=total_size)  # fmt: skip
    return model


def split(rows: Any) -> tuple[Any, Any]:
    return rows[:, :4], rows[:, 4]


def in_memory(data: np.ndarray) -> tuple[Any, Any]:
    """``pm.Data`` containers of x and y: on PyMC 5 ``pm.Minibatch`` of NumPy arrays
    (graph constants) costs time in proportion to the data at every step."""
    import pymc as pm

    return pm.Data("x", data[:, :4]), pm.Data("y_data", data[:, 4])


class StepTimer:
    """When a fit called it first and last (wall and CPU time), and how often."""

    def __init__(self) -> None:
        self.first = self.last = (0.0, 0.0)
        self.calls = 0

    def __call__(self, approx: Any, losses: Any, i: int) -> None:
        self.last = (time.perf_counter(), time.process_time())
        if self.calls == 0:
            self.first = self.last
        self.calls += 1

    def seconds(self) -> float:
        return self.last[0] - self.first[0]

    def rate(self) -> float:
        return (self.calls - 1) / self.seconds()

    def cpu_per_step(self) -> float:
        """CPU seconds of all the process's threads per step."""
        return (self.last[1] - self.first[1]) / (self.calls - 1)


def child(mode: str, path: str, steps: int) -> dict[str, float]:
    """One fit in this process, ``mode`` "memory" or "streaming"; its measurements."""
    import pymc as pm
    import zarr

    from pymc_adadelta import StreamingBatches, fit

    source = zarr.open_array(path, mode="r")
    n, timer, stream = source.shape[0], StepTimer(), None
    if mode == "memory":
        data = source[:]
        model = regression(lambda: pm.Minibatch(*in_memory(data), batch_size=BATCH), n)
    else:
        model = regression(lambda: split(pm.Data("rows", source[:BATCH])), n)
        stream = StreamingBatches(source, "rows", batch_size=BATCH, model=model)
    before = stream.wait_seconds if stream else 0.0  # the first batch, read before the fit
    fit(steps, model=model, callbacks=[c for c in (stream, timer) if c], warm_start=False,
        convergence=None, progressbar=False)  # fmt: skip
    waited = stream.wait_seconds - before if stream else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"steps_per_s": timer.rate(), "cpu_us": timer.cpu_per_step() * 1e6,
            "peak_rss_mb": peak, "waiting": waited / timer.seconds()}  # fmt: skip


def run_child(mode: str, path: Path, steps: int) -> dict[str, float]:
    """Run `child` in a fresh Python process and return what it measured."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(steps)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_streaming(rounds: int, sizes: tuple[int, ...] = SIZES, steps: int = STEPS) -> list[str]:
    """Markdown table rows: both fits at every size, ``rounds`` child processes each."""
    rows = [
        f"streaming vs in-memory minibatches: batch {BATCH}, {COLUMNS} float64 columns, "
        f"{steps} steps, median of {rounds} runs",
        "",
        "| rows | data MB | fit | steps/s | vs in-memory | CPU µs/step | peak RSS MB "
        "| waiting for reads |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    folder = Path(tempfile.mkdtemp(prefix="scale_streaming_"))
    try:
        for n in sizes:
            write_store(folder / f"{n}.zarr", n)
            rows += table_rows(n, folder / f"{n}.zarr", rounds, steps)
            shutil.rmtree(folder / f"{n}.zarr")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def table_rows(n: int, path: Path, rounds: int, steps: int) -> list[str]:
    """Run both fits ``rounds`` times, alternating, and format their two rows.

    Steps/s, CPU time per step (all threads: the reader's work shows there) and the time
    spent waiting for the reader are medians over the rounds; peak memory is the largest.
    """
    runs: dict[str, list[dict[str, float]]] = {"memory": [], "streaming": []}
    for _ in range(rounds):
        for mode, results in runs.items():
            results.append(run_child(mode, path, steps))
    rate = {mode: statistics.median(r["steps_per_s"] for r in results)
            for mode, results in runs.items()}  # fmt: skip
    lines = []
    for mode, results in runs.items():
        cpu, waiting = (statistics.median(r[key] for r in results) for key in ("cpu_us", "waiting"))
        lines.append(
            f"| {n:.0e} | {n * COLUMNS * 8 / 1e6:.0f} | {mode} | {rate[mode]:.0f} | "
            f"{rate[mode] / rate['memory']:.2f} | {cpu:.0f} | "
            f"{max(r['peak_rss_mb'] for r in results):.0f} | "
            f"{'' if mode == 'memory' else f'{waiting:.1%}'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "STEPS"))
    args = parser.parse_args()
    if args.child:
        mode, path, steps = args.child
        print(json.dumps(child(mode, path, int(steps))))
        return
    from run_info import header

    print(header("scale_streaming"))
    print("\n".join(run_streaming(args.rounds, tuple(args.sizes), args.steps)))


if __name__ == "__main__":
    main()
