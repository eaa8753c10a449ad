"""One run of `fit` on one approximation: its parts, the loop, and the `FitResult`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from pymc.variational.inference import Inference

from pymc_adadelta.approx.warmstart import WarmStart
from pymc_adadelta.callbacks import AccumulatorTracker, Checkpoint, Convergence, DivergenceGuard
from pymc_adadelta.callbacks.averaging import apply_average
from pymc_adadelta.inference.loop import Outcome, deferred_interrupt, run_steps
from pymc_adadelta.inference.progress import ProgressDisplay
from pymc_adadelta.inference.result import FitResult
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState, capture_state

__all__ = ["TRACK_EVERY", "FitRun"]

#: Every how many steps `fit` records the accumulator summaries.
TRACK_EVERY = 10


@dataclass
class FitRun:
    """The state of one call of `fit`: its parts, callbacks and what was resumed."""

    inference: Inference
    optimizer: Adadelta
    rule: Convergence | None
    step: Any
    score: bool
    saved: FitState | None
    saver: Checkpoint | None
    warm_start: WarmStart | None = None
    tracker: AccumulatorTracker = field(init=False)
    guard: DivergenceGuard = field(init=False)

    def __post_init__(self) -> None:
        self.done = self.saved.step if self.saved is not None else 0
        self.tracker = AccumulatorTracker(self.optimizer, every=TRACK_EVERY)
        self.guard = DivergenceGuard(self.optimizer)
        if self.saver is not None:
            self.saver.history, self.saver.step_function = self.history, self.step

    def __call__(
        self, n: int, callbacks: list[Any], *, progressbar: bool, average: bool
    ) -> FitResult:
        """Run steps up to ``n`` with ``callbacks`` and build the `FitResult`.

        The result is built even when a second Ctrl-C arrives while it is being built:
        nothing computed is lost.
        """
        display = (
            ProgressDisplay(n, rule=self.rule, first_step=self.done + 1) if progressbar else None
        )
        rule = [self.rule] if self.rule is not None else []
        last = [c for c in (self.saver, display) if c is not None]
        losses = self._losses(n)
        approx = self.inference.approx
        # One deferral from before the first step until the result is built: a Ctrl-C
        # after the loop is only recorded, so nothing computed is lost.
        with deferred_interrupt():
            self.guard.snapshot(approx, self.done)  # a finite state from before step 1
            try:
                outcome = run_steps(self.step, approx, [self.guard, self.tracker, *rule,
                                    *callbacks, *last], losses, self.done + 1, n)  # fmt: skip
            except BaseException:
                if display is not None:
                    display.close("failed")
                raise
            return self._finish(outcome, losses, n, display, average)

    def _finish(
        self,
        outcome: Outcome,
        losses: np.ndarray | None,
        n: int,
        display: ProgressDisplay | None,
        average: bool,
    ) -> FitResult:
        stop_reason = self._stop_reason(outcome)
        n_steps = self.optimizer.state.n_steps
        if stop_reason is None:
            stop_reason = "max_steps" if n_steps >= n else "interrupted"
        if display is not None:
            display.close(stop_reason, step=n_steps)
        if self._worth_saving(outcome, stop_reason, n_steps):
            assert self.saver is not None
            self.saver.save(self.inference.approx, _first(losses, n_steps), n_steps)
        return self._result(stop_reason, _first(losses, n_steps), n_steps, average)

    def _worth_saving(self, outcome: Outcome, stop_reason: str, n_steps: int) -> bool:
        """Whether to write a last checkpoint: a clean stop at a step not saved yet."""
        fresh = self.saver is not None and self.saver.last_step != n_steps
        return fresh and outcome.clean and stop_reason != "non-finite"

    def history(self) -> xr.Dataset:
        """The tracker's history, after the saved one when resuming."""
        parts = [self.saved.history] if self.saved is not None else []
        if len(self.tracker):
            parts.append(self.tracker.history)
        parts = [p for p in parts if p.data_vars]
        if not parts:
            return xr.Dataset()
        return xr.concat(parts, dim="iteration") if len(parts) > 1 else parts[0].copy()

    def _losses(self, n: int) -> np.ndarray | None:
        """A buffer for every step's loss, holding the saved losses when resuming."""
        if not self.score:
            return None
        losses = np.full(max(n, self.done), np.nan)
        if self.saved is not None:
            saved = self.saved.losses
            losses[self.done - len(saved) : self.done] = saved
        return losses

    def _stop_reason(self, outcome: Outcome) -> str | None:
        if outcome.reason == "non-finite" and self.guard.stop_reason is None:
            self.guard.recover(self.inference.approx)  # a NaN or inf loss between checks
        for reason in (
            self.guard.stop_reason,
            self.rule.stop_reason if self.rule else None,
            outcome.reason,
        ):
            if reason:
                return reason
        return None

    def _result(
        self, stop_reason: str, losses: np.ndarray | None, n_steps: int, average: bool
    ) -> FitResult:
        approx = self.inference.approx
        _values_to_numpy([*approx.params, *self.optimizer.state.buffers])
        if losses is not None:  # where pm.fit leaves the losses
            self.inference.hist = approx.hist = losses.copy()
        converged = self.rule is not None and self.rule.converged
        history = self.history()
        history.attrs.update(converged=int(converged), stop_reason=stop_reason, n_steps=n_steps)
        history = history.sel(iteration=history.iteration <= n_steps) if history.sizes else history
        state = capture_state(approx, n_steps, optimizer=self.optimizer, step_function=self.step,
                              losses=losses, history=history)  # fmt: skip
        averaged = average and self.rule is not None and bool(self.rule.average)
        last_iterate = apply_average(approx, self.rule.average) if averaged else {}  # type: ignore[union-attr]
        return FitResult(approx, history, converged, stop_reason, n_steps, self.optimizer,
                         self.rule, last_iterate, self.done, warm_start=self.warm_start,
                         state=state, affected=tuple(self.guard.affected))  # fmt: skip


def _values_to_numpy(variables: Sequence[Any]) -> None:
    """Replace JAX arrays left in shared variables by NumPy arrays (pymc#8360).

    The JAX backend leaves its outputs in the shared variables; PyMC's own sampling and
    other backends then fail on them.
    """
    for variable in variables:
        value = variable.get_value(borrow=True)
        if not isinstance(value, np.ndarray):
            variable.set_value(np.asarray(value))


def _first(losses: np.ndarray | None, count: int) -> np.ndarray | None:
    return losses[:count] if losses is not None else None
