"""Every difference between the supported stacks, and nowhere else.

- Python 3.11: PyMC 5.x, pytensor 2.x (default linker: C), ArviZ 0.x (InferenceData).
- Python 3.12: PyMC 6.x, pytensor 3.x (default linker: numba), ArviZ 1.x (DataTree).
"""

from __future__ import annotations

import importlib.util

import pymc
import pytensor

__all__ = ["BACKEND_MODES", "PYMC_MAJOR", "PYTENSOR_MAJOR", "available_backends"]

PYMC_MAJOR = int(pymc.__version__.split(".")[0])
PYTENSOR_MAJOR = int(pytensor.__version__.split(".")[0])

#: pytensor mode name for each backend; the same names work on pytensor 2 and 3.
BACKEND_MODES = {"c": "CVM", "numba": "NUMBA", "jax": "JAX"}

_BACKEND_LIBRARIES = {"c": None, "numba": "numba", "jax": "jax"}


def available_backends() -> list[str]:
    """Backends whose libraries are installed (``"c"`` is always there)."""
    return [
        name
        for name, library in _BACKEND_LIBRARIES.items()
        if library is None or importlib.util.find_spec(library) is not None
    ]
