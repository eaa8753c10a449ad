"""Stan's ADVI rule: relative change of the mean loss between blocks of steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta.callbacks.convergence.iterates import RuleSettings

__all__ = ["StanRule"]


class StanRule:
    """Stan's rule: stop when the mean loss stops changing between blocks.

    Every ``check_every`` steps take the mean loss of the last block; the relative
    change against the previous block goes into a circular buffer of 10, and the fit
    stops when the buffer's mean or median is below ``tol_rel_obj`` (Kucukelbir et al.
    2017; Stan's ``advi`` with ``tol_rel_obj``).
    """

    def __init__(self, settings: RuleSettings, checks: list[dict[str, float]]):
        self.settings = settings
        self.checks = checks
        self._rel_changes: list[float] = []
        self._previous_block: float | None = None

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> bool:
        """Whether the fit converged at step ``i``."""
        every = self.settings.check_every
        if i < self.settings.min_steps or i % every:
            return False
        if losses is None or len(losses) < every:
            return False
        block = float(np.mean(losses[-every:]))
        previous, self._previous_block = self._previous_block, block
        if previous is None:
            return False
        self._rel_changes.append(abs((previous - block) / block))
        buffer = self._rel_changes[-10:]
        self.checks.append({"step": i, "rel_change": self._rel_changes[-1]})
        tol = self.settings.tol_rel_obj
        return len(buffer) >= 2 and bool(np.mean(buffer) < tol or np.median(buffer) < tol)
