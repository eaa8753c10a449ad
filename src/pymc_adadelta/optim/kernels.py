"""Implementations of `AdadeltaStep` for pytensor's numba and JAX backends.

Each one is registered when pytensor imports its dispatch module, so neither numba nor
JAX is a dependency and neither is imported by ``import pymc_adadelta``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from pymc_adadelta.optim.import_hooks import when_imported
from pymc_adadelta.optim.op import HYPER_RULES, AdadeltaStep, invalid_column
from pymc_adadelta.optim.rule import adadelta_rule
from pymc_adadelta.optim.step_counter import increment_counter

__all__ = ["register_backends"]

_NUMBA_CACHE_VERSION = 5


#: pytensor's compiled numba functions cannot raise our exception class or with runtime
#: values ("Error creating Python tuple from runtime exception arguments"): the numba kernel
#: raises a ValueError naming the hyperparameter, without its value or step.
_NUMBA_MESSAGES = tuple(
    (column, f"{name} must be {rule} on every step, and it is not on this one (values from a "
     f"schedule or a shared variable are checked on every step)")
    for column, name, rule in HYPER_RULES
)  # fmt: skip


def numba_step_source(n_params: int, inplace: bool) -> str:
    """Python source of the numba kernel for ``n_params`` parameters.

    The parameter loop is unrolled in the source because numba cannot iterate over a
    heterogeneous tuple of arrays.
    """
    params = [f"p{i}" for i in range(n_params)]
    grads = [f"g{i}" for i in range(n_params)]
    copy = "np.ascontiguousarray({})" if inplace else "{}.copy()"
    lines = [
        f"def adadelta_step(accum, hyper, {', '.join(params + grads)}):",
        f"    if hyper.shape[0] != {n_params} or hyper.shape[1] != 4:",
        "        raise ValueError('AdadeltaStep: hyper must have one row of 4 per parameter')",
        "    for i in range(hyper.shape[0]):",  # checked before anything changes
        "        column = invalid_column(hyper[i, 0], hyper[i, 2], hyper[i, 3])",
        *[
            f"        if column == {column}:\n            raise ValueError({message!r})"
            for column, message in _NUMBA_MESSAGES
        ],
        f"    accum_out = {copy.format('accum')}",
        "    n_total = accum_out.shape[1] - 1",
        "    offset = 0",
    ]
    for i in range(n_params):
        lines += [
            f"    p{i}_out = {copy.format(f'p{i}')}",
            f"    x = p{i}_out.reshape(-1)",
            f"    g = np.ascontiguousarray(g{i}).reshape(-1)",
            "    if g.size != x.size or offset + x.size > n_total:",
            f"        raise ValueError('AdadeltaStep: gradient {i} does not match its parameter')",
            "    stop = offset + x.size",
            "    adadelta_elementwise(",
            "        g, accum_out[0, offset:stop], accum_out[1, offset:stop], x,",
            f"        hyper[{i}, 0:1], hyper[{i}, 1:2], hyper[{i}, 2:3], hyper[{i}, 3:4],",
            "    )",
            "    offset += x.size",
        ]
    outs = ", ".join(f"p{i}_out" for i in range(n_params))
    lines += [
        "    if offset != n_total:",
        "        raise ValueError('AdadeltaStep: parameter and accumulator sizes differ')",
        "    high, low = increment_counter(accum_out[0, n_total], accum_out[1, n_total])",
        "    accum_out[0, n_total] = high",
        "    accum_out[1, n_total] = low",
        f"    return accum_out, {outs}",
    ]
    return "\n".join(lines) + "\n"


def numba_elementwise(dtype: str, **kwargs: Any) -> tuple[Callable, str | None]:
    """Return pytensor's numba kernel for the Adadelta rule over 1-D arrays of ``dtype``.

    The rule is expressed as a pytensor ``Elemwise`` of a scalar ``Composite`` with
    in-place outputs (E[g²], E[Δx²], x), and pytensor compiles it with its own loop
    generator, which tells LLVM that the arrays do not alias so the loop vectorizes (a
    hand-written numba loop does not). Hyperparameters are passed as 1-element arrays.
    """
    import pytensor.scalar as ps
    import pytensor.tensor as pt
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key
    from pytensor.tensor.elemwise import Elemwise

    names = ("g", "s", "u", "x", "rho", "omr", "eps", "lr")
    g, s, u, x, rho, omr, eps, lr = scalars = [ps.ScalarType(dtype)(n) for n in names]
    out = adadelta_rule(g, s, u, rho, omr, eps, sqrt=ps.sqrt)
    composite = ps.Composite(scalars, [out.sq_grad, out.sq_delta, x - lr * out.delta])
    elemwise = Elemwise(composite, inplace_pattern={0: 1, 1: 2, 2: 3})
    node = elemwise.make_node(
        *[pt.vector(dtype=dtype) for _ in range(4)],
        *[pt.tensor(dtype=dtype, shape=(1,)) for _ in range(4)],
    )
    return numba_funcify_and_cache_key(elemwise, node=node, **kwargs)


def _register_numba(numba_basic: ModuleType) -> None:
    @numba_basic.register_funcify_and_cache_key(AdadeltaStep)
    def numba_funcify_adadelta_step(
        op: AdadeltaStep, node: Any, **kwargs: Any
    ) -> tuple[Callable, str | None]:
        from pytensor.link.numba.cache import compile_numba_function_src

        dtype = node.inputs[0].dtype
        elementwise, elementwise_key = numba_elementwise(dtype, **kwargs)
        helpers = {
            "np": np,
            "increment_counter": numba_basic.numba_njit(increment_counter),
            "invalid_column": numba_basic.numba_njit(invalid_column),
            "adadelta_elementwise": elementwise,
        }
        source = numba_step_source(op.n_params, op.inplace)
        kernel = compile_numba_function_src(source, "adadelta_step", helpers)
        key = None
        if elementwise_key is not None:
            key = f"pymc_adadelta.AdadeltaStep({op.n_params},{op.inplace},{dtype})"
            key += f"v{_NUMBA_CACHE_VERSION}_{elementwise_key}"
        return numba_basic.numba_njit(kernel), key


def jax_step(n_params: int) -> Callable:
    """Return a pure JAX function computing `AdadeltaStep`'s outputs."""
    import jax.numpy as jnp

    def adadelta_step(accum: Any, hyper: Any, *params_and_grads: Any) -> tuple:
        params, grads = params_and_grads[:n_params], params_and_grads[n_params:]
        if sum(p.size for p in params) != accum.shape[1] - 1:
            raise ValueError("AdadeltaStep: parameter and accumulator sizes differ")
        sq_grads, sq_deltas, new_params = [], [], []
        offset = 0
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if grad.size != param.size:
                raise ValueError(f"AdadeltaStep: gradient {i} does not match its parameter")
            stop = offset + param.size
            rho, omr, eps, lr = hyper[i, 0], hyper[i, 1], hyper[i, 2], hyper[i, 3]
            # Compiled JAX cannot raise: an invalid value makes the parameter NaN instead.
            valid = (rho >= 0) & (rho < 1) & (eps > 0) & (lr > 0) & jnp.isfinite(eps * lr)
            lr = jnp.where(valid, lr, jnp.nan)
            out = adadelta_rule(
                grad.reshape(-1), accum[0, offset:stop], accum[1, offset:stop], rho, omr, eps,
                sqrt=jnp.sqrt,
            )  # fmt: skip
            sq_grads.append(out.sq_grad)
            sq_deltas.append(out.sq_delta)
            new_params.append((param.reshape(-1) - lr * out.delta).reshape(param.shape))
            offset = stop
        high, low = increment_counter(accum[0, -1], accum[1, -1])
        sq_grads.append(high[None])
        sq_deltas.append(low[None])
        new_accum = jnp.stack([jnp.concatenate(sq_grads), jnp.concatenate(sq_deltas)])
        return (new_accum, *new_params)

    return adadelta_step


def _register_jax(jax_basic: ModuleType) -> None:
    @jax_basic.jax_funcify.register(AdadeltaStep)
    def jax_funcify_adadelta_step(op: AdadeltaStep, **kwargs: Any) -> Callable:
        return jax_step(op.n_params)


def register_backends() -> None:
    """Register the numba and JAX implementations when pytensor loads those backends."""
    when_imported("pytensor.link.numba.dispatch.basic", _register_numba)
    when_imported("pytensor.link.jax.dispatch.basic", _register_jax)
