"""Validation of Adadelta hyperparameters and their conversion to graph scalars.

A hyperparameter is a Python number, a pytensor scalar (a constant, a shared variable
whose value may change between steps without recompiling, or any symbolic scalar), or,
for the learning rate only, a schedule: a callable that maps the step count (an int64
scalar, 0 on the first step) to a symbolic learning rate.

Values are checked wherever they come from: numbers, 0-d NumPy arrays, constants and the
current value of shared variables when the optimizer is built; a schedule's value when the
graph is built if it does not depend on the step or on shared values (``lambda t: 0.01``),
and its output type (a real scalar); and every value again on every step, by the
`AdadeltaStep` node itself (`pymc_adadelta.optim.op`), so that a schedule crossing zero or
a shared variable set to an invalid value between steps stops the fit with a ValueError
naming the hyperparameter and the step instead of running gradient ascent or ending in NaN.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.replace import graph_replace
from pytensor.tensor.exceptions import NotScalarConstantError

from pymc_adadelta._typing import TensorLike

__all__ = ["HyperParameters", "Schedule", "validate_groups"]

Schedule: TypeAlias = Callable[[TensorLike], Any]
HyperValue: TypeAlias = float | Variable | Schedule

HYPERPARAMETER_NAMES = ("learning_rate", "rho", "epsilon")


class HyperParameters(NamedTuple):
    """Validated hyperparameters of one parameter group."""

    learning_rate: HyperValue
    rho: HyperValue
    epsilon: HyperValue

    @classmethod
    def create(cls, learning_rate: Any, rho: Any, epsilon: Any) -> HyperParameters:
        """Validate each value and return the group's hyperparameters."""
        return cls(
            learning_rate=_validate("learning_rate", learning_rate, _positive, allow_schedule=True),
            rho=_validate("rho", rho, _in_unit_interval),
            epsilon=_validate("epsilon", epsilon, _positive),
        )

    def replace(self, overrides: Mapping[str, Any]) -> HyperParameters:
        """Return a copy with some hyperparameters replaced (and validated)."""
        return HyperParameters.create(**{**self._asdict(), **overrides})

    def symbolic(self, dtype: str, step: Callable[[], TensorLike]) -> list[TensorLike]:
        """Return ``[rho, 1 - rho, epsilon, learning_rate]`` as scalars of ``dtype``.

        ``step`` builds the symbolic step count; it is called only for a schedule.

        ``1 - rho`` is built as ``pt.constant(1) - rho``, the way ``pm.adadelta`` builds
        it, so that both round it identically in float32 and float64.
        """
        rho = _as_scalar("rho", self.rho)
        learning_rate = self.learning_rate
        if _is_schedule(learning_rate):
            learning_rate = scheduled_value(learning_rate, step())  # type: ignore[arg-type]
        values = [
            rho,
            pt.constant(1) - rho,
            _as_scalar("epsilon", self.epsilon),
            _as_scalar("learning_rate", learning_rate),
        ]
        return [pt.cast(v, dtype) if v.dtype != dtype else v for v in values]

    def describe(self) -> dict[str, Any]:
        """Plain, serialisable description (numbers; names for symbolic values)."""
        return {name: describe_value(value) for name, value in self._asdict().items()}


def describe_value(value: HyperValue) -> Any:
    """Return a number for numbers and constants, the current value for shared variables."""
    if isinstance(value, SharedVariable):
        return float(value.get_value())
    if isinstance(value, Constant):
        return float(value.data)
    if isinstance(value, Variable):
        return f"symbolic:{value}"
    if _is_schedule(value):
        return f"schedule:{_schedule_name(value)}"
    return float(value)  # type: ignore[arg-type]


