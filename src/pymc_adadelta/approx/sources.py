"""Whether an array-like data source can still be read.

A zarr array whose store was deleted still answers reads, with its fill value for every
chunk it cannot find: rows of zeros that look like data. `store_exists` tells, and
`StreamedDataError` is what the readers raise then (`StreamingBatches` while a fit
streams batches, the full-data passes of `pymc_adadelta.approx.full_data` while a fit
or an export reads all rows).
"""

from __future__ import annotations

from typing import Any

__all__ = ["StreamedDataError", "store_exists"]


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
