"""Building the packed-state update graph: one `AdadeltaStep` node per parameter dtype.

The graph for a set of parameters is one `AdadeltaStep` node per parameter dtype; it
updates the packed accumulators, the step counter and the parameters together.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable

from pymc_adadelta._typing import SharedTensor, TensorLike
from pymc_adadelta.optim.hyperparameters import HyperParameters
from pymc_adadelta.optim.op import AdadeltaStep
from pymc_adadelta.optim.state import AdadeltaState

__all__ = ["AdadeltaUpdates", "build_updates", "check_params", "compute_grads"]


class AdadeltaUpdates(OrderedDict):
    """Updates for ``pytensor.function``, carrying the `AdadeltaState` they advance.

    Attributes
    ----------
    state : AdadeltaState
        The packed accumulators these updates write.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> from pymc_adadelta import adadelta
    >>> x = pytensor.shared(np.array([1.0, -2.0]), name="x")
    >>> updates = adadelta((x**2).sum(), [x])
    >>> step = pytensor.function([], [], updates=updates)
    >>> step()
    []
    >>> updates.state.names, updates.state.n_steps
    (('x',), 1)
    """

    state: AdadeltaState


def check_params(params: Any) -> list[SharedTensor]:
    """Return ``params`` as a list, or raise if any is not a shared variable."""
    if isinstance(params, SharedVariable):
        params = [params]
    if not isinstance(params, Sequence) or isinstance(params, str):
        raise TypeError(f"params must be a list of shared variables, got {params!r}")
    for i, param in enumerate(params):
        if not isinstance(param, SharedVariable):
            raise TypeError(
                f"params[{i}] must be a shared variable (the optimizer has to update it), "
                f"got {param!r} of type {type(param).__name__}"
            )
    if not params:
        raise ValueError("params is empty: there is nothing to optimize")
    return list(params)


def compute_grads(loss_or_grads: Any, params: list[SharedTensor]) -> list[TensorLike]:
    """Return one gradient per parameter, as ``pm.updates.get_or_compute_grads`` does.

    A list is taken as the gradients themselves and checked against ``params`` in number
    and (where static) shape; anything else is taken as a scalar loss and differentiated.
    """
    if not isinstance(loss_or_grads, list | tuple):
        loss = pt.as_tensor_variable(loss_or_grads)
        if loss.ndim != 0:
            raise ValueError(
                f"loss_or_grads must be a scalar loss or a list of gradients, "
                f"got a tensor with {loss.ndim} dimensions ({loss.type})"
            )
        grads: list[TensorLike] = pytensor.grad(loss, params)  # type: ignore[assignment]
        return list(grads)
    if len(loss_or_grads) != len(params):
        raise ValueError(
            f"loss_or_grads holds {len(loss_or_grads)} gradient expressions "
            f"for {len(params)} parameters"
        )
    grads = [pt.as_tensor_variable(g) for g in loss_or_grads]
    for i, (grad, param) in enumerate(zip(grads, params, strict=True)):
        _check_grad_shape(i, grad, param)
    return grads


def _check_grad_shape(i: int, grad: TensorLike, param: SharedTensor) -> None:
    value_shape = param.get_value(borrow=True).shape
    if grad.ndim != len(value_shape):
        raise ValueError(
            f"loss_or_grads[{i}] has {grad.ndim} dimensions but params[{i}] "
            f"({param.name}) has shape {value_shape}"
        )
    static = grad.type.shape
    if any(s is not None and s != v for s, v in zip(static, value_shape, strict=True)):
        raise ValueError(
            f"loss_or_grads[{i}] has shape {static} but params[{i}] ({param.name}) "
            f"has shape {value_shape}"
        )


def build_updates(
    grads: Sequence[TensorLike],
    state: AdadeltaState,
    hyperparameters: Sequence[HyperParameters],
) -> AdadeltaUpdates:
    """Build the update graph: one `AdadeltaStep` node per buffer (dtype).

    Parameters
    ----------
    grads : sequence of Variable
        One gradient per slot of ``state``, in slot order.
    state : AdadeltaState
        Where the accumulators live.
    hyperparameters : sequence of HyperParameters
        One entry per slot.
    """
    updates = AdadeltaUpdates()
    updates.state = state
    for buffer_index, buffer in enumerate(state.buffers):
        members = [i for i, s in enumerate(state.slots) if s.buffer == buffer_index]
        params = [state.slots[i].param for i in members]
        hyper = pt.stack(
            [
                pt.stack(hyperparameters[i].symbolic(buffer.dtype, state.step_variable))
                for i in members
            ]
        )
        node_outputs: list[TensorLike] = AdadeltaStep(len(members))(  # type: ignore[assignment]
            buffer, hyper, *params, *[grads[i] for i in members]
        )
        new_buffer, *new_params = node_outputs
        updates[buffer] = new_buffer
        for param, new_param in zip(params, new_params, strict=True):
            updates[param] = new_param
    return updates
