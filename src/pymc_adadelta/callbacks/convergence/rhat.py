"""The R-hat rule, after Dhaka et al. 2020.

"Robust, accurate stochastic optimization for variational inference" (NeurIPS 2020).

The iterates of the variational parameters are treated as a Markov chain. Every
``check_every`` steps, for candidate windows of the last iterates, the split-R̂ of each
tracked coordinate is computed with ArviZ; the fit is *stationary* when the best window's
largest R̂ is below ``rhat_threshold``. The iterates are averaged from the start of that
window (``window_start``, rounded up to the first step recorded after a check), and the
fit stops when the Monte Carlo standard error (ArviZ's ``mcse``) of the window's mean is
below ``mcse_threshold`` on every tracked coordinate, in units of the approximation's sd
for location coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta._compat import mcse_of_mean, split_rhat
from pymc_adadelta.callbacks.convergence.iterates import IterateRule

__all__ = ["RhatRule", "max_split_rhat"]


class RhatRule(IterateRule):
    """See the module documentation."""

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> bool:
        """Whether the fit converged at step ``i``."""
        s = self.settings
        self.iterates.record(approx, i)
        if i < s.min_steps or i % s.check_every:
            return False
        self.iterates.means.close_block()
        draws = self.iterates.draws()
        if self.stationary_at is None:
            start = self._stationary_window(draws)
            if start is not None:
                self.stationary_at = i
                self.iterates.keep_from(start)
                self.window_start = self.iterates.means.first_step
            return False
        whole = np.array([len(draws) // 2 * 2])
        if max_split_rhat(draws, whole)[0] > s.rhat_threshold:
            # The window drifted after all: look for a stationary window again.
            self.stationary_at = self.window_start = None
            return False
        relative = float(np.max(mcse_of_mean(draws) / self.iterates.scales()))
        self.checks.append({"step": i, "max_relative_mcse": relative})
        if not self.iterates.means.count:
            return False
        self.window_start = self.iterates.means.first_step
        return relative <= s.mcse_threshold

    def _stationary_window(self, draws: np.ndarray) -> int | None:
        """Index of the first draw of the best stationary window, or None."""
        n = len(draws)
        smallest = max(self.settings.min_window // self.iterates.stride, 20)
        sizes = np.unique(np.linspace(smallest, 0.95 * n, 5).astype(int) // 2 * 2)
        sizes = sizes[(sizes >= 20) & (sizes <= n)]
        if not len(sizes):
            return None
        worst = max_split_rhat(draws, sizes)
        best = int(np.argmin(worst))
        self.checks.append(
            {"step": self.iterates.steps[-1], "best_window_rhat": float(worst[best])}
        )
        return n - int(sizes[best]) if worst[best] <= self.settings.rhat_threshold else None


def max_split_rhat(draws: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Largest split-R̂ over coordinates of each window of the last ``sizes`` draws.

    Every window is thinned to the smallest one's length so that one ArviZ call does all;
    each window is cut in two "chains", which split-R̂ halves again.
    """
    n, length = len(draws), int(sizes[0])
    windows = np.stack(
        [draws[np.linspace(n - size, n - 1, length).astype(int)] for size in sizes]
    ).reshape(len(sizes), 2, length // 2, -1)
    # fmax ignores the NaN of coordinates that did not move (a constant has no R̂)
    return np.fmax.reduce(split_rhat(windows), axis=-1)
