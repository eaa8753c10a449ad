"""Adadelta for PyMC variational inference, with packed, named optimizer state.

Examples
--------
>>> import pymc as pm
>>> from pymc_adadelta import adadelta
>>> with pm.Model():
...     x = pm.Normal("x", 0.0, 1.0)
...     approx = pm.fit(100, obj_optimizer=adadelta(), progressbar=False)
"""

from pymc_adadelta import (
    _dispatch,
    _rewrites,  # noqa: F401  (registers the in-place rewrite)
)
from pymc_adadelta._op import AdadeltaStep
from pymc_adadelta.arviz import to_arviz
from pymc_adadelta.callbacks import (
    AccumulatorTracker,
    Callback,
    Checkpoint,
    Convergence,
    DivergenceGuard,
    IterateAveraging,
)
from pymc_adadelta.chains import ChainsFailed, FitResults
from pymc_adadelta.diagnostics import psis_khat
from pymc_adadelta.fit import FitResult, fit
from pymc_adadelta.optimizer import Adadelta
from pymc_adadelta.plots import plot_history
from pymc_adadelta.rule import adadelta_rule
from pymc_adadelta.state import AdadeltaState, ParamSlot
from pymc_adadelta.streaming import StreamingBatches
from pymc_adadelta.updates import AdadeltaUpdates, adadelta

_dispatch.register_backends()

__version__ = "0.1.0"

__all__ = [
    "AccumulatorTracker",
    "Adadelta",
    "AdadeltaState",
    "AdadeltaStep",
    "AdadeltaUpdates",
    "Callback",
    "ChainsFailed",
    "Checkpoint",
    "Convergence",
    "DivergenceGuard",
    "FitResult",
    "FitResults",
    "IterateAveraging",
    "ParamSlot",
    "StreamingBatches",
    "__version__",
    "adadelta",
    "adadelta_rule",
    "fit",
    "plot_history",
    "psis_khat",
    "to_arviz",
]
