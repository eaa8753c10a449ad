"""Write an npz file atomically: a crash mid-write leaves the previous file intact."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["fsync_directory", "remove_stale_temporaries", "write_npz_atomically"]


def write_npz_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as npz to a temporary file, fsync it, then rename it to ``path``."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy's stub
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        remove_stale_temporaries(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files that interrupted writes of ``path`` left behind.

    A write killed before its rename (``kill -9``, a pre-empted job) leaves
    ``.<name>.XXXX.tmp`` beside the file; the next successful write, and a resume,
    remove them. Returns the files removed.
    """
    removed = []
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed
