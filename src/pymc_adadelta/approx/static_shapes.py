"""Give an approximation's shared parameters static shapes (for the JAX backend).

PyMC creates the variational parameters (``mu``, ``rho``, ``L_tril``) as shared variables
whose type has unknown shapes, and derives the size of its random draws from them. JAX
compiles shared variables as traced inputs, so on PyMC 5 those sizes are not concrete and
``jax.jit`` refuses the graph ("Shapes must be 1D sequences of concrete values",
pymc#8359). Replacing each parameter by a shared variable of the same value whose type
carries the shape makes the sizes constants. It must happen before any graph is built
from the parameters, i.e. before the step function is compiled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor

__all__ = ["give_static_shapes"]


def give_static_shapes(approx: Any) -> None:
    """Replace every shared parameter of ``approx`` by one with a static shape."""
    for group in approx.groups:
        for name, param in list(group.shared_params.items()):
            value = np.asarray(param.get_value())
            group.shared_params[name] = pytensor.shared(value, param.name, shape=value.shape)
