"""The CUSUM rule of the ``CheckLossConvergence`` proposed for PyMC (pymc#8384).

A one-sided CUSUM (Page 1954) on the standardized per-step improvement of the loss,
``S = max(0, S + allowance - z)``, where ``z`` is the loss decrease divided by a robust
noise scale (exponentially weighted successive differences of the decreases) and clipped
to [-4, 4]; armed from ``min_steps``, it stops once ``S > cusum_threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta.callbacks.convergence.iterates import RuleSettings

__all__ = ["CusumRule"]


class CusumRule:
    """Reads every step's loss; see the module documentation."""

    def __init__(self, settings: RuleSettings, checks: list[dict[str, float]]):
        self.settings = settings
        self.checks = checks
        self._cusum = _Cusum(1.0 - 0.5 ** (1.0 / settings.cusum_halflife))

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> bool:
        """Whether the fit converged at step ``i``."""
        if losses is None or len(losses) < 2:
            return False
        s = self.settings
        statistic = self._cusum.update(float(losses[-2] - losses[-1]), s.cusum_allowance,
                                       armed=i >= s.min_steps)  # fmt: skip
        if i % s.check_every == 0:
            self.checks.append({"step": i, "cusum": statistic})
        return statistic > s.cusum_threshold


class _Cusum:
    """One-sided CUSUM of standardized loss decreases, with a robust running scale."""

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.mean_sq_diff: float | None = None  # EW mean of (d_t - d_{t-1})^2
        self.previous: float | None = None
        self.statistic = 0.0

    def update(self, decrease: float, allowance: float, *, armed: bool) -> float:
        """Take the loss decrease of one step and return the CUSUM statistic."""
        if decrease != decrease or abs(decrease) == float("inf"):
            return self.statistic  # non-finite losses carry no evidence
        previous, self.previous = self.previous, decrease
        if previous is None:
            return self.statistic
        sq_diff = (decrease - previous) ** 2
        mean = self.mean_sq_diff
        if mean is not None:  # one spike must not inflate the scale for thousands of steps
            sq_diff = min(sq_diff, 100.0 * mean)
        self.mean_sq_diff = sq_diff if mean is None else mean + self.alpha * (sq_diff - mean)
        # Successive differences of an MA(1)-like series: E[(d_t - d_{t-1})^2] = 3 var(d)
        # for i.i.d. losses; a trend in d cancels out, so a fast-falling loss cannot
        # inflate the scale.
        scale = (self.mean_sq_diff / 3.0) ** 0.5
        if armed and scale > 0:
            z = min(max(decrease / scale, -4.0), 4.0)
            self.statistic = max(0.0, self.statistic + allowance - z)
        return self.statistic
