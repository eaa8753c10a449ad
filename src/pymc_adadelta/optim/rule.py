"""The Adadelta update rule as a pure elementwise function.

One definition serves the NumPy implementation of the Op and the JAX backend; the C and
numba implementations restate the same three lines in their own languages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["AdadeltaRuleOutput", "adadelta_rule"]


class AdadeltaRuleOutput(NamedTuple):
    """What one Adadelta step produces for one parameter, elementwise."""

    delta: Any
    """The step Δx, to be scaled by the learning rate and subtracted from the parameter."""
    sq_grad: Any
    """The new running average of squared gradients E[g²]."""
    sq_delta: Any
    """The new running average of squared steps E[Δx²]."""


def adadelta_rule(
    grad: Any,
    sq_grad: Any,
    sq_delta: Any,
    rho: Any,
    one_minus_rho: Any,
    epsilon: Any,
    sqrt: Callable[[Any], Any] = np.sqrt,
) -> AdadeltaRuleOutput:
    """Compute one Adadelta step, operation by operation as ``pm.adadelta`` does.

    Parameters
    ----------
    grad, sq_grad, sq_delta : array_like
        Gradient and the two accumulators before the step.
    rho, one_minus_rho, epsilon : scalar
        Decay and its complement (passed separately so that callers round ``1 - rho``
        exactly as PyMC's graph does), and the numerical floor.
    sqrt : callable
        Square root of the array library in use (``np.sqrt``, ``jnp.sqrt``).

    Returns
    -------
    AdadeltaRuleOutput
        ``delta`` (unscaled by the learning rate) and the new accumulators.

    Examples
    --------
    >>> import numpy as np
    >>> out = adadelta_rule(np.array([2.0]), np.zeros(1), np.zeros(1), 0.95, 0.05, 1e-6)
    >>> out.delta.round(6)
    array([0.004472])
    """
    new_sq_grad = rho * sq_grad + one_minus_rho * (grad * grad)
    delta = grad * sqrt(sq_delta + epsilon) / sqrt(new_sq_grad + epsilon)
    new_sq_delta = rho * sq_delta + one_minus_rho * (delta * delta)
    return AdadeltaRuleOutput(delta, new_sq_grad, new_sq_delta)
