"""One checker per argument kind; each message names the argument the user passed."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_draws", "check_positive_int", "is_positive_int"]


def is_positive_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer ≥ 1 (booleans are not)."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and bool(value >= 1)


def check_positive_int(name: str, value: Any, what: str = "integer") -> None:
    """Raise ValueError, naming ``name`` and ``value``, unless it is a positive integer."""
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive {what}, got {value!r}")


def check_draws(draws: Any) -> None:
    """Raise ValueError unless ``draws`` is a positive integer."""
    check_positive_int("draws", draws)
