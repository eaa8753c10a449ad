"""The `AdadeltaStep` Op: one Adadelta step over packed accumulators, in one node.

PyMC's ``pm.adadelta`` gives every parameter two accumulator shared variables and lets
pytensor fuse one elementwise node per parameter. Here all accumulators of one dtype live
in a single ``(2, N + 1)`` array (row 0: E[g²], row 1: E[Δx²]) and one node updates that
array and every parameter, in place when the graph allows it.

Inputs, in order: ``accum (2, N + 1)``, ``hyper (n_params, 4)`` holding
``[rho, 1 - rho, epsilon, learning_rate]`` per parameter, the parameters, then their
gradients. Outputs: the new ``accum`` and parameters. The last column of ``accum`` is the
step counter (see `pymc_adadelta.optim.step_counter`): keeping it in the same array saves an input
and an output per call, which costs several microseconds on the numba backend.

The arithmetic mirrors ``pm.adadelta`` operation by operation, so float64 results agree
with it to rounding::

    s  = rho * s + (1 - rho) * g**2
    dx = g * sqrt(u + eps) / sqrt(s + eps)
    u  = rho * u + (1 - rho) * dx**2
    x  = x - lr * dx

Before it changes anything, the node checks every parameter's hyperparameters (rho in
[0, 1), epsilon and learning_rate finite and > 0) and raises `HyperparameterError` (a
ValueError naming the hyperparameter, its value and the step) when one is not: values
from a schedule or a shared variable can change between steps, and an invalid one would
otherwise run gradient ascent or end in NaN. A few comparisons per parameter per step.
The JAX kernel cannot raise from compiled code: there an invalid value makes the new
parameters NaN, so that `fit` stops with ``stop_reason="non-finite"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from pymc_adadelta._typing import TensorLike
from pymc_adadelta.optim.rule import adadelta_rule
from pymc_adadelta.optim.step_counter import COUNTER_BASE, increment_counter

__all__ = ["AdadeltaStep", "HyperparameterError", "check_hyperparameters"]

_FIXED_INPUTS = 2  # accum, hyper
_FIXED_OUTPUTS = 1  # accum


#: Column of each hyperparameter in the node's ``hyper`` input, and its rule.
HYPER_RULES = ((0, "rho", "in [0, 1)"), (2, "epsilon", "> 0"), (3, "learning_rate", "> 0"))


class HyperparameterError(ValueError):
    """A hyperparameter reached `AdadeltaStep` with an invalid value on some step.

    Raised by every backend but JAX, before the node changes anything. Built as
    ``HyperparameterError(column, value, count)`` it writes its message; built from a
    message alone (as pytensor does, to append the node's description), it keeps it.

    Attributes
    ----------
    name : str or None
        ``"rho"``, ``"epsilon"`` or ``"learning_rate"``.
    value : float or None
        Its value.
    count : int or None
        Steps taken before this one (the step count a schedule received).
    """

    name: str | None = None
    value: float | None = None
    count: int | None = None

    def __init__(self, *args: Any):
        if len(args) != 3 or isinstance(args[0], str):
            super().__init__(*args)
            return
        column, value, count = args
        self.name, rule = next((n, r) for c, n, r in HYPER_RULES if c == int(column))
        self.value, self.count = float(value), int(count)
        super().__init__(
            f"{self.name} must be {rule}, got {self.value!r} on step {self.count + 1} "
            f"(step count {self.count}, as a schedule receives it); values from a schedule "
            f"or a shared variable are checked on every step"
        )


def check_hyperparameters(hyper: np.ndarray, accum: np.ndarray) -> None:
    """Raise `HyperparameterError` for the first invalid value in ``hyper`` (NumPy)."""
    for row in np.asarray(hyper):
        column = invalid_column(float(row[0]), float(row[2]), float(row[3]))
        if column >= 0:
            count = int(accum[0, -1]) * COUNTER_BASE + int(accum[1, -1])
            raise HyperparameterError(column, float(row[column]), count)


def invalid_column(rho: float, epsilon: float, learning_rate: float) -> int:
    """The column of the first invalid value among a row's hyperparameters, or -1.

    Written without NumPy calls so that the numba kernel compiles it as it is.
    """
    if not (0 <= rho < 1):
        return 0
    if not (0 < epsilon < np.inf):
        return 2
    if not (0 < learning_rate < np.inf):
        return 3
    return -1


class AdadeltaStep(COp):
    """Apply one Adadelta step to ``n_params`` parameters and their packed accumulators.

    Parameters
    ----------
    n_params : int
        Number of parameters (and gradients) the node takes.
    inplace : bool
        Whether the node overwrites the accumulator and parameter inputs. Graphs are
        built with ``inplace=False``; a rewrite switches to the in-place form where the
        destroy handler allows it.

    Examples
    --------
    `adadelta` builds the node; one per parameter dtype, whatever the number of
    parameters:

    >>> import numpy as np, pytensor
    >>> from pymc_adadelta import AdadeltaStep, adadelta
    >>> a = pytensor.shared(np.ones(2), name="a")
    >>> b = pytensor.shared(np.ones(3), name="b")
    >>> updates = adadelta((a**2).sum() + (b**2).sum(), [a, b])
    >>> ops = {v.owner.op for v in updates.values() if v.owner is not None}
    >>> [op.n_params for op in ops if isinstance(op, AdadeltaStep)]
    [2]
    """

    __props__ = ("n_params", "inplace")

    def __init__(self, n_params: int, inplace: bool = False):
        if n_params < 1:
            raise ValueError(f"n_params must be at least 1, got {n_params}")
        self.n_params = n_params
        self.inplace = inplace
        if inplace:
            self.destroy_map = {
                0: [0],
                **{_FIXED_OUTPUTS + i: [_FIXED_INPUTS + i] for i in range(n_params)},
            }

    def make_node(self, accum: Any, hyper: Any, *params_and_grads: Any) -> Apply:  # type: ignore[override]
        """Check types and build the node; gradients are cast to their parameter's dtype."""
        if len(params_and_grads) != 2 * self.n_params:
            raise ValueError(
                f"expected {self.n_params} parameters and {self.n_params} gradients, "
                f"got {len(params_and_grads)} inputs after hyper"
            )
        accum = pt.as_tensor_variable(accum)
        hyper = pt.as_tensor_variable(hyper)
        params = [pt.as_tensor_variable(p) for p in params_and_grads[: self.n_params]]
        grads = [
            pt.cast(pt.as_tensor_variable(g), p.dtype)
            for p, g in zip(params, params_and_grads[self.n_params :], strict=True)
        ]
        if accum.ndim != 2 or hyper.ndim != 2:
            raise TypeError("accum and hyper must be matrices")
        for p in params:
            if p.dtype != accum.dtype:
                raise TypeError(f"parameter {p} has dtype {p.dtype}, accum has {accum.dtype}")
        hyper = pt.cast(hyper, accum.dtype)
        inputs: list[TensorLike] = [accum, hyper, *params, *grads]
        outputs = [accum.type(), *[p.type() for p in params]]
        return Apply(self, inputs, outputs)

    def infer_shape(self, *args: Any) -> list:
        """Outputs have the shapes of the inputs they update.

        Called as ``(fgraph, node, input_shapes)`` by pytensor 2 and as
        ``(node, input_shapes)`` by pytensor 3.
        """
        input_shapes = args[-1]
        return [input_shapes[0], *input_shapes[_FIXED_INPUTS : _FIXED_INPUTS + self.n_params]]

    def perform(self, node: Apply, inputs: Any, output_storage: Any) -> None:
        """NumPy implementation, used by the python linker and as a reference."""
        accum, hyper, *rest = inputs
        params, grads = rest[: self.n_params], rest[self.n_params :]
        check_hyperparameters(hyper, accum)
        if not self.inplace:
            accum = accum.copy()
            params = [p.copy() for p in params]
        _check_total_size(sum(p.size for p in params), accum.shape[1] - 1)
        offset = 0
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if param.size != grad.size:
                raise ValueError(
                    f"gradient {i} has {grad.size} elements, its parameter has {param.size}"
                )
            stop = offset + param.size
            new_param = _adadelta_numpy(
                accum[0, offset:stop], accum[1, offset:stop], param, grad, hyper[i]
            )
            output_storage[_FIXED_OUTPUTS + i][0] = new_param
            offset = stop
        accum[:, -1] = increment_counter(accum[0, -1], accum[1, -1])
        output_storage[0][0] = accum

    def c_code_cache_version(self) -> tuple[int, ...]:
        """Version of the generated C code; bump it when the code changes."""
        return (7,)

    def c_headers(self, **kwargs: Any) -> list[str]:
        """Headers of the C implementation."""
        return ["<cmath>"]

    def c_support_code(self, **kwargs: Any) -> str:
        """The vectorizable per-parameter kernel."""
        from pymc_adadelta.optim.c_code import SUPPORT_CODE

        return SUPPORT_CODE

    def c_code(self, node: Apply, name: str, inputs: list, outputs: list, sub: dict) -> str:
        """C implementation: one loop per parameter over contiguous data."""
        from pymc_adadelta.optim.c_code import adadelta_step_c_code

        return adadelta_step_c_code(self.n_params, self.inplace, inputs, outputs, sub)


def _adadelta_numpy(
    sq_grad: np.ndarray, sq_delta: np.ndarray, param: np.ndarray, grad: np.ndarray, hyper: Any
) -> np.ndarray:
    """Update ``sq_grad``/``sq_delta`` in place and return the new parameter value."""
    rho, one_minus_rho, eps, lr = hyper
    out = adadelta_rule(grad.reshape(-1), sq_grad, sq_delta, rho, one_minus_rho, eps)
    sq_grad[:] = out.sq_grad
    sq_delta[:] = out.sq_delta
    return (param.reshape(-1) - lr * out.delta).reshape(param.shape)


def _check_total_size(total: int, accum_size: int) -> None:
    if total != accum_size:
        raise ValueError(
            f"the parameters hold {total} elements but the accumulators hold {accum_size}"
        )
