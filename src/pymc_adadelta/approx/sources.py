"""Whether an array-like data source can still be read.

A zarr array whose store was deleted still answers reads, with its fill value for every
chunk it cannot find: rows of zeros that look like data. `store_exists` tells, and
`StreamedDataError` is what the readers raise then (`StreamingBatches` while a fit
streams batches, the full-data passes of `pymc_adadelta.approx.full_data` while a fit
or an export reads all rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["StreamedDataError", "chunk_bounds", "own_chunk_bounds", "store_exists"]


class StreamedDataError(ValueError):
    """A data source that went away while it is read (a zarr store deleted).

    Raised by `StreamingBatches` while a fit reads its batches, and by the full-data
    passes of a minibatch model's fit and export (the export then gives NaN ``lp`` with
    a warning); the message names the source and the rows being read. A ``ValueError``.
    Rows that hold NaN or inf (or nulls, in a Parquet column) raise `NonFiniteDataError`
    instead, wherever they are read, so one ``except`` catches that fault.

    Examples
    --------
    >>> from pymc_adadelta import StreamedDataError
    >>> issubclass(StreamedDataError, ValueError)
    True
    """


def store_exists(array: Any) -> bool:
    """False when ``array`` is a zarr array whose store no longer holds its metadata."""
    store_path = getattr(array, "store_path", None)
    if store_path is None or not hasattr(store_path, "store"):
        return True
    from zarr.core.sync import sync

    name = "zarr.json" if getattr(array.metadata, "zarr_format", 3) == 3 else ".zarray"
    key = f"{store_path.path}/{name}" if store_path.path else name
    return bool(sync(store_path.store.exists(key)))


def own_chunk_bounds(array: Any, length: int, default: int) -> np.ndarray:
    """Row boundaries ``[0, ..., length]`` of the chunks of ``array`` along its first axis.

    Reads zarr's ``read_chunk_sizes`` or ``chunks`` (ints or dask-style tuples of sizes,
    as Parquet row groups give them through `ParquetColumns`), h5py's ``chunks``; an
    unchunked array (NumPy) gets chunks of ``default`` rows.
    """
    sizes = getattr(array, "read_chunk_sizes", None)
    if sizes is None:
        try:
            sizes = getattr(array, "chunks", None)
        except NotImplementedError:  # zarr: irregular grid without read_chunk_sizes
            sizes = None
    first = sizes[0] if sizes else None
    if isinstance(first, Sequence):  # dask style: the size of every chunk
        return np.concatenate([[0], np.cumsum(first)]).astype(np.int64)
    step = int(first) if first else default
    return np.append(np.arange(0, length, step, dtype=np.int64), length)


def chunk_bounds(source: Any, length: int, rows: int) -> np.ndarray:
    """Boundaries of reads of whole chunks of ``source``: at most ``rows`` rows, or one chunk."""
    kept, previous = [0], 0
    for end in own_chunk_bounds(source, length, rows)[1:].tolist():
        if end - kept[-1] > rows and previous > kept[-1]:  # close the read before this chunk
            kept.append(previous)
        previous = end
    kept.append(length)
    return np.asarray(kept, dtype=np.int64)
