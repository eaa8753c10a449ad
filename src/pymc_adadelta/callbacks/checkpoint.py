"""`Checkpoint`: save a fit to disk every so many steps, atomically, to resume it later.

The file format is `pymc_adadelta.persist.npz_format`; what it holds is a
`~pymc_adadelta.persist.fit_state.FitState`. A save never costs the fit: the path is
checked when the callback is made (before any step), and a save that fails later (disk
full, folder deleted) warns and keeps the previous file, and the fit goes on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from pymc_adadelta._validation import check_positive_int, check_writable_file
from pymc_adadelta.callbacks.tracking import AccumulatorTracker
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.atomic import remove_stale_temporaries
from pymc_adadelta.persist.fit_state import FitState, capture_state
from pymc_adadelta.persist.npz_format import read_state, write_state

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["Checkpoint"]

PathLike = str | os.PathLike[str]
HistorySource = AccumulatorTracker | Callable[[], xr.Dataset]


class Checkpoint:
    """Save the fit every ``every`` steps, so that it can be resumed.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file (npz; see `pymc_adadelta.persist.npz_format`). It is
        replaced atomically at each save.
    every : int, default 1000
        Steps between saves.
    optimizer : Adadelta, optional
        The fit's optimizer, whose state is saved; without it the checkpoint holds the
        parameters and history only and cannot resume a fit.
    history : AccumulatorTracker or callable, optional
        The tracker whose history is saved, or a function returning the history Dataset.
    step_function : pytensor Function, optional
        The compiled step function, whose random generators are saved; without it a
        resumed fit draws other (equally distributed) random numbers. `pymc_adadelta.fit`
        passes it.

    Attributes
    ----------
    last_step : int or None
        Step of the last checkpoint written.
    skipped : int
        Saves skipped because the parameters or the loss were not finite.
    failed : int
        Saves that failed (an OSError while writing); each warned.

    Raises
    ------
    ValueError
        If ``path`` is a directory or cannot be written, or ``every`` is not a positive
        integer.

    Examples
    --------
    >>> import pymc as pm, tempfile, os
    >>> from pymc_adadelta import Adadelta, Checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     opt = Adadelta()
    ...     save = Checkpoint(path, every=100, optimizer=opt)
    ...     approx = pm.fit(250, obj_optimizer=opt, callbacks=[save], progressbar=False)
    >>> save.last_step, Checkpoint.load(path).optimizer["step"]
    (200, 200)
    """

    def __init__(
        self,
        path: PathLike,
        every: int = 1000,
        *,
        optimizer: Adadelta | None = None,
        history: HistorySource | None = None,
        step_function: Any = None,
    ):
        check_positive_int("every", every)
        if optimizer is not None and not isinstance(optimizer, Adadelta):
            raise TypeError(f"optimizer must be an Adadelta or None, got {optimizer!r}")
        self.path = check_writable_file(path)
        remove_stale_temporaries(self.path)
        self.every = int(every)
        self.optimizer = optimizer
        self.history = history
        self.step_function = step_function
        self.last_step: int | None = None
        self.skipped = 0
        self.failed = 0

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """Save step ``i`` if it is one of every ``every`` steps."""
        if i % self.every == 0:
            self.save(approx, losses, i)

    def save(self, approx: Any, losses: np.ndarray | None, step: int) -> bool:
        """Write a checkpoint of ``approx`` after ``step`` steps now.

        Returns False, keeping the previous file, when the parameters or the last loss
        are not finite (a diverged state is not worth resuming) or the write failed
        (with a warning: the fit goes on).
        """
        state = capture_state(approx, step, optimizer=self.optimizer,
                              step_function=self.step_function, losses=losses,
                              history=_history(self.history))  # fmt: skip
        if not _finite(state):
            self.skipped += 1
            warnings.warn(f"step {step}: non-finite parameters or loss; kept the checkpoint "
                          f"of step {self.last_step}", RuntimeWarning, stacklevel=2)  # fmt: skip
            return False
        try:
            write_state(self.path, state)
        except OSError as error:
            self.failed += 1
            warnings.warn(f"step {step}: the checkpoint {str(self.path)!r} could not be written "
                          f"({error}); kept the one of step {self.last_step} and went on",
                          RuntimeWarning, stacklevel=2)  # fmt: skip
            return False
        self.last_step = step
        return True

    @staticmethod
    def load(path: PathLike) -> FitState:
        """Read and check the checkpoint at ``path``.

        Returns
        -------
        FitState
            With ``restore(approx, optimizer=None, step_function=None)`` to write it
            into a fit (see `pymc_adadelta.persist.fit_state.restore_state`).

        Raises
        ------
        ValueError
            If the file is truncated, corrupt, not a checkpoint, from a newer format, or
            an entry is malformed or not finite (the message names it).

        Examples
        --------
        >>> from pymc_adadelta import Checkpoint
        >>> Checkpoint.load("no-such-file.npz")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...
        """
        where = Path(path)
        remove_stale_temporaries(where)
        return read_state(where)


def _finite(state: FitState) -> bool:
    last = state.losses[-1] if len(state.losses) else 0.0
    return bool(np.isfinite(last)) and all(np.isfinite(v).all() for v in state.params.values())


def _history(source: HistorySource | None) -> xr.Dataset:
    if source is None:
        return xr.Dataset()
    if isinstance(source, AccumulatorTracker):
        return source.history if len(source) else xr.Dataset()
    return source()
