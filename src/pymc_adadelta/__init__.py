"""Adadelta for PyMC variational inference, with packed, named optimizer state.

Examples
--------
>>> import pymc as pm
>>> from pymc_adadelta import adadelta
>>> with pm.Model():
...     x = pm.Normal("x", 0.0, 1.0)
...     approx = pm.fit(100, obj_optimizer=adadelta(), progressbar=False)
"""

from pymc_adadelta.approx.full_data import NonFiniteDataError
from pymc_adadelta.callbacks import (
    AccumulatorTracker,
    Callback,
    Checkpoint,
    Convergence,
    DivergenceGuard,
    IterateAveraging,
)
from pymc_adadelta.inference import ChainsFailed, FitResult, FitResults, fit
from pymc_adadelta.optim import (
    Adadelta,
    AdadeltaState,
    AdadeltaStep,
    AdadeltaUpdates,
    ParamSlot,
    adadelta,
    adadelta_rule,
)
from pymc_adadelta.output import plot_history, psis_khat, to_arviz
from pymc_adadelta.output.diagnostics import ApproximationWarning
from pymc_adadelta.streaming import StreamingBatches
from pymc_adadelta.streaming.read_order import StreamedDataError

__version__ = "0.1.0"

__all__ = [
    "AccumulatorTracker",
    "Adadelta",
    "AdadeltaState",
    "AdadeltaStep",
    "AdadeltaUpdates",
    "ApproximationWarning",
    "Callback",
    "ChainsFailed",
    "Checkpoint",
    "Convergence",
    "DivergenceGuard",
    "FitResult",
    "FitResults",
    "IterateAveraging",
    "NonFiniteDataError",
    "ParamSlot",
    "StreamedDataError",
    "StreamingBatches",
    "__version__",
    "adadelta",
    "adadelta_rule",
    "fit",
    "plot_history",
    "psis_khat",
    "to_arviz",
]
