"""Parquet sources: columns of a Parquet file as an array read one row group at a time.

`ParquetColumns` gives `StreamingBatches` (and the full-data passes of a minibatch fit)
what they read from a zarr array: ``shape``, ``dtype``, ``chunks`` (the row groups, in
the dask style ``((rows of group 0, rows of group 1, ...), (columns,))``) and row
slicing. Row groups are Parquet's unit of reading and decompression, so they play the
part of zarr's chunks: the reader of `StreamingBatches` reads whole row groups, a few at
a time and ahead of the fit, in its background thread. Only the columns asked for are
read (Parquet stores each column apart). Nulls become NaN in floating columns (and are
then refused by the same NaN check as any source); in other columns they raise
`NonFiniteDataError` too, naming the file, the column and the rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from pymc_adadelta.approx.full_data import NonFiniteDataError

__all__ = ["ParquetColumns"]


class ParquetColumns:
    """Columns of a Parquet file, as a read-only array of rows (pyarrow reads it).

    Parameters
    ----------
    path : str or os.PathLike
        The Parquet file.
    columns : str or sequence of str
        One column name (a 1-D array of the rows) or several (a 2-D array, the columns
        in this order). Each must hold numbers or booleans.

    Attributes
    ----------
    shape : tuple of int
        ``(rows,)`` or ``(rows, len(columns))``.
    dtype : numpy.dtype
        The common NumPy type of the columns.
    chunks : tuple
        Rows of every row group (and the number of columns), as dask writes chunks.

    Raises
    ------
    ImportError
        Without pyarrow (``pip install pymc-adadelta[streaming]``).
    ValueError
        When a column is not in the file (the message lists the file's columns).
    TypeError
        When a column does not hold numbers.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa, pyarrow.parquet as pq, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.parquet")
    >>> pq.write_table(pa.table({"x": np.arange(6.0), "y": np.arange(6) % 2}), path,
    ...                row_group_size=4)
    >>> x = ParquetColumns(path, ["x", "y"])
    >>> x.shape, x.dtype, x.chunks
    ((6, 2), dtype('float64'), ((4, 2), (2,)))
    >>> x[3:5].tolist()
    [[3.0, 1.0], [4.0, 0.0]]
    """

    def __init__(self, path: str | os.PathLike[str], columns: str | Sequence[str]) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as error:  # pragma: no cover - pyarrow is in the extras
            raise ImportError(
                "Parquet sources need pyarrow: pip install 'pymc-adadelta[streaming]'"
            ) from error
        self.path = os.fspath(path)
        self._file = pq.ParquetFile(self.path)
        self._lock = threading.Lock()  # the reader thread and the full-data passes share it
        self._one = isinstance(columns, str)
        self.columns = [columns] if isinstance(columns, str) else list(columns)
        schema = self._file.schema_arrow
        missing = [c for c in self.columns if c not in schema.names]
        if missing or not self.columns:
            raise ValueError(
                f"columns must name columns of {self.path}, got {missing or columns!r}; the "
                f"file has {schema.names}"
            )
        types = []
        for name in self.columns:
            kind = schema.field(name).type
            try:
                dtype = np.dtype(kind.to_pandas_dtype())
            except (NotImplementedError, TypeError):
                dtype = np.dtype(object)
            if dtype.kind not in "biuf":
                raise TypeError(
                    f"column {name!r} of {self.path} holds {kind}, not numbers: choose numeric "
                    f"columns"
                )
            types.append(dtype)
        self.dtype = np.result_type(*types)
        meta = self._file.metadata
        sizes = tuple(meta.row_group(k).num_rows for k in range(meta.num_row_groups))
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        rows = int(meta.num_rows)
        self.shape: tuple[int, ...] = (rows,) if self._one else (rows, len(self.columns))
        self.chunks: tuple[tuple[int, ...], ...] = (
            (sizes,) if self._one else (sizes, (len(self.columns),))
        )

    @property
    def ndim(self) -> int:
        """1 for one column, 2 for several."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"ParquetColumns({self.path!r}, {self.columns if not self._one else self.columns[0]!r})"
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        """Rows ``start:stop`` (a slice of step 1), read from the row groups holding them.

        Nulls in a column that is not floating raise `NonFiniteDataError`.
        """
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"a Parquet source is read by slices of rows, got {key!r}")
        start, stop, _ = key.indices(self.shape[0])
        if stop <= start:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left"))
        with self._lock:
            table = self._file.read_row_groups(list(range(first, last)), columns=self.columns,
                                               use_threads=False)  # fmt: skip
        table = table.slice(start - int(self._starts[first]), stop - start)
        arrays = [self._column(table.column(name), name, start) for name in self.columns]
        return arrays[0] if self._one else np.column_stack(arrays)

    def _column(self, column: Any, name: str, start: int) -> np.ndarray:
        if column.null_count and self.dtype.kind != "f":
            nulls = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)) + start
            shown = ", ".join(map(str, nulls[:5].tolist())) + (", ..." if nulls.size > 5 else "")
            raise NonFiniteDataError(
                f"{self.path}: column {name!r} has nulls in {nulls.size} rows of rows "
                f"{start}:{start + len(column)} (rows {shown}); drop or impute them"
            )
        values = column.to_numpy(zero_copy_only=False)  # nulls of float columns: NaN
        return np.asarray(values, dtype=self.dtype)
