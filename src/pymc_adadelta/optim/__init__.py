"""The optimizer core: the Adadelta rule, its hyperparameters, packed state, Op and kernels.

Only pytensor and NumPy below this point, plus `pymc_adadelta.approx.layout` for the
per-model-variable view of the accumulators. Importing the package registers the
in-place rewrite and the numba/JAX kernels of `AdadeltaStep`.
"""

from pymc_adadelta.optim import inplace  # noqa: F401  (registers the in-place rewrite)
from pymc_adadelta.optim.constructor import adadelta
from pymc_adadelta.optim.kernels import register_backends
from pymc_adadelta.optim.op import AdadeltaStep
from pymc_adadelta.optim.optimizer import Adadelta
from pymc_adadelta.optim.rule import adadelta_rule
from pymc_adadelta.optim.state import AdadeltaState, ParamSlot
from pymc_adadelta.optim.updates import AdadeltaUpdates

register_backends()

__all__ = [
    "Adadelta",
    "AdadeltaState",
    "AdadeltaStep",
    "AdadeltaUpdates",
    "ParamSlot",
    "adadelta",
    "adadelta_rule",
]
