"""The step loop of `fit`: steps, callbacks after each, and Ctrl-C turned into a clean stop."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
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
    """Take steps ``first..n``, calling the callbacks after each, until one stops the fit.

    The first Ctrl-C stops the loop after the step under way; a second one, while the loop
    runs, stops it at once. Either way the loop returns an `Outcome` rather than raising.
    Inside an enclosing `deferred_interrupt` (as `fit` holds one until its result is
    built), Ctrl-C after the loop is only recorded.
    """
    with deferred_interrupt() as interrupted, _abortable() as stopped_at_once:
        try:
            for i in range(first, n + 1):
                value = step()
                seen = None
                if losses is not None:
                    loss = float(value)
                    if not math.isfinite(loss):  # NaN or inf: stop at once
                        return Outcome("non-finite", clean=False)
                    losses[i - 1] = loss
                    seen = losses[:i]
                for callback in callbacks:
                    callback(approx, seen, i)
                if i < n and interrupted():
                    return Outcome("interrupted", clean=True)
        except StopIteration:
            return Outcome(None, clean=True)
    if stopped_at_once():  # a second Ctrl-C during a step or a callback
        return Outcome("interrupted", clean=False)
    return Outcome(None, clean=True)


class _Deferral:
    """The state of the `deferred_interrupt` of this process's main thread."""

    def __init__(self) -> None:
        self.requests = 0
        self.abortable = False  # whether a second Ctrl-C raises KeyboardInterrupt now
        self.hooks: list[Callable[[], None]] = []

    def handler(self, signum: int, frame: Any) -> None:
        self.requests += 1
        for hook in list(self.hooks):
            hook()
        if self.requests > 1 and self.abortable:
            self.abortable = False  # once: the loop's except clause must not be interrupted
            raise KeyboardInterrupt


_ACTIVE: list[_Deferral] = []  # the one in force, if any

#: Seconds after a fit that saw a Ctrl-C during which another Ctrl-C is taken as the
#: second tap of that double Ctrl-C, and ignored: after the deferral ends, Python only
#: runs the handler at the next call, which can be the caller's first one after `fit`
#: returned (the shared case saw 1 in 40 double taps 0-5 ms apart lost that way).
DOUBLE_TAP_SECONDS = 0.25


class _AfterInterrupt:
    """SIGINT handler left by a deferral that saw a Ctrl-C: quiet, then Python's own."""

    def __init__(self) -> None:
        self.until = time.monotonic() + DOUBLE_TAP_SECONDS

    def __call__(self, signum: int, frame: Any) -> None:
        if time.monotonic() < self.until:
            return
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.default_int_handler(signum, frame)


def _is_default(handler: Any) -> bool:
    """Python's own SIGINT handler, or the one a finished fit left (see `_AfterInterrupt`)."""
    return isinstance(handler, _AfterInterrupt) or handler is signal.default_int_handler


@contextlib.contextmanager
def deferred_interrupt(
    on_interrupt: Callable[[], None] | None = None,
) -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a request: yield a function telling whether Ctrl-C was pressed.

    Inside, Ctrl-C never raises, except a second one while `run_steps` takes a step (to
    stop a step that takes too long); ``on_interrupt`` is called on each Ctrl-C (from the
    signal handler: keep it to setting a flag). Nested uses share the outermost one's
    requests, so that `fit` can hold one from its first step until its result is built,
    and a quick double Ctrl-C never loses the result.

    Only done where Python's own handler is installed, in the main thread (as in a
    terminal or a Jupyter kernel); elsewhere Ctrl-C behaves as it otherwise would and the
    function yielded always says False.
    """
    if _ACTIVE and threading.current_thread() is threading.main_thread():
        deferral = _ACTIVE[-1]
        if on_interrupt is not None:
            deferral.hooks.append(on_interrupt)
        try:
            yield lambda: deferral.requests > 0
        finally:
            if on_interrupt is not None:
                deferral.hooks.remove(on_interrupt)
        return
    ours = threading.current_thread() is threading.main_thread() and _is_default(
        signal.getsignal(signal.SIGINT)
    )
    if not ours:
        yield lambda: False
        return
    deferral = _Deferral()
    if on_interrupt is not None:
        deferral.hooks.append(on_interrupt)
    signal.signal(signal.SIGINT, deferral.handler)
    _ACTIVE.append(deferral)
    try:
        yield lambda: deferral.requests > 0
    finally:
        _ACTIVE.remove(deferral)
        after = _AfterInterrupt() if deferral.requests else signal.default_int_handler
        signal.signal(signal.SIGINT, after)


@contextlib.contextmanager
def _abortable() -> Iterator[Callable[[], bool]]:
    """Let a second Ctrl-C raise inside the block; yield whether one did (it is swallowed).

    The handler raises at most once and turns itself off when it does, so the
    KeyboardInterrupt can only land inside this block, where it is caught.
    """
    deferral = _ACTIVE[-1] if _ACTIVE else None
    raised: list[bool] = []
    try:
        if deferral is not None:
            deferral.abortable = True
        try:
            yield lambda: bool(raised)
        finally:
            if deferral is not None:
                deferral.abortable = False
    except KeyboardInterrupt:  # the second Ctrl-C, or one we could not defer
        raised.append(True)
