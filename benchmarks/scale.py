"""Scale: streaming vs in-memory minibatch fits, and several fits in parallel vs serially.

Runs the two halves side by side in one process tree and prints their tables:
``scale_streaming.run_streaming`` (steps per second and peak memory of streaming from a
zarr store against the same fit with the data in memory, at two data sizes) and
``scale_chains.run_chains`` (wall time of 4 fits in parallel processes against one after
another).

Usage::

    python benchmarks/scale.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import warnings

from run_info import header
from scale_chains import run_chains
from scale_streaming import run_streaming

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(header("scale"))
    for rows in (run_streaming(args.rounds), run_chains(args.rounds)):
        print()
        print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
