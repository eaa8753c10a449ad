"""`AccumulatorTracker`: cheap per-step summaries of the optimizer state, per variable.

Each call does one ``np.add.reduceat`` over the packed buffer (plus one gather when the
variables' entries are not contiguous) and stores the sums in preallocated storage; means,
square roots and labels are computed only when `AccumulatorTracker.history` is read.
The step counter column of the buffer is reduced as a last, ignored segment, which is
cheaper than slicing it off. Buffers of at most `BLOCK_COLUMNS` columns (small models,
where a step is cheapest and a reduction call costs the most relative to it) are copied
into a block of `BLOCK` records instead, and each full block is reduced in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import xarray as xr

from pymc_adadelta._validation import check_positive_int
from pymc_adadelta.approx.layout import variable_indices
from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.optim.hyperparameters import describe_value
from pymc_adadelta.optim.optimizer import Adadelta

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["BLOCK", "BLOCK_COLUMNS", "AccumulatorTracker"]

#: Buffers with at most this many columns are copied and reduced a block at a time.
BLOCK_COLUMNS = 512
#: Records per block (the capacity is kept a multiple of it).
BLOCK = 64


class _Segments(NamedTuple):
    """Columns of one packed buffer grouped by (parameter, variable)."""

    buffer: Any
    order: np.ndarray | None  # gather order, None when segments are already contiguous
    starts: np.ndarray
    counts: np.ndarray
    labels: list[tuple[str, str]]  # (param label, variable) per segment
    params: dict[str, Any]  # the shared parameters by label
    blocked: bool  # copy the buffer and reduce a block of records at a time

    def reduce(self, packed: np.ndarray) -> np.ndarray:
        """Sum ``packed[..., columns]`` per segment along the last axis."""
        if self.order is not None:
            packed = packed[..., self.order]
        return np.add.reduceat(packed, self.starts, axis=-1)


class AccumulatorTracker:
    """Record the loss and per-variable accumulator summaries during a fit.

    For each parameter (``mu``, ``rho``, ``L_tril``, ...) and model variable it records
    the sums of E[g²] and E[Δx²] over the variable's entries; `history` turns them into
    ``grad_rms = sqrt(mean E[g²])``, ``delta_rms = sqrt(mean E[Δx²])`` and the effective
    step size ``sqrt(mean E[Δx²] + ε) / sqrt(mean E[g²] + ε)``.

    Parameters
    ----------
    optimizer : Adadelta
        The optimizer passed as ``obj_optimizer``.
    every : int, default 1
        Record every ``every``-th step.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import Adadelta, AccumulatorTracker
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=2)
    ...     opt = Adadelta()
    ...     tracker = AccumulatorTracker(opt, every=10)
    ...     approx = pm.fit(100, obj_optimizer=opt, callbacks=[tracker], progressbar=False)
    >>> tracker.history["grad_rms"].sizes["iteration"]
    10
    """

    def __init__(self, optimizer: Adadelta, every: int = 1, capacity: int = 16 * BLOCK):
        if not isinstance(optimizer, Adadelta):
            raise TypeError(
                f"optimizer must be a pymc_adadelta.Adadelta, got {type(optimizer).__name__}"
            )
        check_positive_int("every", every)
        self.optimizer = optimizer
        self.every = every
        self._segments: list[_Segments] | None = None
        self._count = 0
        self._capacity = -(-capacity // BLOCK) * BLOCK
        self._steps = np.empty((self._capacity, 2))  # (iteration, loss) per record
        self._sums: list[np.ndarray] = []  # per buffer: (capacity, 2, n_segments + 1)
        self._blocks: list[np.ndarray | None] = []  # per buffer: (BLOCK, 2, columns) or None
        self._plan: list[tuple[Any, Any, np.ndarray, np.ndarray | None]] = []

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """Record step ``i`` if it is one of every ``every`` steps."""
        if i % self.every:
            return
        if self._segments is None:
            self._start(approx)
        k = self._count
        if k == self._capacity:
            self._grow()
        steps = self._steps
        steps[k, 0] = i
        steps[k, 1] = losses[-1] if losses is not None and len(losses) else np.nan
        for buffer, reduce, sums, block in self._plan:
            packed = buffer.get_value(borrow=True)
            if block is None:
                sums[k] = reduce(packed)
                continue
            j = k % BLOCK
            block[j] = packed
            if j == BLOCK - 1:
                sums[k - j : k + 1] = reduce(block)
        self._count = k + 1

    def __len__(self) -> int:
        """Number of steps recorded."""
        return self._count

    def _start(self, approx: Any) -> None:
        self._segments = _build_segments(self.optimizer, approx)
        self._sums = [np.empty((self._capacity, 2, len(s.starts))) for s in self._segments]
        self._blocks = [
            np.empty((BLOCK, *s.buffer.get_value(borrow=True).shape)) if s.blocked else None
            for s in self._segments
        ]
        self._make_plan()

    def _grow(self) -> None:
        self._steps = np.concatenate([self._steps, np.empty_like(self._steps)])
        self._sums = [np.concatenate([s, np.empty_like(s)]) for s in self._sums]
        self._capacity *= 2
        self._make_plan()

    def _make_plan(self) -> None:
        assert self._segments is not None
        self._plan = [
            (s.buffer, s.reduce, sums, block)
            for s, sums, block in zip(self._segments, self._sums, self._blocks, strict=True)
        ]

    @property
    def history(self) -> xr.Dataset:
        """Everything recorded, as an ``xarray.Dataset`` with dimension ``iteration``.

        Data variables: ``loss`` (iteration) and ``grad_rms``, ``delta_rms``,
        ``step_size`` (iteration, param, variable); NaN where a parameter does not cover
        a variable.
        """
        if self._segments is None:
            raise ValueError("the tracker has recorded nothing yet; pass it to pm.fit first")
        labels = [label for s in self._segments for label in s.labels]
        params = list(dict.fromkeys(p for p, _ in labels))
        variables = list(dict.fromkeys(v for _, v in labels))
        n = self._count
        mean_sq = np.full((2, n, len(params), len(variables)), np.nan)
        self._flush_block()
        for segments, sums in zip(self._segments, self._sums, strict=True):
            means = sums[:n, :, :-1] / segments.counts  # (n, 2, n_segments)
            for k, (p, v) in enumerate(segments.labels):
                mean_sq[:, :, params.index(p), variables.index(v)] = means[:, :, k].T
        eps = np.array([self._epsilon(p) for p in params])[None, :, None]
        dims = ("iteration", "param", "variable")
        return xr.Dataset(
            {
                "loss": ("iteration", self._steps[:n, 1].copy()),
                "grad_rms": (dims, np.sqrt(mean_sq[0])),
                "delta_rms": (dims, np.sqrt(mean_sq[1])),
                "step_size": (dims, np.sqrt(mean_sq[1] + eps) / np.sqrt(mean_sq[0] + eps)),
            },
            coords={
                "iteration": self._steps[:n, 0].astype(np.int64),
                "param": params,
                "variable": variables,
            },
            attrs={"every": self.every},
        )

    def _flush_block(self) -> None:
        """Reduce the records of the block being filled."""
        done = self._count % BLOCK
        first = self._count - done
        for _, reduce, sums, block in self._plan:
            if block is not None and done:
                sums[first : self._count] = reduce(block[:done])

    def _epsilon(self, label: str) -> float:
        assert self._segments is not None
        param = next(s.params[label] for s in self._segments if label in s.params)
        value = describe_value(self.optimizer.hyperparameters_of(param).epsilon)
        return float(value) if isinstance(value, int | float) else np.nan


def _build_segments(optimizer: Adadelta, approx: Any) -> list[_Segments]:
    state = optimizer.state
    per_buffer: dict[int, list[tuple[str, str, np.ndarray]]] = {}
    params: dict[int, dict[str, Any]] = {}
    for entry in param_entries(approx):
        slot = next((s for s in state.slots if s.param is entry.param), None)
        if slot is None:
            raise ValueError(
                f"the optimizer does not update parameter {entry.label!r} of this "
                f"approximation; was it the obj_optimizer of this fit?"
            )
        params.setdefault(slot.buffer, {})[entry.label] = entry.param
        for var, owned in variable_indices(entry.name, entry.group).items():
            per_buffer.setdefault(slot.buffer, []).append((entry.label, var, slot.start + owned))
    return [_segments(state.buffers[b], entries, params[b]) for b, entries in per_buffer.items()]


def _segments(
    buffer: Any, entries: list[tuple[str, str, np.ndarray]], params: dict[str, Any]
) -> _Segments:
    counter_column = buffer.get_value(borrow=True).shape[1] - 1
    columns = np.concatenate([*(cols for _, _, cols in entries), [counter_column]])
    counts = np.array([len(cols) for _, _, cols in entries])
    starts = np.concatenate([[0], np.cumsum(counts)])
    contiguous = np.array_equal(columns, np.arange(len(columns)))
    return _Segments(
        buffer=buffer,
        order=None if contiguous else columns,
        starts=starts,
        counts=counts,
        labels=[(p, v) for p, v, _ in entries],
        params=params,
        blocked=counter_column + 1 <= BLOCK_COLUMNS,
    )
