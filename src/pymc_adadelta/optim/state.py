"""`AdadeltaState`: the packed accumulators of one optimizer and their names.

All accumulators of one dtype live in one shared ``(2, N + 1)`` array: row 0 holds E[g²]
(``sq_grad``), row 1 holds E[Δx²] (``sq_delta``), each parameter owns the columns
``start:stop`` of its buffer, flattened in C order, and the last column counts the steps
taken (see `pymc_adadelta.optim.step_counter`). The state object itself is immutable: it only
describes where things are; the numbers live in the shared variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pytensor

from pymc_adadelta._typing import SharedTensor, TensorLike
from pymc_adadelta.optim.step_counter import counter_value, split_count, symbolic_count

__all__ = ["ACCUMULATOR_NAMES", "AdadeltaState", "ParamSlot"]

#: Names of the two accumulators, in row order of the packed buffers.
ACCUMULATOR_NAMES = ("sq_grad", "sq_delta")


class ParamSlot(NamedTuple):
    """Where one parameter's accumulators live in the packed buffers.

    Attributes
    ----------
    name : str
        The parameter's name in the state (unique).
    param : SharedVariable
        The parameter.
    buffer : int
        Index of its packed buffer in `AdadeltaState.buffers` (one per dtype).
    start, stop : int
        Its columns in that buffer.
    shape : tuple of int
        The parameter's shape.
    dtype : str
        The parameter's dtype.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> from pymc_adadelta import AdadeltaState
    >>> a = pytensor.shared(np.zeros(2), name="a")
    >>> b = pytensor.shared(np.zeros((2, 3)), name="b")
    >>> slot = AdadeltaState.create([a, b]).slot("b")
    >>> slot.buffer, slot.start, slot.stop, slot.shape
    (0, 2, 8, (2, 3))
    """

    name: str
    param: SharedTensor
    buffer: int
    start: int
    stop: int
    shape: tuple[int, ...]
    dtype: str


class AdadeltaState(NamedTuple):
    """Packed Adadelta accumulators with named per-parameter slices.

    Attributes
    ----------
    buffers : tuple of SharedVariable
        One ``(2, N + 1)`` array per parameter dtype.
    slots : tuple of ParamSlot
        One entry per parameter, in the order the parameters were given.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> mu = pytensor.shared(np.zeros(3), name="mu")
    >>> state = AdadeltaState.create([mu])
    >>> state.names
    ('mu',)
    >>> state.accumulator("mu", "sq_grad")
    array([0., 0., 0.])
    """

    buffers: tuple[SharedTensor, ...]
    slots: tuple[ParamSlot, ...]

    @classmethod
    def create(
        cls, params: Sequence[SharedTensor], names: Sequence[str] | None = None
    ) -> AdadeltaState:
        """Allocate zeroed buffers for ``params``, grouped by dtype."""
        names = list(names) if names is not None else unique_names(params)
        dtypes = list(dict.fromkeys(str(p.dtype) for p in params))
        sizes = dict.fromkeys(dtypes, 0)
        slots = []
        for name, param in zip(names, params, strict=True):
            value = param.get_value(borrow=True)
            dtype = str(param.dtype)
            start = sizes[dtype]
            sizes[dtype] = start + value.size
            slot = ParamSlot(
                name, param, dtypes.index(dtype), start, sizes[dtype], value.shape, dtype
            )
            slots.append(slot)
        buffers = tuple(
            pytensor.shared(
                np.zeros((2, sizes[dtype] + 1), dtype=dtype),
                name=f"adadelta_accumulators_{dtype}",
                shape=(2, sizes[dtype] + 1),
            )
            for dtype in dtypes
        )
        return cls(buffers, tuple(slots))

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in order."""
        return tuple(slot.name for slot in self.slots)

    @property
    def n_steps(self) -> int:
        """Number of steps taken so far."""
        buffer = self.buffers[0].get_value(borrow=True)
        return counter_value(buffer[0, -1], buffer[1, -1])

    def step_variable(self) -> TensorLike:
        """The number of steps taken before the current one, as a symbolic int64."""
        return symbolic_count(self.buffers[0])

    def slot(self, name: str) -> ParamSlot:
        """Return the slot of parameter ``name``."""
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise KeyError(f"no parameter named {name!r}; the state holds {list(self.names)}")

    def accumulator(self, name: str, which: str) -> np.ndarray:
        """Return a copy of accumulator ``which`` (``sq_grad``/``sq_delta``) of ``name``."""
        if which not in ACCUMULATOR_NAMES:
            raise ValueError(f"which must be one of {ACCUMULATOR_NAMES}, got {which!r}")
        slot = self.slot(name)
        row = self.buffers[slot.buffer].get_value(borrow=True)[ACCUMULATOR_NAMES.index(which)]
        return row[slot.start : slot.stop].reshape(slot.shape).copy()

    def accumulators(self) -> dict[str, dict[str, np.ndarray]]:
        """Return ``{param: {"sq_grad": array, "sq_delta": array}}`` in parameter shapes."""
        return {
            name: {which: self.accumulator(name, which) for which in ACCUMULATOR_NAMES}
            for name in self.names
        }

    def layout(self) -> list[dict[str, Any]]:
        """Describe the parameters: name, shape and dtype, in order."""
        return [{"name": s.name, "shape": tuple(s.shape), "dtype": s.dtype} for s in self.slots]

    def load_accumulators(self, values: Mapping[str, Mapping[str, np.ndarray]], step: int) -> None:
        """Overwrite all accumulators and the step count; the layout must already match."""
        buffers = [b.get_value() for b in self.buffers]
        for slot in self.slots:
            for row, which in enumerate(ACCUMULATOR_NAMES):
                array = np.asarray(values[slot.name][which])
                if array.shape != tuple(slot.shape):
                    raise ValueError(
                        f"accumulator {which!r} of {slot.name!r} has shape {array.shape}, "
                        f"expected {tuple(slot.shape)}"
                    )
                buffers[slot.buffer][row, slot.start : slot.stop] = array.reshape(-1)
        for buffer, value in zip(self.buffers, buffers, strict=True):
            value[:, -1] = split_count(step)
            buffer.set_value(value)


def unique_names(params: Sequence[SharedTensor]) -> list[str]:
    """Name parameters after their shared variables, making repeats unique."""
    names: list[str] = []
    for i, param in enumerate(params):
        base = param.name or f"param_{i}"
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names
