"""`StreamingBatches`: fit on data larger than memory, one batch per step, read ahead.

The observed data stay on disk (a zarr array, Parquet columns through `ParquetColumns`,
or dask, h5py, NumPy arrays); the model
holds one batch in its ``pm.Data`` containers, and the callback puts the next batch
there after every step, while a background thread reads the batches after it.
"""

from __future__ import annotations

import os
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pymc as pm

from pymc_adadelta._validation import check_positive_int, check_random_seed
from pymc_adadelta.approx.full_data import DataLeaf, NonFiniteDataError, register_source
from pymc_adadelta.approx.sources import own_chunk_bounds
from pymc_adadelta.streaming.checks import Stream, check_streams, check_total_size, pair_sources
from pymc_adadelta.streaming.parquet import ParquetColumns
from pymc_adadelta.streaming.read_order import (
    Batch,
    BatchCutter,
    ChunkedRows,
    StreamedDataError,
    block_stream,
)

__all__ = ["StreamingBatches"]

#: Errors about the rows read, raised again with the number of the batch they were for.
_DATA_ERRORS = (NonFiniteDataError, StreamedDataError)


class StreamingBatches:
    """A callback that feeds each step a new batch of rows read ahead from disk.

    At construction it checks the sources against the model and puts the first batch
    into the data containers, so the first step (and `fit`'s warm start) already sees
    one; after every step it puts the next one there (``shared.set_value``). A
    background thread reads the next ``prefetch`` reads of chunks meanwhile, so reading
    overlaps the steps; an error it meets is raised by the next call, in the fit's thread.

    Parameters
    ----------
    source : array, sequence of arrays or mapping of str to array
        The rows, along the first axis: a zarr array (or Parquet columns as a
        `ParquetColumns`, a dask, h5py or NumPy array), or one array per data
        container, all of the same length. Only the rows being read are in memory.
    data : str, pm.Data variable or sequence of them, optional
        The model's data containers that ``source`` feeds, in the same order. Leave out
        when ``source`` is a mapping: its keys name the containers. Each container's
        shape beyond the first axis and its dtype must fit the source's; its first
        length is free (create it with any rows, e.g. ``source[:batch_size]``).
    batch_size : int
        Rows per step; at most the length of the source.
    model : pm.Model, optional
        Defaults to the model on the context stack.
    prefetch : int, default 2
        Reads (of ``chunks_per_read`` chunks each) done ahead in the background.
    chunks_per_read : int, default 4
        Chunks of the source read together and shuffled together (see Notes); more
        when they hold fewer than ``batch_size`` rows.
    random_seed : int, sequence of ints, numpy SeedSequence or Generator, optional
        Seed of the order of the rows.

    Attributes
    ----------
    length : int
        Rows in the source, the ``total_size`` the observed variables must have.
    batches_fed : int
        Batches put into the containers so far (the first one included).
    wait_seconds : float
        Time the fit spent waiting for the reader: near zero when reading keeps up.

    Raises
    ------
    ValueError
        When an observed variable that depends on the containers has no ``total_size``
        or one other than the source's length (a wrong scale of the likelihood that no
        later check would notice), when ``batch_size`` exceeds the data, when a source's
        rows do not have the container's shape, its dtype does not cast safely to the
        container's, or the sources differ in length; when ``batch_size``, ``prefetch``
        or ``chunks_per_read`` is not a positive integer.
    TypeError
        When ``random_seed`` is not a seed (a string, a float, a boolean); the message
        names it.
    NonFiniteDataError
        From a call during the fit, when the rows read hold NaN or inf (or nulls, in a
        Parquet column); the message names the source, the batch and the rows.
    StreamedDataError
        From a call during the fit, when a zarr store went away.

    Notes
    -----
    Batch order: every epoch visits the chunks (along the first axis) in a random order,
    reads ``chunks_per_read`` of them at a time and shuffles their rows; batches are cut
    from the reads in turn, the rows left at the end of a read starting the next batch.
    Each chunk is read once per epoch, as stores read and decompress whole chunks, and
    every row is used once per epoch; a batch mixes rows from ``chunks_per_read`` random
    places of the data, close to independent sampling unless chunks are long next to
    the data. Memory: about ``prefetch + 2`` reads, whatever the length of the source.
    Unchunked (NumPy) sources are read in chunks of ``batch_size`` rows.

    Call `close` (or use the object as a context manager) to stop the reader when
    the fit is over; it also stops when the object is garbage collected.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc as pm
    >>> import zarr
    >>> from pymc_adadelta import StreamingBatches, fit
    >>> rng = np.random.default_rng(0)
    >>> source = zarr.create_array(zarr.storage.MemoryStore(), shape=(20_000, 2),
    ...                            chunks=(1_000, 2), dtype="float64")
    >>> x = rng.normal(size=20_000)
    >>> source[:] = np.column_stack([x, 2.0 * x + rng.normal(size=20_000)])
    >>> with pm.Model():
    ...     rows = pm.Data("rows", source[:100])
    ...     slope = pm.Normal("slope", 0.0, 10.0)
    ...     y = pm.Normal("y", slope * rows[:, 0], 1.0, observed=rows[:, 1],
    ...                   total_size=20_000)
    ...     with StreamingBatches(source, "rows", batch_size=100, random_seed=0) as stream:
    ...         result = fit(3_000, callbacks=[stream], progressbar=False, random_seed=0)
    >>> round(float(result.approx.mean.eval()[0]), 1)
    2.0
    """

    def __init__(
        self,
        source: Any,
        data: Any = None,
        *,
        batch_size: int,
        model: Any = None,
        prefetch: int = 2,
        chunks_per_read: int = 4,
        random_seed: Any = None,
    ) -> None:
        for name, value in [("batch_size", batch_size), ("prefetch", prefetch),
                            ("chunks_per_read", chunks_per_read)]:  # fmt: skip
            check_positive_int(name, value)
        check_random_seed(random_seed)
        model = pm.modelcontext(model)
        streams = pair_sources(source, data, model)
        self.length = check_streams(streams, batch_size)
        self.containers = tuple(s.container for s in streams)
        check_total_size(model, self.containers, self.length)
        register_source(model, [DataLeaf(s.container, s.source, s.label) for s in streams])
        self.batch_size, self.batches_fed = batch_size, 0
        rows = _chunked_rows(streams, self.length, batch_size)
        reads = block_stream(rows, batch_size, chunks_per_read, np.random.default_rng(random_seed))
        self._reader = _Reader(reads, prefetch)
        self._next_batch = BatchCutter(lambda: self._reader.next(self.batches_fed), batch_size)
        self._pending_error: ValueError | None = None
        try:
            self._feed()
        except _DATA_ERRORS as error:  # bad rows: raised by the fit's first step
            self._pending_error = error

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike[str], columns: Mapping[str, str | Sequence[str]], **kwargs: Any
    ) -> StreamingBatches:
        """Stream the columns of a Parquet file into the data containers they are mapped to.

        ``columns`` maps a container's name to one column (a 1-D container) or a list of
        columns (a 2-D one, in that order); the other keywords are those of the class.
        Row groups play the part of chunks: each is read whole, ahead of the fit.

        >>> stream = StreamingBatches.from_parquet(  # doctest: +SKIP
        ...     "rows.parquet", {"x": ["x1", "x2"], "y": "y"}, batch_size=1000)
        """
        sources = {name: ParquetColumns(path, cols) for name, cols in columns.items()}
        return cls(sources, batch_size=kwargs.pop("batch_size"), **kwargs)

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Put the batch of step ``i + 1`` into the data containers.

        Raises `NonFiniteDataError` naming the source, the batch and the rows when the
        rows read hold NaN or inf (nulls, in a Parquet column), `StreamedDataError` when
        a zarr store went away; also for the first batch, read at construction: its
        error is raised here, in the fit.
        """
        if self._pending_error is not None:
            raise self._pending_error
        self._feed()

    @property
    def wait_seconds(self) -> float:
        """Time the fit spent waiting for the reader: near zero when reading keeps up."""
        return self._reader.waited

    def close(self) -> None:
        """Stop the background reader; the containers keep the last batch."""
        self._reader.close()

    def __enter__(self) -> StreamingBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _feed(self) -> None:
        if self._reader.closed:
            raise RuntimeError("the stream is closed: create a new StreamingBatches")
        batch = self._next_batch()
        for container, values in zip(self.containers, batch, strict=True):
            container.set_value(values, borrow=True)
        self.batches_fed += 1


def _chunked_rows(streams: list[Stream], length: int, batch_size: int) -> ChunkedRows:
    """The sources, read in the chunks of the first one, cast to their containers' dtypes."""
    sources = [s.source for s in streams]
    dtypes = [np.dtype(s.container.type.dtype) for s in streams]
    bounds = own_chunk_bounds(sources[0], length, default=batch_size)
    return ChunkedRows(sources, dtypes, bounds, [s.label for s in streams])


class _Reader:
    """One background thread taking reads from an iterator, ``prefetch`` ahead."""

    def __init__(self, reads: Iterator[Batch], prefetch: int) -> None:
        self._reads = reads
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pymc_adadelta-stream")
        self._pending: deque[Future[Batch]] = deque(self._submit() for _ in range(prefetch))
        self.closed = False
        self.waited = 0.0
        weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)

    def next(self, batch: int) -> Batch:
        """The next read, for batch number ``batch``; raises the reader's exception."""
        self._pending.append(self._submit())
        started = time.perf_counter()
        try:
            return self._pending.popleft().result()
        except _DATA_ERRORS as error:
            self.close()
            raise type(error)(f"batch {batch}: {error}") from error
        except BaseException as error:
            self.close()
            error.add_note(f"(raised by StreamingBatches' reader, reading for batch {batch})")
            raise
        finally:
            self.waited += time.perf_counter() - started

    def close(self) -> None:
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self) -> Future[Batch]:
        return self._executor.submit(_next_read, self._reads)


def _next_read(reads: Iterator[Batch]) -> Batch:
    try:
        return next(reads)
    except StopIteration:  # would end the fit silently if raised in a callback
        raise RuntimeError("the source stopped yielding rows") from None
