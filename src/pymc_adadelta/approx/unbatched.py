"""Observed variables of a minibatch model rebuilt on all rows, not one batch's length.

A ``pm.Minibatch`` of fixed size, ``shape=`` or ``dims`` on an observed variable fix the
batch's length in the model's graph; the full-data passes (`FullData.graphs`) feed any
number of rows, so these lengths are taken out. Left in, PyMC 5 broadcast the log
density of 2,000 rows to a ``dims`` length of 500 and the fit converged hundreds of sds
off; a fixed ``shape=`` failed a shape check.
"""

from __future__ import annotations

from typing import Any

import pytensor.tensor as pt
from pymc.variational.minibatch_rv import MinibatchRandomVariable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.shape import SpecifyShape
from pytensor.tensor.type_other import NoneTypeT

__all__ = ["sized_like", "without_shape_checks"]


def without_shape_checks(graph: list[Any]) -> list[Any]:
    """``graph`` without its `SpecifyShape` nodes.

    They fix a batch's length (a ``pm.Minibatch`` of fixed size, ``shape=`` on the
    observed variable), which is not the rows'.
    """
    for _ in range(8):  # nested checks go one level per round
        checks = {var: var.owner.inputs[0] for var in ancestors(graph)
                  if var.owner is not None and isinstance(var.owner.op, SpecifyShape)}  # fmt: skip
        if not checks:
            break
        graph = clone_replace(graph, checks, rebuild_strict=False)
    return graph


def sized_like(rv: Any, value: Any) -> Any:
    """``rv`` with the length of its first axis taken from ``value``, the rows fed.

    ``dims`` or ``shape`` of an observed variable fix its size to the batch's length,
    and PyMC's log density then broadcasts to that size.
    """
    node = rv.owner
    if node is not None and isinstance(node.op, MinibatchRandomVariable):  # total_size
        inner = sized_like(node.inputs[0], value)
        return rv if inner is node.inputs[0] else node.op(inner, *node.inputs[1:])
    if node is None or not isinstance(node.op, RandomVariable):
        return rv
    size: Any = node.op.size_param(node)
    if isinstance(size.type, NoneTypeT) or size.type.shape[0] == 0:
        return rv  # no size: the parameters' shapes, already the rows'
    rows = pt.shape(value)[:1].astype(size.dtype)
    new = node.op.make_node(node.op.rng_param(node), pt.concatenate([rows, size[1:]]),
                            *node.op.dist_params(node))  # fmt: skip
    return new.outputs[node.outputs.index(rv)]
