"""Argument checks of `StreamingBatches`: sources, data containers and ``total_size``.

``total_size`` lives on the observed variable in PyMC 5 and 6 alike: ``observed=...,
total_size=N`` wraps the observed RV in a ``MinibatchRandomVariable`` whose inputs after
the RV are the total sizes of its dimensions (``NoneConst`` for an unscaled one), and
its log-probability is multiplied by ``total_size / batch length``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import ancestors

from pymc_adadelta.approx.full_data import observed_total_size

__all__ = ["Stream", "check_streams", "check_total_size", "pair_sources"]


class Stream(NamedTuple):
    """One data container and the array that feeds it."""

    label: str  # how the error messages name the source: "source" or "source['x']"
    container: SharedVariable
    source: Any


def pair_sources(source: Any, data: Any, model: Any) -> list[Stream]:
    """Match every source array with its data container of ``model``."""
    if isinstance(source, Mapping):
        if data is not None:
            raise ValueError(
                f"data must be None when source is a mapping (its keys name the data "
                f"containers), got {data!r}"
            )
        labels = [f"source[{key!r}]" for key in source]
        sources, data = list(source.values()), list(source)
    elif isinstance(source, list | tuple):
        if not isinstance(data, list | tuple) or len(data) != len(source):
            raise ValueError(
                f"data must be a sequence of {len(source)} data containers, one per source "
                f"array, got {data!r}"
            )
        labels = [f"source[{k}]" for k in range(len(source))]
        sources = list(source)
    else:
        labels, sources, data = ["source"], [source], [data]
    if not sources:
        raise ValueError(f"source holds no arrays: {source!r}")
    return [
        Stream(label, _container(item, model), _array(label, array))
        for label, item, array in zip(labels, data, sources, strict=True)
    ]


def check_streams(streams: list[Stream], batch_size: int) -> int:
    """Check shapes, dtypes and lengths; return the common length of the sources."""
    lengths = {s.label: int(s.source.shape[0]) for s in streams}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"source arrays must have the same length, got lengths {lengths}")
    length = next(iter(lengths.values()))
    if batch_size > length:
        raise ValueError(
            f"batch_size must be at most the length of the source ({length}), got {batch_size}"
        )
    for stream in streams:
        _check_shape(stream, batch_size)
        _check_dtype(stream)
    return length


def check_total_size(model: Any, containers: Sequence[SharedVariable], length: int) -> None:
    """Check that every observed variable fed by ``containers`` scales to ``length`` rows."""
    fed = _observed_fed_by(model, containers)
    if not fed:
        names = [c.name for c in containers]
        raise ValueError(f"no observed variable of the model depends on the data {names}")
    for rv in fed:
        size = observed_total_size(rv)
        if size != length:
            have = "has no total_size" if size is None else f"has total_size={size}"
            raise ValueError(
                f"observed variable {rv.name!r} {have}, but the streamed source has {length} "
                f"rows: pass total_size={length} where it is defined, or every batch's "
                f"log-likelihood is scaled wrongly and the posterior is wrong"
            )


def _observed_fed_by(model: Any, containers: Sequence[SharedVariable]) -> list[Any]:
    targets = set(containers)
    return [
        rv for rv in model.observed_RVs if targets & set(ancestors([rv, model.rvs_to_values[rv]]))
    ]


def _container(item: Any, model: Any) -> SharedVariable:
    name = item if isinstance(item, str) else getattr(item, "name", None)
    found = model.named_vars.get(name) if name is not None else None
    if found is None or (not isinstance(item, str) and found is not item):
        raise ValueError(f"data must name data containers of the model, got {item!r}")
    if not isinstance(found, SharedVariable):
        raise TypeError(
            f"data {name!r} must be a data container made with pm.Data, got a "
            f"{type(found).__name__}"
        )
    return found


def _array(label: str, array: Any) -> Any:
    if not all(hasattr(array, attr) for attr in ("shape", "dtype", "__getitem__")):
        raise TypeError(
            f"{label} must be an array (zarr, ParquetColumns, dask, h5py or NumPy), got "
            f"{type(array).__name__}"
        )
    if len(array.shape) == 0:
        raise ValueError(f"{label} must have at least one dimension, got shape ()")
    return array


def _check_shape(stream: Stream, batch_size: int) -> None:
    container, label, shape = stream.container, stream.label, tuple(stream.source.shape)
    rows = container.get_value(borrow=True).shape[1:]
    if len(shape) != len(rows) + 1 or shape[1:] != rows:
        raise ValueError(
            f"{label} must have rows of shape {rows} like data {container.name!r}, got "
            f"shape {shape}"
        )
    static = container.type.shape[0]
    if static is not None and static != batch_size:
        raise ValueError(
            f"batch_size must be {static}, the fixed length of data {container.name!r}, "
            f"got {batch_size}"
        )


def _check_dtype(stream: Stream) -> None:
    source, target = np.dtype(stream.source.dtype), np.dtype(stream.container.type.dtype)
    if not np.can_cast(source, target, casting="safe"):
        raise ValueError(
            f"{stream.label} has dtype {source}, which data {stream.container.name!r} "
            f"({target}) cannot hold without loss: convert the source or the container"
        )
