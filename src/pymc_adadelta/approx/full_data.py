"""The full-data log density of a minibatch model, evaluated chunk by chunk.

A minibatch model sees its observed data through ``pm.Minibatch`` (a random subset of
arrays it holds) or through ``pm.Data`` containers that `StreamingBatches` refills from a
source on disk; its ``model.logp()`` is then the log density of ONE random batch, scaled
by ``total_size``. `FullData` finds those data in the graph (the ``MinibatchOp`` outputs
and their full arrays; the containers that a `StreamingBatches` registered with
`register_source`), replaces them by placeholders, and compiles the log density with the
draws as a leading axis and the rows of one chunk as data. Summing the chunks, each
weighted by ``rows / total_size`` (undoing PyMC's ``total_size / rows`` scaling), gives
the log density of the full data, whatever the number of rows, without ever holding more
than one chunk of rows per array.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.data import MinibatchOp
from pymc.variational.minibatch_rv import MinibatchRandomVariable
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.replace import clone_replace, vectorize_graph
from pytensor.graph.traversal import ancestors

from pymc_adadelta._compat import helper_mode
from pymc_adadelta.approx.sources import StreamedDataError, chunk_bounds, store_exists
from pymc_adadelta.approx.unbatched import sized_like, without_shape_checks

__all__ = [
    "CHUNK_ROWS",
    "DataLeaf",
    "FullData",
    "NonFiniteDataError",
    "full_data",
    "observed_total_size",
    "register_source",
]

#: Rows per chunk when a source has no chunks of its own (NumPy arrays).
CHUNK_ROWS = 50_000


class DataLeaf(NamedTuple):
    """One array of observed data: where the model sees a batch of it, and all its rows."""

    node: Any  # the variable in the model's graph holding one batch
    source: Any  # all rows: an array-like with shape, dtype and row slicing
    label: str  # how messages name it


class NonFiniteDataError(ValueError):
    """Rows of a minibatch model's data that hold NaN or inf (or nulls, in Parquet).

    The one error for such rows, wherever they are found. `fit` on a ``pm.Minibatch``
    model raises it before anything is compiled (for arrays in memory; chunked sources
    as the full-data passes read them), naming the array, the observed variable and the
    rows; `StreamingBatches` raises it when a batch it reads holds them, naming the
    source, the batch and the rows. A ``ValueError``. A streamed source that went away
    raises `StreamedDataError` instead.

    Examples
    --------
    >>> import numpy as np, pymc as pm
    >>> from pymc_adadelta import NonFiniteDataError, fit
    >>> y = np.zeros(30_000)
    >>> y[17] = np.nan
    >>> with pm.Model():
    ...     y_batch = pm.Minibatch(y, batch_size=100)
    ...     mu = pm.Normal("mu")
    ...     _ = pm.Normal("y", mu, 1.0, observed=y_batch, total_size=len(y))
    ...     try:
    ...         fit(progressbar=False)
    ...     except NonFiniteDataError as error:
    ...         print("(rows 17)" in str(error))
    True
    """


#: Sources that `StreamingBatches` feeds into a model's data containers.
_REGISTERED: weakref.WeakKeyDictionary[Any, list[DataLeaf]] = weakref.WeakKeyDictionary()


def register_source(model: Any, leaves: Sequence[DataLeaf]) -> None:
    """Record that ``leaves`` (containers and their full sources) feed ``model``."""
    known = {id(leaf.node) for leaf in leaves}
    kept = [leaf for leaf in _REGISTERED.get(model, []) if id(leaf.node) not in known]
    _REGISTERED[model] = kept + list(leaves)


def _minibatch_leaves(model: Any) -> list[DataLeaf]:
    graph = [*model.observed_RVs, *(model.rvs_to_values[rv] for rv in model.observed_RVs)]
    leaves, seen = [], set()
    for var in ancestors(graph):
        node = var.owner
        if node is None or not isinstance(node.op, MinibatchOp) or node in seen:
            continue
        seen.add(node)
        arrays = node.inputs[: len(node.outputs) - 1]
        for k, full in enumerate(arrays):
            if isinstance(full, Constant):
                array = full.data
            elif isinstance(full, SharedVariable):
                array = full.get_value(borrow=True)
            else:
                array = full.eval()
            label = f"pm.Minibatch argument {k + 1} of {len(arrays)}"
            leaves.append(DataLeaf(node.outputs[k], np.asarray(array), label))
    return leaves


def observed_total_size(rv: Any) -> int | None:
    """The ``total_size`` of the first dimension of an observed RV (None when unset)."""
    if rv.owner is None or not isinstance(rv.owner.op, MinibatchRandomVariable):
        return None
    first = rv.owner.inputs[1]
    if isinstance(first, Constant):
        return None if first.data is None else int(first.data)
    return int(first.eval())


class FullData:
    """The full-data log density of a minibatch model, per draw, over chunks of rows.

    Use `full_data` to build one (None for a model that is not a minibatch model).

    Attributes
    ----------
    leaves : list of DataLeaf
        The data arrays, in the order of the compiled functions' data inputs.
    length : int
        Rows of the data (the same for every array).
    """

    def __init__(self, model: Any, leaves: list[DataLeaf]) -> None:
        self.model, self.leaves = model, leaves
        lengths = {int(leaf.source.shape[0]) for leaf in leaves}
        if len(lengths) != 1:
            raise ValueError(f"the minibatch data have different lengths: {sorted(lengths)}")
        self.length = lengths.pop()
        self.placeholders = [
            pt.tensor(
                name=f"rows_{k}",
                dtype=leaf.node.type.dtype,
                shape=(None, *leaf.node.type.shape[1:]),
            )
            for k, leaf in enumerate(leaves)
        ]
        nodes = {leaf.node for leaf in leaves}
        fed: list[Any] = []
        rest: list[Any] = []
        for rv in model.observed_RVs:
            (fed if nodes & set(ancestors([rv, model.rvs_to_values[rv]])) else rest).append(rv)
        if not fed:
            raise ValueError("no observed variable depends on the minibatch data")
        self.fed = fed
        self.sizes = [observed_total_size(rv) for rv in fed]
        self._observed = {  # per data array: the names of the observed variables it feeds
            id(leaf.node): [rv.name for rv in fed
                            if leaf.node in set(ancestors([rv, model.rvs_to_values[rv]]))]
            for leaf in leaves
        }  # fmt: skip
        self._rest_vars = [*model.free_RVs, *rest]
        self._compiled: dict[str, Any] = {}

    def graphs(self) -> tuple[list[Any], Any]:
        """Per fed observed variable its summed log density, and the rest, data replaced.

        The observed variables are rebuilt on the placeholders before their log density
        is derived, so that no batch length fixed in the model's graph remains.
        """
        model = self.model
        replace: dict[Any, Any] = {
            leaf.node: ph for leaf, ph in zip(self.leaves, self.placeholders, strict=True)
        }
        graph = [*self.fed, *(model.rvs_to_values[rv] for rv in self.fed)]
        # the free variables as functions of their (unconstrained) value variables
        free = model.replace_rvs_by_values(model.free_RVs)
        replace.update(zip(model.free_RVs, free, strict=True))
        rebuilt = without_shape_checks(clone_replace(graph, replace, rebuild_strict=False))
        values = rebuilt[len(self.fed) :]
        rvs = [sized_like(rv, value) for rv, value in zip(rebuilt, values, strict=False)]
        obs = [pt.sum(pm.logp(rv, value)) for rv, value in zip(rvs, values, strict=True)]
        rest = model.logp(vars=self._rest_vars) + sum(
            (pt.sum(p) for p in model.potentials), pt.constant(0.0)
        )
        nodes = {leaf.node for leaf in self.leaves}
        if nodes & set(ancestors([rest])):
            named = [v.name or str(v) for v in [*self._rest_vars, *model.potentials]
                     if nodes & set(ancestors([v]))]  # fmt: skip
            raise ValueError(
                f"{', '.join(map(repr, named))}: a prior or potential depends on the "
                "minibatch data, so the full-data log density cannot be taken row by row"
            )
        return obs, rest

    def lp_function(self) -> Any:
        """Compiled ``(*values with a draws axis, *chunk rows) -> (obs terms, rest)``."""
        if "lp" not in self._compiled:
            obs, rest = self.graphs()
            model = self.model
            batched = {
                v: pt.tensor(name=v.name, dtype=v.dtype, shape=(None, *v.type.shape))
                for v in model.value_vars
            }
            outputs = model.replace_rvs_by_values([*obs, rest])
            outputs = vectorize_graph(outputs, replace=batched)
            self._compiled["lp"] = pytensor.function(
                [*batched.values(), *self.placeholders],
                outputs,
                on_unused_input="ignore",
                mode=helper_mode(),
            )
        return self._compiled["lp"]

    def bounds(self, rows: int = CHUNK_ROWS) -> np.ndarray:
        """Row boundaries of the chunks read: whole chunks of the source, about ``rows``."""
        return chunk_bounds(self.leaves[0].source, self.length, rows)

    def row_bytes(self) -> int:
        """Bytes of one row of every array, as the model reads them."""
        return sum(max(1, int(np.prod(leaf.source.shape[1:]))) * leaf.node.type.numpy_dtype.itemsize
                   for leaf in self.leaves)  # fmt: skip

    def read(self, start: int, stop: int) -> tuple[np.ndarray, ...]:
        """Rows ``start:stop`` of every array.

        `NonFiniteDataError` on NaN or inf rows, `StreamedDataError` for a deleted store.
        """
        arrays = []
        for leaf in self.leaves:
            if not store_exists(leaf.source):
                raise StreamedDataError(
                    f"{leaf.label}: the zarr store {leaf.source.store_path} is gone (its "
                    f"metadata cannot be found) while reading rows {start}:{stop}; zarr "
                    f"would return fill values for them"
                )
            array = np.asarray(leaf.source[start:stop], dtype=leaf.node.type.dtype)
            self._check_finite(leaf, _non_finite_rows(array) + start, start, stop)
            arrays.append(array)
        return tuple(arrays)

    def check_total_size(self) -> None:
        """Raise ValueError when an observed variable's ``total_size`` is not the rows.

        Another number would weigh the data by ``total_size / rows`` in the full-data fit.
        """
        for rv, size in zip(self.fed, self.sizes, strict=True):
            if size is not None and size != self.length:
                raise ValueError(
                    f"total_size={size} of the observed variable {rv.name!r}, but its "
                    f"minibatch data have {self.length} rows: set total_size to the rows "
                    f"the batches are drawn from ({self.length})"
                )

    def check_in_memory(self, rows: int = CHUNK_ROWS) -> None:
        """Raise `NonFiniteDataError` for NaN or inf in the arrays held in memory.

        Checking every row of a NumPy array (``pm.Minibatch`` data) costs less than one
        evaluation of the model on them, so a fit does it before compiling anything;
        chunked sources (zarr, Parquet) are checked chunk by chunk as they are read.
        """
        for leaf in self.leaves:
            if isinstance(leaf.source, np.ndarray) and leaf.source.dtype.kind in "fc":
                bad = [_non_finite_rows(leaf.source[k : k + rows]) + k
                       for k in range(0, self.length, rows)]  # fmt: skip
                self._check_finite(leaf, np.concatenate(bad), 0, self.length)

    def _check_finite(self, leaf: DataLeaf, bad: np.ndarray, start: int, stop: int) -> None:
        """Raise `NonFiniteDataError` naming the rows ``bad`` of rows ``start:stop``."""
        if not bad.size:
            return
        shown = ", ".join(map(str, bad[:5].tolist())) + (", ..." if bad.size > 5 else "")
        names = [repr(name) for name in self._observed.get(id(leaf.node), [])]
        noun = "variable" if len(names) == 1 else "variables"
        raise NonFiniteDataError(
            f"{leaf.label}, data of the observed {noun} {', '.join(names)}, has NaN or inf in "
            f"{bad.size} of rows {start}:{stop} (rows {shown}): the full-data fit and its "
            f"diagnostics use every row, so drop or impute these rows before building the "
            f"model (pm.Minibatch and StreamingBatches do not impute missing data)"
        )

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield the rows of every array chunk by chunk, the next chunk read meanwhile."""
        bounds = self.bounds(rows)
        pairs = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        with ThreadPoolExecutor(1, thread_name_prefix="pymc_adadelta-full-data") as pool:
            ahead = pool.submit(self.read, *pairs[0])
            for k in range(len(pairs)):
                arrays = ahead.result()
                if k + 1 < len(pairs):
                    ahead = pool.submit(self.read, *pairs[k + 1])
                yield arrays

    def logp(self, values: dict[str, np.ndarray], rows: int = CHUNK_ROWS) -> np.ndarray:
        """``log p`` of every draw (values with a leading draws axis) on the full data."""
        function = self.lp_function()
        inputs = [values[v.name] for v in self.model.value_vars]
        total: Any = None
        last_rest: Any = 0.0
        for arrays in self.chunks(rows):
            *obs, rest = function(*inputs, *arrays)
            weights = self.chunk_weights(len(arrays[0]))
            part = sum(w * np.asarray(o) for w, o in zip(weights, obs, strict=True))
            total = part if total is None else total + part
            last_rest = rest
        return np.asarray(total + last_rest, dtype=np.float64)  # a source has rows

    def chunk_weights(self, rows: int) -> list[float]:
        """Per fed observed variable: ``rows / total_size``, undoing PyMC's scaling."""
        return [rows / s if s is not None else 1.0 for s in self.sizes]


def _non_finite_rows(array: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``array`` holding NaN or inf (none for integer arrays)."""
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))


def full_data(model: Any) -> FullData | None:
    """The `FullData` of a minibatch model; None when its log density is not a batch's."""
    leaves = _minibatch_leaves(model) + list(_REGISTERED.get(model, []))
    if not leaves:
        return None
    return FullData(model, leaves)
