"""The step loop of `fit`: steps, callbacks after each, and Ctrl-C turned into a clean stop."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Outcome", "deferred_interrupt", "run_steps"]


class Outcome(NamedTuple):
    """How the step loop ended."""

    reason: str | None  # "non-finite", "interrupted", or None: done or stopped by a callback
    clean: bool  # every step taken ran all its callbacks: the state is worth checkpointing


def run_steps(
    step: Any, approx: Any, callbacks: Sequence[Any], losses: np.ndarray | None, first: int, n: int
) -> Outcome:
    """Take steps ``first..n``, calling the callbacks after each, until one stops the fit."""
    with deferred_interrupt() as interrupted:
        try:
            for i in range(first, n + 1):
                value = step()
                seen = None
                if losses is not None:
                    loss = float(value)
                    if loss != loss:  # NaN: stop before the callbacks, as PyMC does
                        return Outcome("non-finite", clean=False)
                    losses[i - 1] = loss
                    seen = losses[:i]
                for callback in callbacks:
                    callback(approx, seen, i)
                if i < n and interrupted():
                    return Outcome("interrupted", clean=True)
        except StopIteration:
            return Outcome(None, clean=True)
        except KeyboardInterrupt:  # a second Ctrl-C, or one we could not defer
            return Outcome("interrupted", clean=False)
    return Outcome(None, clean=True)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a request to stop after the step under way.

    Yields a function telling whether Ctrl-C was pressed; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Only done where Python's own handler is installed, in
    the main thread (as in a terminal or a Jupyter kernel); elsewhere Ctrl-C behaves as
    it otherwise would.
    """
    requested: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)

    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not ours:
        yield lambda: False
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
