"""A random subsample of the rows of a minibatch model's full data, held in memory.

The full-data fit (`pymc_adadelta.approx.full_data_fit`) runs most of its optimization
on it, scaled to the full size; random whole chunks of a chunked source (zarr, Parquet),
so that each byte read is used.
"""

from __future__ import annotations

import numpy as np

from pymc_adadelta.approx.full_data import CHUNK_ROWS, FullData

__all__ = ["SUBSAMPLE_BYTES", "subsample_rows", "subsample_size"]

#: Memory of the subsample held during the fit (a twentieth of the data below it):
#: 200,000 rows of 20 float64 features, 1.2 % of 10^7 rows.
SUBSAMPLE_BYTES = 32 * 2**20

Rows = tuple[np.ndarray, ...]


def subsample_size(whole: FullData) -> int:
    """Rows of the subsample: a twentieth of the data, at least 10,000, at most `SUBSAMPLE_BYTES`.

    Each outer step shrinks the distance to the optimum by about ``sqrt(dim / n0)``
    whatever the data's size, so above the byte cap more rows would only cost memory.
    """
    return max(10_000, min(whole.length // 20, SUBSAMPLE_BYTES // max(1, whole.row_bytes())))


def subsample_rows(whole: FullData, rows: int, rng: np.random.Generator) -> Rows:
    """``rows`` random rows of the data (random chunks, whole but the last, when chunked)."""
    source = whole.leaves[0].source
    if isinstance(source, np.ndarray):
        index = np.sort(rng.choice(whole.length, rows, replace=False))
        return tuple(
            np.asarray(leaf.source[index], dtype=leaf.node.type.dtype) for leaf in whole.leaves
        )
    spans: list[tuple[int, int]] = []
    got = 0
    bounds = whole.bounds(min(rows, CHUNK_ROWS))
    for k in rng.permutation(len(bounds) - 1):
        start = int(bounds[k])
        stop = min(int(bounds[k + 1]), start + rows - got)
        spans.append((start, stop))
        got += stop - start
        if got >= rows:
            break
    kept: list[np.ndarray] = []
    at = 0
    for start, stop in spans:  # written to their places: no second copy to concatenate
        arrays = whole.read(start, stop)
        kept = kept or [np.empty((got, *a.shape[1:]), dtype=a.dtype) for a in arrays]
        for out, a in zip(kept, arrays, strict=True):
            out[at : at + len(a)] = a
        at += stop - start
    return tuple(kept)
