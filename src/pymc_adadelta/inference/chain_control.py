"""Stopping the chains of ``fit(..., chains=k)`` on Ctrl-C, and the script's main guard.

Ctrl-C reaches the parent alone (Jupyter's "interrupt kernel") or every process of the
group (a terminal). Either way every chain must stop after its current step and come
back with what it computed. One flag in shared memory says "stop": the parent sets it
from its deferred Ctrl-C handler, and each worker process sets it from its own SIGINT
handler (installed by `init_worker`, so that a worker never dies of KeyboardInterrupt,
even while it waits for a task). Every chain's fit checks it after each step with the
`StopWhenAsked` callback (a read of one byte), and a chain that has not started by then
does not start (`ChainNotStarted`).
"""

from __future__ import annotations

import ast
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["ChainNotStarted", "StopWhenAsked", "check_main_guard", "init_worker", "new_flag",
           "set_flag", "stop_requested"]  # fmt: skip


class _LocalFlag:
    """The flag of chains run in this process (``cores=1``, dask without processes)."""

    value = 0


#: The stop flag this process reads: a shared ``RawValue`` in pool workers.
_FLAG: Any = None


def new_flag(context: multiprocessing.context.BaseContext | None) -> Any:
    """A fresh stop flag: in shared memory for ``context``'s processes, else a local one."""
    return context.RawValue("b", 0) if context is not None else _LocalFlag()


def set_flag(flag: Any) -> Any:
    """Make ``flag`` the one this process reads; return the previous one."""
    global _FLAG
    previous, _FLAG = _FLAG, flag
    return previous


def init_worker(flag: Any) -> None:
    """Initializer of the pool's worker processes: read ``flag``, set it on Ctrl-C."""
    set_flag(flag)
    signal.signal(signal.SIGINT, _request_stop)


def _request_stop(signum: int, frame: Any) -> None:
    if _FLAG is not None:
        _FLAG.value = 1


def stop_requested() -> bool:
    """Whether Ctrl-C asked the chains to stop."""
    return _FLAG is not None and bool(_FLAG.value)


class ChainNotStarted(Exception):
    """A chain that Ctrl-C stopped before it started."""


class StopWhenAsked:
    """Callback that stops a chain's fit after the step during which Ctrl-C came.

    The fit then ends with ``stop_reason="interrupted"`` and keeps its history.
    """

    def __call__(self, approx: Any, losses: Any, i: int) -> None:
        """Raise StopIteration once the stop flag is set."""
        if _FLAG is not None and _FLAG.value:
            raise StopIteration


_GUARD_EXAMPLE = """
    if __name__ == "__main__":
        with pm.Model() as model:
            ...
        results = fit(model=model, chains=4)"""


def check_main_guard() -> None:
    """Raise at once if the chain workers would run the calling script's top level again.

    Worker processes started with ``forkserver`` or ``spawn`` import the main script
    (as ``__mp_main__``) to find what the parent defined there; a script that calls
    `fit` at its top level, outside ``if __name__ == "__main__":``, would run again in
    every worker, and multiprocessing would stop each of them with its "bootstrapping
    phase" error. Interactive sessions and notebooks have no main script to re-run.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or not Path(path).is_file():
        return
    line = _top_level_line(vars(main))
    if line is None or _guarded(Path(path), line):
        return
    raise RuntimeError(
        f"fit(chains=k) runs the chains in worker processes, and each of them imports "
        f"your script {path} again: its top level, which calls fit at line {line}, would "
        f"run again in every worker. Put the code that runs the fit under a main "
        f"guard:\n{_GUARD_EXAMPLE}\n\nor run the chains one after another in this "
        f"process with cores=1."
    )


def _top_level_line(main_globals: dict[str, Any]) -> int | None:
    """The line of the main script's top-level code that led to this call, if any."""
    frame = sys._getframe(1)
    line = None
    while frame is not None:
        if frame.f_globals is main_globals and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return line


def _guarded(path: Path, line: int) -> bool:
    """Whether ``line`` of ``path`` lies inside an ``if __name__ == "__main__":`` block."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return True  # cannot tell: let multiprocessing speak for itself
    return any(
        isinstance(node, ast.If)
        and _is_main_test(node.test)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    constants = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(constants) == 1
