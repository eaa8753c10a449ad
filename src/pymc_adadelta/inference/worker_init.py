"""Imported by the forkserver of ``fit(..., chains=k)`` before it forks the workers.

A fresh process pays one-time costs on its first fit: imports that ``import pymc`` does
not do (ArviZ, which PyMC 6 loads lazily and the MCSE rule needs; SciPy's optimizers for
the warm start; cloudpickle for the payload), pytensor's BLAS check behind
``pytensor.config.blas__ldflags`` and loading the compiled-module cache (numba's
initialization on the numba backend): seconds in all, in every worker. Paid here, once,
in the server, every forked worker starts with them done. Nothing model-specific is
compiled: each worker compiles its own fit's functions.
"""

import contextlib
import warnings

import arviz  # noqa: F401  (the convergence rule's MCSE; PyMC 6 imports it lazily)
import cloudpickle  # noqa: F401  (the workers unpickle the payload with it)
import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.optimize  # noqa: F401  (the warm start's L-BFGS)

import pymc_adadelta  # noqa: F401  (the workers unpickle the package's functions)
from pymc_adadelta._compat import mcse_of_mean

# A warm-up that fails must not take the server down (the workers would all fail to
# start): each fit pays for what is skipped here, as it would without the preload.
with warnings.catch_warnings(), contextlib.suppress(Exception):
    warnings.simplefilter("ignore")  # the BLAS warning, if any, comes with the first fit
    _ = pytensor.config.blas__ldflags
    _x = pt.dvector("x")
    pytensor.function([_x], pt.exp(_x).sum())(np.ones(2))
    mcse_of_mean(np.random.default_rng(0).normal(size=(100, 2)))  # ArviZ's lazy imports
