"""One checker per argument kind; each message names the argument the user passed."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_callbacks",
    "check_draws",
    "check_int_at_least",
    "check_positive_int",
    "check_random_seed",
    "check_threshold",
    "check_writable_file",
    "is_positive_int",
]


def is_positive_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer ≥ 1 (booleans are not)."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and bool(value >= 1)


def check_int_at_least(name: str, value: Any, low: int) -> None:
    """Raise ValueError, naming ``name``, unless ``value`` is an integer ≥ ``low``."""
    is_int = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if not is_int or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_positive_int(name: str, value: Any, what: str = "integer") -> None:
    """Raise ValueError, naming ``name`` and ``value``, unless it is a positive integer."""
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive {what}, got {value!r}")


def check_draws(draws: Any) -> None:
    """Raise ValueError unless ``draws`` is a positive integer."""
    check_positive_int("draws", draws)


def check_bool(name: str, value: Any) -> None:
    """Raise TypeError, naming ``name``, unless ``value`` is True or False.

    A string such as ``"no"`` is truthy, so taking it as a flag would do the opposite.
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_random_seed(value: Any, name: str = "random_seed") -> None:
    """Raise unless ``value`` is None or seeds NumPy's ``default_rng`` / ``SeedSequence``.

    Accepted: None, a non-negative integer, a sequence of them, a ``SeedSequence``, a
    ``Generator`` or a ``RandomState`` (what PyMC takes). A boolean is not a seed, though
    NumPy would take True as 1.

    Raises
    ------
    TypeError
        Naming ``name``, the value and what NumPy said of it.
    """
    if value is None or isinstance(
        value, np.random.Generator | np.random.SeedSequence | np.random.RandomState
    ):
        return
    what = "a boolean is not a seed" if isinstance(value, bool | np.bool_) else None
    if what is None:
        try:
            np.random.SeedSequence(value)
        except (TypeError, ValueError) as error:
            what = str(error)
    if what is not None:
        raise TypeError(
            f"{name} must be None, a non-negative integer, a sequence of them, a "
            f"numpy SeedSequence, Generator or RandomState, got {value!r} ({what})"
        )


def check_threshold(name: str, value: Any, *, above: float) -> None:
    """Raise ValueError, naming ``name``, unless ``value`` is a finite real number > ``above``."""
    is_real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    if not is_real or not np.isfinite(value) or not value > above:
        raise ValueError(f"{name} must be a number > {above}, got {value!r}")


def check_callbacks(callbacks: Any, name: str = "callbacks") -> list[Any]:
    """Return ``callbacks`` as a list after checking each is called as ``(approx, losses, i)``.

    Raises
    ------
    TypeError
        If ``callbacks`` is not a list or tuple, or an entry is not callable with three
        positional arguments; the message names the entry (``callbacks[1]``).
    """
    if callbacks is None:
        return []
    if callable(callbacks) or not isinstance(callbacks, list | tuple):
        raise TypeError(
            f"{name} must be a list of callables, got {type(callbacks).__name__}"
            + (
                f": write {name}=[{getattr(callbacks, '__name__', 'callback')}]"
                if callable(callbacks)
                else ""
            )
        )
    for k, callback in enumerate(callbacks):
        if isinstance(callback, type) or not callable(callback):
            what = "a class (pass an instance)" if isinstance(callback, type) else "not callable"
            raise TypeError(
                f"{name}[{k}] is {what}: {callback!r}; a callback is called as "
                f"callback(approx, losses, i) after each step"
            )
        try:
            inspect.signature(callback).bind(None, None, 0)
        except TypeError as error:
            raise TypeError(
                f"{name}[{k}] ({callback!r}) cannot be called as callback(approx, losses, i): "
                f"{error}"
            ) from error
        except ValueError:  # builtins without a signature: accepted as PyMC does
            pass
    return list(callbacks)


def check_writable_file(path: Any, name: str = "path") -> Path:
    """Return ``path`` as a Path after checking that a checkpoint can be written there.

    Raises
    ------
    TypeError
        If ``path`` is not a string or path.
    ValueError
        If it is a directory, its folder does not exist, or the folder is not writable.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a file path, got {type(path).__name__}")
    where = Path(path)
    if where.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a directory; give a file name, e.g. fit.npz")
    if not where.parent.is_dir():
        raise ValueError(f"{name}={str(path)!r} is in a folder that does not exist")
    try:
        with tempfile.TemporaryFile(dir=where.parent):
            pass
    except OSError as error:
        raise ValueError(f"{name}={str(path)!r}: cannot write in its folder ({error})") from error
    return where
