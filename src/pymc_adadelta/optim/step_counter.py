"""The step counter stored in the last column of a packed accumulator buffer.

A float32 cannot count past 2**24 exactly, so the count is kept as two floats,
``high * BASE + low`` with ``0 <= low < BASE``: exact up to 2**44 steps in float32 and in
float64. `increment_counter` has no branch, so the NumPy, numba and JAX implementations
share it; the C code restates it.
"""

from __future__ import annotations

from typing import Any

import pytensor.tensor as pt

from pymc_adadelta._typing import TensorLike

__all__ = ["COUNTER_BASE", "counter_value", "increment_counter", "split_count", "symbolic_count"]

COUNTER_BASE = 2**20


def increment_counter(high: Any, low: Any) -> tuple[Any, Any]:
    """Return ``(high, low)`` advanced by one step (scalars of any array library)."""
    low = low + 1
    carry = (low >= COUNTER_BASE) * 1
    return high + carry, low - carry * COUNTER_BASE


def split_count(count: int) -> tuple[int, int]:
    """Return the ``(high, low)`` pair that stores ``count``."""
    if count < 0:
        raise ValueError(f"the step count must be >= 0, got {count}")
    return divmod(int(count), COUNTER_BASE)


def counter_value(high: Any, low: Any) -> int:
    """Return the count stored as ``(high, low)``."""
    return int(high) * COUNTER_BASE + int(low)


def symbolic_count(buffer: TensorLike) -> TensorLike:
    """Return the count held in ``buffer``'s last column as an int64 scalar."""
    high = pt.cast(buffer[0, -1], "int64")
    low = pt.cast(buffer[1, -1], "int64")
    return high * COUNTER_BASE + low
