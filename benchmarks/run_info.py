"""The header line every benchmark prints: name, date, machine and library versions."""

from __future__ import annotations

import datetime
import platform

import pymc as pm
import pytensor


def header(name: str) -> str:
    """Return ``# name  date  machine  python X  pymc Y  pytensor Z``."""
    versions = f"pymc {pm.__version__}  pytensor {pytensor.__version__}"
    machine = f"{datetime.date.today()}  {platform.machine()}  python {platform.python_version()}"
    return f"# {name}  {machine}  {versions}"
