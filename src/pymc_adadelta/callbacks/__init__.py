"""Callbacks for ``pm.fit(callbacks=[...])`` and `pymc_adadelta.fit`."""

from pymc_adadelta.callbacks.averaging import IterateAveraging
from pymc_adadelta.callbacks.base import Callback
from pymc_adadelta.callbacks.checkpoint import Checkpoint
from pymc_adadelta.callbacks.convergence import Convergence
from pymc_adadelta.callbacks.guards import DivergenceGuard
from pymc_adadelta.callbacks.tracking import AccumulatorTracker

__all__ = [
    "AccumulatorTracker",
    "Callback",
    "Checkpoint",
    "Convergence",
    "DivergenceGuard",
    "IterateAveraging",
]
