"""`IterateAveraging`: a running mean of the variational parameters.

At a fixed learning rate the late iterates of stochastic VI wander around the optimum;
their average is much closer to it than the last iterate (Dhaka et al. 2020). The mean is
updated in place each step from ``start`` on, and written into the approximation by
`IterateAveraging.apply` (called automatically after the last step when ``n`` is known).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["IterateAveraging"]


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
        The running mean per parameter name (``mu``, ``rho``, ...).
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
    >>> averaging.count
    201
    """

    def __init__(self, start: int | float = 0.5, *, n: int | None = None, keep_last: bool = False):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive integer or None, got {n!r}")
        self.start = _first_step(start, n)
        self.n = n
        self.keep_last = keep_last
        self.average: dict[str, np.ndarray] = {}
        self.count = 0
        self.last_iterate: dict[str, np.ndarray] = {}
        self._params: list[tuple[str, Any, np.ndarray]] = []
        self._approx: Any = None

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Fold the iterate of step ``i`` into the mean once ``i >= start``."""
        if i < self.start:
            return
        if self._approx is None:
            self._start(approx)
        self.count += 1
        weight = 1.0 / self.count
        for _, param, mean in self._params:
            value = param.get_value(borrow=True)
            mean += weight * (value - mean)
        if i == self.n:
            self.apply()

    def apply(self) -> None:
        """Write the average into the approximation (unless ``keep_last``)."""
        if not self.count:
            raise ValueError(
                f"nothing was averaged: the fit stopped before step start={self.start}"
            )
        self.last_iterate = {name: p.get_value().copy() for name, p, _ in self._params}
        if not self.keep_last:
            for _, param, mean in self._params:
                param.set_value(mean.astype(param.get_value(borrow=True).dtype))

    def _start(self, approx: Any) -> None:
        self._approx = approx
        self._params = [
            (name, param, np.zeros_like(param.get_value(), dtype=np.float64))
            for group in approx.groups
            for name, param in group.params_dict.items()
        ]
        self.average = {name: mean for name, _, mean in self._params}


def _first_step(start: int | float, n: int | None) -> int:
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise TypeError(f"start must be a step number or a fraction of n, got {start!r}")
    if isinstance(start, float):
        if not 0 < start < 1:
            raise ValueError(f"a fractional start must be in (0, 1), got {start!r}")
        if n is None:
            raise ValueError(f"start={start!r} is a fraction of n: pass n as well")
        return int(np.ceil(start * n))
    if start < 1:
        raise ValueError(f"start must be >= 1, got {start!r}")
    return start
