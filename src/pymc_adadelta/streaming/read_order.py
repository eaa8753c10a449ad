"""The order in which `StreamingBatches` reads rows: shuffled chunks, shuffled rows.

Chunked stores (zarr, dask, HDF5) read and decompress whole chunks, so picking random
rows one by one would read a whole chunk for each row. Instead, every epoch visits the
chunks in a random order and reads ``chunks_per_read`` of them at a time (more when they
hold less than a batch), shuffling the rows of each read. Batches are cut from the reads
in turn; the rows left at the end of a read start the next batch, across epochs too, so
every batch is full and every row is used once per epoch. A batch thus mixes rows from
``chunks_per_read`` random places of the data: close to i.i.d. sampling when chunks are
small next to the data, while each byte is read from disk once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from pymc_adadelta.approx.full_data import NonFiniteDataError
from pymc_adadelta.approx.sources import StreamedDataError, store_exists

__all__ = ["Batch", "BatchCutter", "ChunkedRows", "StreamedDataError", "block_stream",
           "check_finite", "store_exists"]  # fmt: skip

Batch = tuple[np.ndarray, ...]


class ChunkedRows(NamedTuple):
    """Arrays of the same length, read together chunk by chunk and cast to ``dtypes``."""

    arrays: Sequence[Any]
    dtypes: Sequence[np.dtype]
    bounds: np.ndarray  # chunk boundaries, from `own_chunk_bounds`
    labels: Sequence[str] = ()  # how errors name the arrays ("source", "source['x']")

    def read(self, chunk: int) -> Batch:
        """The rows of chunk number ``chunk`` of every array, checked.

        Raises `StreamedDataError` when a zarr store is gone (zarr would return fill
        values for every chunk it cannot find), `NonFiniteDataError` when the rows hold
        NaN or inf.
        """
        start, stop = int(self.bounds[chunk]), int(self.bounds[chunk + 1])
        rows = []
        for k, (array, dtype) in enumerate(self._pairs()):
            label = self.labels[k] if k < len(self.labels) else f"source[{k}]"
            if not store_exists(array):
                raise StreamedDataError(
                    f"{label}: the zarr store {array.store_path} is gone (its metadata "
                    f"cannot be found) while reading rows {start}:{stop}; zarr would "
                    f"return fill values for them"
                )
            values = np.asarray(array[start:stop], dtype=dtype)
            check_finite(label, values, start)
            rows.append(values)
        return tuple(rows)

    def _pairs(self) -> Iterator[tuple[Any, np.dtype]]:
        return zip(self.arrays, self.dtypes, strict=True)


def check_finite(label: str, values: np.ndarray, start: int) -> None:
    """Raise `NonFiniteDataError` naming the rows (from ``start``) that hold NaN or inf."""
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)) + start
    shown = ", ".join(map(str, bad[:5].tolist())) + (", ..." if bad.size > 5 else "")
    raise NonFiniteDataError(
        f"{label} has NaN or inf in {bad.size} rows of rows {start}:{start + len(values)} "
        f"(rows {shown}); drop or impute them"
    )


def block_stream(
    rows: ChunkedRows, min_rows: int, chunks_per_read: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """Yield reads of random chunks, their rows shuffled, epoch after epoch.

    A read takes the next ``chunks_per_read`` chunks of the epoch's random order, and
    more while they hold fewer than ``min_rows`` rows; the last of an epoch may be short.
    The shuffle happens here, in the reader's thread, so that a batch is then a view.
    """
    sizes = np.diff(rows.bounds)
    while True:
        for group in _groups(rng.permutation(len(sizes)), sizes, min_rows, chunks_per_read):
            block = _concat([rows.read(int(c)) for c in group])
            order = rng.permutation(len(block[0]))
            yield tuple(np.take(part, order, axis=0) for part in block)


class BatchCutter:
    """Cuts batches of ``batch_size`` rows, in turn, from the reads ``next_read`` returns.

    A batch is a view of one read, or joins the end of a read to the start of the next.
    """

    def __init__(self, next_read: Callable[[], Batch], batch_size: int) -> None:
        self._next_read, self._batch_size = next_read, batch_size
        self._read: Batch = ()
        self._offset = 0

    def __call__(self) -> Batch:
        """The next batch."""
        parts, missing = [], self._batch_size
        while missing:
            if not self._read or self._offset == len(self._read[0]):
                self._read, self._offset = self._next_read(), 0
            stop = min(self._offset + missing, len(self._read[0]))
            parts.append(tuple(part[self._offset : stop] for part in self._read))
            missing -= stop - self._offset
            self._offset = stop
        return _concat(parts)


def _groups(
    order: np.ndarray, sizes: np.ndarray, min_rows: int, min_chunks: int
) -> Iterator[list[int]]:
    group: list[int] = []
    for chunk in order:
        group.append(chunk)
        if len(group) >= min_chunks and sizes[group].sum() >= min_rows:
            yield group
            group = []
    if group:
        yield group


def _concat(pieces: list[Batch]) -> Batch:
    if len(pieces) == 1:
        return pieces[0]
    return tuple(np.concatenate(parts) for parts in zip(*pieces, strict=True))
