"""The progress display of `pymc_adadelta.fit`: a rich progress bar driven by a callback.

The callback redraws at most every ``interval`` seconds (one clock read per step
otherwise) and rich's refresh thread is off, so the display costs little per step. On a
terminal or in a notebook the bar updates in place; where output is not interactive (a
log file, CI), rich draws the bar once at the end, and a plain line is printed every
``log_interval`` seconds so that long jobs show signs of life.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressDisplay"]

#: Steps whose finite losses are averaged for the displayed loss (as PyMC does).
LOSS_WINDOW = 1000
#: How the last check of a `Convergence` rule is shown.
_CHECK_LABELS = {"best_window_rhat": "R̂", "max_relative_mcse": "MCSE/sd", "rel_change": "Δ"}


class ProgressDisplay:
    """Show step, smoothed loss, steps per second and convergence status of a fit.

    Parameters
    ----------
    n : int
        Total steps of the fit.
    rule : Convergence, optional
        The stopping rule whose last check is shown.
    first_step : int, default 1
        The first step this display sees (later than 1 for a resumed fit).
    interval : float, default 0.1
        Shortest time between redraws, in seconds.
    log_interval : float, default 60.0
        Seconds between plain lines where output is not interactive.
    console : rich.console.Console, optional
        Where to draw; defaults to a console on standard output.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import Adadelta
    >>> display = ProgressDisplay(100)
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     approx = pm.fit(100, obj_optimizer=Adadelta(), callbacks=[display],
    ...                     progressbar=False)
    >>> display.close("max_steps")  # doctest: +ELLIPSIS
    Fitting ...
    """

    def __init__(
        self,
        n: int,
        *,
        rule: Any = None,
        first_step: int = 1,
        interval: float = 0.1,
        log_interval: float = 60.0,
        console: Console | None = None,
    ):
        self.n = n
        self.rule = rule
        self.first_step = first_step
        self.interval = interval
        self.log_interval = log_interval
        self.console = console or Console()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = 0.0
        self._started_at = first_step - 1  # the step seen when the clock started
        self._next_draw = 0.0
        self._next_log = 0.0
        self._seen: tuple[int, np.ndarray | None] = (first_step - 1, None)

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Redraw after step ``i`` if ``interval`` seconds have passed since the last time."""
        self._seen = (i, losses)
        now = perf_counter()
        if now < self._next_draw:
            return
        if self._progress is None:
            self._start(now)
        self._next_draw = now + self.interval
        self._draw(now)

    def close(self, status: str) -> None:
        """Draw the last step seen with ``status`` (e.g. the stop reason) and stop."""
        now = perf_counter()
        if self._progress is None:
            self._start(now)
        assert self._progress is not None
        self._draw(now, status)
        self._progress.stop()

    def _start(self, now: float) -> None:
        self._progress = Progress(
            TextColumn("Fitting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} steps/s"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._task = self._progress.add_task(
            "fit", total=self.n, completed=self.first_step - 1, loss="", speed="", status=""
        )
        self._started, self._started_at = now, self._seen[0]
        self._next_log = now + self.log_interval
        self._progress.start()

    def _draw(self, now: float, status: str | None = None) -> None:
        assert self._progress is not None and self._task is not None
        i, losses = self._seen
        final = status is not None
        loss, speed = _format(_smoothed(losses)), self._speed(i, now)
        status = status if final else self._status()
        self._progress.update(self._task, completed=i, loss=loss, speed=speed, status=status)
        if self.console.is_interactive or self.console.is_jupyter:
            self._progress.refresh()
        elif not final and now >= self._next_log:
            self._next_log = now + self.log_interval
            self.console.print(f"step {i}/{self.n}  loss {loss}  {speed} steps/s  {status}")

    def _speed(self, step: int, now: float) -> str:
        elapsed = now - self._started
        done = step - self._started_at
        return f"{done / elapsed:,.0f}" if elapsed > 0 and done > 0 else "-"

    def _status(self) -> str:
        rule = self.rule
        if rule is None:
            return ""
        if rule.converged:
            return "converged"
        if not rule.checks:
            first = -(-rule.min_steps // rule.check_every) * rule.check_every
            return f"first check at step {first}"
        last = rule.checks[-1]
        shown = [f"{_CHECK_LABELS.get(k, k)} {v:.3g}" for k, v in last.items() if k != "step"]
        stationary = "stationary, " if getattr(rule, "stationary_at", None) else ""
        return stationary + ", ".join(shown)


def _smoothed(losses: np.ndarray | None) -> float:
    if losses is None or not len(losses):
        return np.nan
    recent = losses[-LOSS_WINDOW:]
    finite = recent[np.isfinite(recent)]
    return float(finite.mean()) if len(finite) else np.nan


def _format(loss: float) -> str:
    return f"{loss:,.5g}" if np.isfinite(loss) else "-"
