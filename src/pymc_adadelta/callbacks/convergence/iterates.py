"""What the iterate-based rules record: tracked coordinates and the running average.

Memory is bounded whatever the number of steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pymc_adadelta.approx.draws import group_sd
from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.callbacks.averaging import BlockMeans, flat_params, unflatten

__all__ = ["MAX_RECORDS", "IterateRule", "RuleSettings", "TrackedIterates"]

#: Most recorded iterates of the tracked coordinates; beyond it every other one is
#: dropped and the recording stride doubles (a thinned buffer of bounded size).
MAX_RECORDS = 4096


class RuleSettings(NamedTuple):
    """The settings of `Convergence` that its rules read."""

    check_every: int
    min_steps: int
    thin: int
    min_window: int
    max_coords: int
    rhat_threshold: float
    mcse_threshold: float
    tol_rel_obj: float
    cusum_allowance: float
    cusum_threshold: float
    cusum_halflife: int


class TrackedIterates:
    """Tracked coordinates, recorded every ``thin`` steps, and the block means of all.

    A seeded subset of at most ``max_coords`` coordinates is recorded; the average
    covers every parameter.

    For a location coordinate (``mu``) the scale is the approximation's sd of that
    coordinate (Dhaka et al. 2020), 1 for the others.
    """

    def __init__(self, max_coords: int, thin: int):
        self.max_coords = max_coords
        self.stride = thin
        self.values: list[np.ndarray] = []
        self.steps: list[int] = []
        self.means = BlockMeans()
        self._approx: Any = None
        self._coords: np.ndarray | None = None
        self._location: np.ndarray | None = None

    def record(self, approx: Any, i: int) -> None:
        """Record step ``i`` if it falls on the current stride."""
        if i % self.stride:
            return
        if self._approx is None:
            self._start(approx)
        flat = flat_params(approx)
        self.values.append(flat[self._coords])
        self.steps.append(i)
        self.means.add(i, flat)
        if len(self.values) > MAX_RECORDS:
            self.values, self.steps = self.values[1::2], self.steps[1::2]
            self.stride *= 2

    def draws(self) -> np.ndarray:
        """The recorded tracked coordinates, shape ``(records, coords)``."""
        return np.asarray(self.values)

    def keep_from(self, index: int) -> None:
        """Forget the records before ``index`` and the averaged iterates before its step."""
        if index >= len(self.steps):
            return
        self.values, self.steps = self.values[index:], self.steps[index:]
        self.means.drop_before(self.steps[0])

    def scales(self) -> np.ndarray:
        """Per tracked coordinate: the approximation's sd for means, 1 otherwise."""
        assert self._location is not None
        std = np.concatenate([group_sd(g) for g in self._approx.groups])
        return np.where(self._location >= 0, std[np.maximum(self._location, 0)], 1.0)

    def average(self) -> dict[str, np.ndarray]:
        """The mean of the averaged iterates, by parameter label."""
        return unflatten(self._approx, self.means.mean())

    def _start(self, approx: Any) -> None:
        self._approx = approx
        location, latent_offset = [], {}
        offset = 0
        for g, group in enumerate(approx.groups):
            latent_offset[g] = offset
            offset += group.ddim
        for entry in param_entries(approx):
            size = entry.param.get_value(borrow=True).size
            is_mean = entry.name == "mu"
            start = latent_offset[entry.group_index]
            location.append(np.arange(size) + start if is_mean else np.full(size, -1))
        total = sum(len(loc) for loc in location)
        rng = np.random.default_rng(0)
        self._coords = (
            np.sort(rng.choice(total, self.max_coords, replace=False))
            if total > self.max_coords
            else np.arange(total)
        )
        self._location = np.concatenate(location)[self._coords]


class IterateRule:
    """What the iterate-based rules share: settings, checks and recorded iterates.

    Also when the iterates were found stationary and from which step they are averaged.
    """

    def __init__(self, settings: RuleSettings, checks: list[dict[str, float]]):
        self.settings = settings
        self.checks = checks
        self.iterates = TrackedIterates(settings.max_coords, settings.thin)
        self.stationary_at: int | None = None
        self.window_start: int | None = None
