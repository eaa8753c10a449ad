"""What the benchmarks share: the header line they print, and a wall-clock timer."""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Callable
from typing import Any

import pymc as pm
import pytensor


def header(name: str) -> str:
    """Return ``# name  date  machine  python X  pymc Y  pytensor Z``."""
    versions = f"pymc {pm.__version__}  pytensor {pytensor.__version__}"
    machine = f"{datetime.date.today()}  {platform.machine()}  python {platform.python_version()}"
    return f"# {name}  {machine}  {versions}"


def seconds(call: Callable[[], Any]) -> float:
    """Wall-clock seconds that ``call()`` takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
