"""Iterate averaging: one implementation, with memory that does not grow with the steps.

At a fixed learning rate the late iterates of stochastic VI wander around the optimum;
their average is much closer to it than the last iterate (Polyak & Juditsky 1992; Dhaka
et al. 2020). `BlockMeans` keeps the sum of the iterates in at most ``max_blocks``
blocks of consecutive steps (neighbouring blocks are merged when there are more), so that
a convergence rule can drop the iterates before a step (a transient) without storing
them. `IterateAveraging` (a callback for ``pm.fit``), `Convergence` and `fit` all average
with it and write the average with `apply_average`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pymc_adadelta._validation import check_positive_int
from pymc_adadelta.approx.params import param_entries, read_params, write_params

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["BlockMeans", "IterateAveraging", "apply_average", "flat_params"]


def flat_params(approx: Any) -> np.ndarray:
    """Every parameter of ``approx`` as one flat float64 vector, in `param_entries` order."""
    return np.concatenate(
        [np.asarray(e.param.get_value(borrow=True), dtype=np.float64).ravel()
         for e in param_entries(approx)]
    )  # fmt: skip


class BlockMeans:
    """Sums of flat iterates in blocks of consecutive steps; the mean over kept blocks.

    Parameters
    ----------
    max_blocks : int, default 64
        Most blocks kept: memory is ``max_blocks`` vectors, whatever the number of steps.

    Examples
    --------
    >>> import numpy as np
    >>> means = BlockMeans(max_blocks=16)
    >>> for step in range(1, 101):
    ...     means.add(step, np.array([float(step)]))
    ...     if step % 10 == 0:
    ...         means.close_block()
    >>> len(means.sums), means.mean()
    (10, array([50.5]))
    >>> means.drop_before(51)
    >>> means.first_step, means.mean()
    (51, array([75.5]))
    """

    def __init__(self, max_blocks: int = 64):
        self.max_blocks = max_blocks
        self.sums: list[np.ndarray] = []
        self.counts: list[int] = []
        self.starts: list[int] = []
        self._open = False

    @property
    def count(self) -> int:
        """Iterates in the kept blocks."""
        return sum(self.counts)

    @property
    def first_step(self) -> int | None:
        """Step of the first kept iterate."""
        return self.starts[0] if self.starts else None

    def add(self, step: int, values: np.ndarray) -> None:
        """Add the iterate of ``step`` to the open block (opening one if needed)."""
        if self._open:
            self.sums[-1] += values
            self.counts[-1] += 1
            return
        self.sums.append(np.array(values, dtype=np.float64))
        self.counts.append(1)
        self.starts.append(step)
        self._open = True

    def close_block(self) -> None:
        """End the open block; merge neighbours while there are more than ``max_blocks``."""
        self._open = False
        while len(self.sums) > self.max_blocks:
            self.sums[:] = [_pair_sum(self.sums, k) for k in range(0, len(self.sums), 2)]
            self.counts[:] = [sum(self.counts[k : k + 2]) for k in range(0, len(self.counts), 2)]
            self.starts[:] = self.starts[::2]

    def drop_before(self, step: int) -> None:
        """Drop the blocks that start before ``step`` (the open one is kept)."""
        keep = [k for k, start in enumerate(self.starts) if start >= step]
        if self._open and self.sums and len(self.sums) - 1 not in keep:
            keep.append(len(self.sums) - 1)
        self._keep(keep)

    def drop_first_half(self) -> None:
        """Drop the oldest blocks holding (about) the first half of the iterates."""
        cumulative = np.cumsum(self.counts)
        first_kept = int(np.searchsorted(cumulative, cumulative[-1] / 2, side="right"))
        self._keep(list(range(min(first_kept, len(self.sums) - 1), len(self.sums))))

    def reset(self) -> None:
        """Forget every iterate."""
        self._keep([])

    def mean(self) -> np.ndarray:
        """Mean of the kept iterates.

        Raises
        ------
        ValueError
            If nothing is kept.
        """
        if not self.sums:
            raise ValueError("no iterates were averaged")
        return np.sum(self.sums, axis=0) / self.count

    def _keep(self, indices: list[int]) -> None:
        self.sums[:] = [self.sums[k] for k in indices]
        self.counts[:] = [self.counts[k] for k in indices]
        self.starts[:] = [self.starts[k] for k in indices]
        self._open = self._open and bool(indices)


def _pair_sum(sums: list[np.ndarray], k: int) -> np.ndarray:
    return sums[k] + sums[k + 1] if k + 1 < len(sums) else sums[k]


def unflatten(approx: Any, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat vector (`flat_params` order) into parameter values by label."""
    values, offset = {}, 0
    for e in param_entries(approx):
        shape = np.shape(e.param.get_value(borrow=True))
        size = int(np.prod(shape))
        values[e.label] = flat[offset : offset + size].reshape(shape)
        offset += size
    return values


