"""The callback interface shared by every callback of this package.

PyMC calls each callback after every step as ``callback(approx, losses, i)``: the
approximation being fitted, the losses so far (``None`` for methods without a loss) and
the number of steps taken. Raising ``StopIteration`` ends the fit cleanly.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Callback"]


@runtime_checkable
class Callback(Protocol):
    """What ``pm.fit(callbacks=[...])`` and `pymc_adadelta.fit` call after each step."""

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """React to step ``i`` (1-based) of a fit of ``approx``."""
