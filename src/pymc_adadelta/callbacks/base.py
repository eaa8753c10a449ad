"""The callback interface shared by every callback of this package.

PyMC calls each callback after every step as ``callback(approx, losses, i)``: the
approximation being fitted, the losses so far (``None`` for methods without a loss) and
the number of steps taken. Raising ``StopIteration`` ends the fit cleanly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["Callback"]


class Callback(Protocol):
    """What ``pm.fit(callbacks=[...])`` and `pymc_adadelta.fit` call after each step.

    Any callable with this signature qualifies; the package's callbacks are classes with
    state you can read after the fit. It is a static type (for annotations and mypy);
    `pymc_adadelta.fit` checks what it is given when it is called, naming a bad entry
    (``callbacks[1] is not callable``) before any work starts.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import Callback, adadelta
    >>> def stop_at_50(approx, losses, i):
    ...     if i == 50:
    ...         raise StopIteration("enough")
    >>> stopper: Callback = stop_at_50
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     approx = pm.fit(1000, obj_optimizer=adadelta(), callbacks=[stop_at_50],
    ...                     progressbar=False)
    >>> len(approx.hist)
    49
    """

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """React to step ``i`` (1-based) of a fit of ``approx``."""