def scheduled_value(schedule: Schedule, step: TensorLike) -> TensorLike:
    """Call ``schedule`` on the symbolic step and check what it returns.

    The value must be a real scalar. Where it can be computed without running the graph
    (it does not depend on shared values, or only on the step), its value at step 0 must
    be a valid learning rate: ``lambda t: -0.1`` is refused here, when the graph is built.
    Values that depend on the step or on shared variables are checked on every step by
    `AdadeltaStep`.
    """
    label = f"learning_rate (from the schedule {_schedule_name(schedule)})"
    try:
        value = pt.as_tensor_variable(schedule(step))
    except (TypeError, ValueError, NotImplementedError) as error:
        raise TypeError(f"{label} must return a pytensor scalar or a number: {error}") from error
    if value.ndim != 0:
        raise ValueError(f"{label} must return a scalar, got {value.type}")
    if not str(value.dtype).startswith(("float", "int", "uint")):
        raise TypeError(f"{label} must return a real number, got dtype {value.dtype}")
    at_start = _constant_value(
        graph_replace(value, {step: pt.constant(0, dtype=step.dtype)}, strict=False)
    )
    if at_start is not None and not _positive(at_start):
        raise ValueError(f"{label} must be > 0, got {at_start!r} at step 0")
    return value


def _constant_value(variable: TensorLike) -> float | None:
    """The value of ``variable`` when it folds to a constant, else None."""
    try:
        return float(pt.get_underlying_scalar_constant_value(variable))
    except NotScalarConstantError:
        return None


def _schedule_name(schedule: Any) -> str:
    return str(getattr(schedule, "__name__", type(schedule).__name__))


def validate_groups(groups: Mapping[Any, Mapping[str, Any]] | None) -> dict[Any, dict[str, Any]]:
    """Check the ``groups`` argument of `Adadelta` and return a plain copy of it.

    Keys are parameter names (``"mu"``, ``"rho"``, ``"L_tril"``) or shared variables;
    values are mappings of hyperparameter names to values.
    """
    if groups is None:
        return {}
    if not isinstance(groups, Mapping):
        raise TypeError(f"groups must be a mapping of parameter to settings, got {groups!r}")
    checked: dict[Any, dict[str, Any]] = {}
    for key, settings in groups.items():
        if not isinstance(key, str | SharedVariable):
            raise TypeError(f"groups keys must be parameter names or shared variables, got {key!r}")
        if not isinstance(settings, Mapping):
            raise TypeError(
                f"groups[{key!r}] must be a mapping of hyperparameters, got {settings!r}"
            )
        unknown = sorted(set(settings) - set(HYPERPARAMETER_NAMES))
        if unknown:
            raise ValueError(
                f"groups[{key!r}] has unknown hyperparameters {unknown}; "
                f"expected some of {list(HYPERPARAMETER_NAMES)}"
            )
        checked[key] = dict(settings)
    return checked


def _is_schedule(value: Any) -> bool:
    return callable(value) and not isinstance(value, Variable)


def _positive(x: float) -> bool:
    return x > 0


def _in_unit_interval(x: float) -> bool:
    return 0 <= x < 1


_RULES = {_positive: "> 0", _in_unit_interval: "in [0, 1)"}


def _validate(name: str, value: Any, rule: Any, allow_schedule: bool = False) -> HyperValue:
    if allow_schedule and _is_schedule(value):
        return value
    if isinstance(value, Variable):
        return _validate_variable(name, value, rule)
    if isinstance(value, np.ndarray | np.generic) and value.ndim == 0:
        value = value.item()  # a 0-d array or NumPy scalar, as pm.adadelta accepts
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kinds = "a number, a pytensor scalar" + (" or a schedule" if allow_schedule else "")
        raise TypeError(f"{name} must be {kinds}, got {value!r}")
    if not np.isfinite(float(value)) or not rule(float(value)):
        raise ValueError(f"{name} must be {_RULES[rule]}, got {value!r}")
    return float(value)


def _validate_variable(name: str, value: TensorLike, rule: Any) -> TensorLike:
    if getattr(value.type, "ndim", None) != 0:
        raise ValueError(f"{name} must be a scalar, got {value} with type {value.type}")
    if not str(value.dtype).startswith(("float", "int", "uint")):
        raise TypeError(f"{name} must have a numeric dtype, got {value.dtype}")
    current = None
    if isinstance(value, SharedVariable):
        current = value.get_value()
    elif isinstance(value, Constant):
        current = value.data
    if current is not None and not (np.isfinite(float(current)) and rule(float(current))):
        raise ValueError(f"{name} must be {_RULES[rule]}, got {value} = {float(current)!r}")
    return value


def _as_scalar(name: str, value: Any) -> TensorLike:
    variable = pt.as_tensor_variable(value)
    if variable.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got {variable.type}")
    return variable