def apply_average(approx: Any, average: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Write ``average`` (by parameter label) into ``approx``; return the replaced values."""
    last = read_params(approx)
    write_params(approx, average)
    return last


class IterateAveraging:
    """Average the variational parameters from step ``start`` on.

    Parameters
    ----------
    start : int or float, default 0.5
        First step averaged: an int is a step number (1-based, as PyMC counts), a float
        in (0, 1) a fraction of ``n``.
    n : int, optional
        Number of steps of the fit; needed for a fractional ``start``. When given, the
        average is written into the approximation after step ``n``.
    keep_last : bool, default False
        Keep the last iterate in the approximation; the average stays in `average`.

    Attributes
    ----------
    average : dict of str to ndarray
        The mean per parameter label (``mu``, ``rho``, ...; ``"0/mu"``, ``"1/mu"``, ...
        with several groups); empty before step ``start``.
    count : int
        Number of iterates averaged.
    last_iterate : dict of str to ndarray
        The parameters as they were before `apply` replaced them.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import IterateAveraging, adadelta
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     averaging = IterateAveraging(start=0.5, n=400)
    ...     approx = pm.fit(400, obj_optimizer=adadelta(), callbacks=[averaging],
    ...                     progressbar=False)
    >>> averaging.count, sorted(averaging.average)
    (201, ['mu', 'rho'])
    """

    def __init__(self, start: int | float = 0.5, *, n: int | None = None, keep_last: bool = False):
        if n is not None:
            check_positive_int("n", n)
        self.start = _first_step(start, n)
        self.n = n
        self.keep_last = keep_last
        self.last_iterate: dict[str, np.ndarray] = {}
        self._means = BlockMeans(max_blocks=1)
        self._approx: Any = None

    @property
    def count(self) -> int:
        """Number of iterates averaged."""
        return self._means.count

    @property
    def average(self) -> dict[str, np.ndarray]:
        """The running mean by parameter label."""
        if not self.count:
            return {}
        return unflatten(self._approx, self._means.mean())

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """Fold the iterate of step ``i`` into the mean once ``i >= start``."""
        if i < self.start:
            return
        self._approx = approx
        self._means.add(i, flat_params(approx))
        if i == self.n:
            self.apply()

    def apply(self) -> None:
        """Write the average into the approximation (unless ``keep_last``).

        Raises
        ------
        ValueError
            If nothing was averaged (the fit stopped before ``start``).
        """
        if not self.count:
            raise ValueError(
                f"nothing was averaged: the fit stopped before step start={self.start}"
            )
        if self.keep_last:
            self.last_iterate = read_params(self._approx)
        else:
            self.last_iterate = apply_average(self._approx, self.average)


def _first_step(start: int | float, n: int | None) -> int:
    if isinstance(start, bool) or not isinstance(start, int | float | np.integer):
        raise TypeError(f"start must be a step number or a fraction of n, got {start!r}")
    if isinstance(start, float):
        if not 0 < start < 1:
            raise ValueError(f"a fractional start must be in (0, 1), got {start!r}")
        if n is None:
            raise ValueError(f"start={start!r} is a fraction of n: pass n as well")
        return int(np.ceil(start * n))
    if start < 1:
        raise ValueError(f"start must be >= 1, got {start!r}")
    return int(start)
