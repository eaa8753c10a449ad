"""Graph rewrite that turns `AdadeltaStep` into its in-place form.

Registered in pytensor's ``optdb`` under the ``inplace`` tag, like pytensor's own in-place
rewrites, so modes that exclude in-place rewrites (JAX, ``FAST_COMPILE``) keep the copying
form, and the destroy handler rejects the swap wherever another node still needs the old
values.
"""

from __future__ import annotations

from typing import Any

from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import in2out, node_rewriter

from pymc_adadelta.optim.op import AdadeltaStep

__all__: list[str] = []


@node_rewriter([AdadeltaStep])
def local_adadelta_step_inplace(fgraph: Any, node: Any) -> list | None:
    """Replace a copying `AdadeltaStep` by the in-place one."""
    op = node.op
    if op.inplace:
        return None
    return AdadeltaStep(op.n_params, inplace=True).make_node(*node.inputs).outputs


optdb.register(
    "pymc_adadelta_inplace",
    in2out(local_adadelta_step_inplace, name="pymc_adadelta_inplace"),
    "fast_run",
    "inplace",
    # After the destroy handler is attached (49.5), before elemwise in-place rewrites.
    position=50.3,
)
