"""Imported by the forkserver of ``fit(..., chains=k)`` before it forks the workers.

A fresh process pays pytensor's one-time costs on its first compilation: the BLAS
check behind ``pytensor.config.blas__ldflags`` and loading the compiled-module cache
(numba's initialization on the numba backend), seconds in all. Paid here, in the
server, every forked worker starts with them done.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt

import pymc_adadelta  # noqa: F401  (the workers unpickle the package's functions)

_ = pytensor.config.blas__ldflags
_x = pt.dvector("x")
pytensor.function([_x], pt.exp(_x).sum())(np.ones(2))
