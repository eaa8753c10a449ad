"""The progress display of `pymc_adadelta.fit`: a rich progress bar driven by a callback.

The callback redraws at most every ``interval`` seconds (one clock read per step
otherwise) and rich's refresh thread is off, so the display costs little per step. On a
terminal or in a notebook the bar updates in place; where output is not interactive (a
log file, CI), a plain line is printed every ``log_interval`` seconds so that long jobs
show signs of life, and one plain line at the end.

Nothing is cut to fit the width: the bar shrinks, or goes, to leave room for the text,
and text longer than a line wraps (a log line is never wrapped or cut). The remaining
time is an upper bound while a convergence rule may stop the fit early, and is not shown
once the fit has stopped.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

__all__ = ["ProgressDisplay"]

#: Steps whose finite losses are averaged for the displayed loss (as PyMC does).
LOSS_WINDOW = 1000
#: How the last check of a `Convergence` rule is shown.
_CHECK_LABELS = {"best_window_rhat": "R̂", "max_relative_mcse": "MCSE/sd", "rel_change": "Δ"}
#: The narrowest bar worth drawing; below it, the bar is left out.
_MIN_BAR = 10
_MAX_BAR = 40
_LABEL = "Fitting"


class ProgressDisplay:
    """Show step, smoothed loss, steps per second and convergence status of a fit.

    Parameters
    ----------
    n : int
        Total steps of the fit (at most: a convergence rule may stop it earlier).
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
    Fitting 100/100 ...
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
        self._live: Live | None = None
        self._started: float | None = None
        self._started_at = first_step - 1  # the step seen when the clock started
        self._next_draw = 0.0
        self._next_log = 0.0
        self._seen: tuple[int, np.ndarray | None] = (first_step - 1, None)

    @property
    def interactive(self) -> bool:
        """Whether the bar is redrawn in place (a terminal or a notebook)."""
        return bool(self.console.is_interactive or self.console.is_jupyter)

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Redraw after step ``i`` if ``interval`` seconds have passed since the last time."""
        self._seen = (i, losses)
        now = perf_counter()
        if now < self._next_draw:
            return
        if self._started is None:
            self._start(now)
        self._next_draw = now + self.interval
        self._draw(now)

    def close(self, status: str, step: int | None = None) -> None:
        """Draw the last step with ``status`` (e.g. the stop reason) and stop.

        ``step`` is the step the fit stopped at. It defaults to the last step this
        display saw, or the step at which the rule stopped the fit if later: a callback
        that stops the fit (the rule) runs before the display sees that step.
        """
        now = perf_counter()
        if self._started is None:
            self._start(now)
        seen, losses = self._seen
        if step is None:
            converged_at = getattr(self.rule, "converged_at", None) if self.rule else None
            step = max(seen, converged_at or 0)
        self._seen = (step, losses)
        self._draw(now, status)
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _start(self, now: float) -> None:
        self._started, self._started_at = now, self._seen[0]
        self._next_log = now + self.log_interval
        if self.interactive:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()

    def _draw(self, now: float, status: str | None = None) -> None:
        i, losses = self._seen
        final = status is not None
        loss, speed = _format(_smoothed(losses)), self._speed(i, now)
        status = status if final else self._status()
        times = self._times(i, now, final)
        if self._live is not None:
            text = "  ".join(t for t in (f"{i}/{self.n}", f"loss {loss}",
                                         f"{speed} steps/s", status, times) if t)  # fmt: skip
            # A converged fit is done: a full bar, not one stuck at i/n.
            total = i if final and status == "converged" else self.n
            self._live.update(self._line(text, i, total), refresh=True)
        elif final:
            parts = (f"{_LABEL} {i}/{self.n}", f"loss {loss}", f"{speed} steps/s", status, times)
            self._print("  ".join(p for p in parts if p))
        elif now >= self._next_log:
            self._next_log = now + self.log_interval
            parts = (f"step {i}/{self.n}", f"loss {loss}", f"{speed} steps/s", status, times)
            self._print("  ".join(p for p in parts if p))

    def _line(self, text: str, completed: int, total: int) -> Table:
        """The bar and the text on one line; the bar shrinks or goes to leave the text whole."""
        room = self.console.width - len(_LABEL) - len(text) - 2
        grid = Table.grid(padding=(0, 1))
        cells: list[Any] = [_LABEL]
        if room >= _MIN_BAR:
            cells.append(ProgressBar(total=max(total, 1), completed=completed,
                                     width=min(room, _MAX_BAR)))  # fmt: skip
        cells.append(Text(text, overflow="fold"))
        for _ in cells:
            grid.add_column(no_wrap=False)
        grid.add_row(*cells)
        return grid

    def _print(self, line: str) -> None:
        self.console.print(line, soft_wrap=True, markup=False, highlight=False, emoji=False)

    def _times(self, step: int, now: float, final: bool) -> str:
        """Elapsed, and while running the time left: ``0:02 (≤0:48 left)``.

        With a rule the fit may stop early, so the time left to ``n`` is an upper bound
        (``≤``); once the fit has stopped only the elapsed time is shown.
        """
        elapsed = now - (self._started or now)
        done = step - self._started_at
        if final or done <= 0 or elapsed <= 0:
            return _clock(elapsed)
        left = (self.n - step) * elapsed / done
        bound = "≤" if self.rule is not None else ""
        return f"{_clock(elapsed)} ({bound}{_clock(left)} left)"

    def _speed(self, step: int, now: float) -> str:
        elapsed = now - (self._started or now)
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


def _clock(seconds: float) -> str:
    """``h:mm:ss`` (``m:ss`` under an hour)."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _smoothed(losses: np.ndarray | None) -> float:
    if losses is None or not len(losses):
        return np.nan
    recent = losses[-LOSS_WINDOW:]
    finite = recent[np.isfinite(recent)]
    return float(finite.mean()) if len(finite) else np.nan


def _format(loss: float) -> str:
    return f"{loss:,.5g}" if np.isfinite(loss) else "-"
