"""The log-likelihood of a set of data rows at many draws: value, gradient, Taylor expansion.

Building blocks of `pymc_adadelta.approx.difference_lp` for minibatch models: the summed
log-likelihood ``Σ_{i∈rows} ℓ_i(θ)`` of any rows of the full data (`FullData`) per
draw, its gradient, and its second-order expansion at a point, with the draws as flat
vectors θ (the model's value variables side by side, in ``model.value_vars`` order).
PyMC's ``total_size / rows`` scaling of the observed variables is undone: these are
plain sums over the rows given.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import vectorize_graph

from pymc_adadelta._compat import helper_mode
from pymc_adadelta.approx.full_data import FullData

__all__ = ["RowFunctions", "Taylor", "row_functions"]

Rows = tuple[np.ndarray, ...]


class Taylor(NamedTuple):
    """Value, gradient ``(d,)`` and Hessian ``(d, d)`` at a point of a summed log-likelihood.

    ``hessian`` is None for an expansion of first order.
    """

    value: float
    gradient: np.ndarray
    hessian: np.ndarray | None = None

    def plus(self, other: Taylor) -> Taylor:
        """The expansion of the sum of both sets of rows."""
        hessian = None if self.hessian is None else self.hessian + other.hessian
        return Taylor(self.value + other.value, self.gradient + other.gradient, hessian)

    def at(self, delta: np.ndarray) -> np.ndarray:
        """The expansion at ``point + delta`` for each row of ``delta`` ``(draws, d)``."""
        linear = self.value + delta @ self.gradient
        if self.hessian is None:
            return linear
        return linear + 0.5 * quadratic_form(delta, self.hessian)


def quadratic_form(delta: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``δᵀ M δ`` for each row δ of ``delta`` (a BLAS product, not an einsum)."""
    return np.asarray(((delta @ matrix) * delta).sum(axis=1))


class RowFunctions:
    """Compiled value and gradient of the rows' log-likelihood per draw, flat θ layout.

    Build with `row_functions` (cached per model).
    """

    def __init__(self, whole: FullData) -> None:
        self.whole = whole
        self.value_vars = list(whole.model.value_vars)
        self.value = whole.lp_function()
        self.gradient = _gradient_function(whole)

    def flatten(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """``(draws, d)``: the value variables' draws side by side."""
        draws = len(values[self.value_vars[0].name])
        parts = [np.asarray(values[v.name], np.float64).reshape(draws, -1) for v in self.value_vars]
        return np.concatenate(parts, axis=1)

    def inputs(self, theta: np.ndarray, like: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Per value variable, draws ``(draws, *shape)`` in its dtype (shapes of ``like``)."""
        shapes = [like[v.name].shape[1:] for v in self.value_vars]
        ends = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        return [part.reshape(len(theta), *shape).astype(var.dtype, copy=False)
                for part, shape, var in zip(np.split(theta, ends, axis=1), shapes,
                                            self.value_vars, strict=True)]  # fmt: skip

    def weights(self, rows: int) -> np.ndarray:
        """Per fed observed variable: undoes PyMC's ``total_size / rows`` scaling."""
        return np.asarray(self.whole.chunk_weights(rows), dtype=np.float64)

    def first_order(self, point: np.ndarray, arrays: Rows, like: dict[str, Any]) -> Taylor:
        """Value and gradient at ``point`` ``(d,)`` of the rows ``arrays``."""
        totals, grads = self.gradient(*self.inputs(point[None], like),
                                      self.weights(len(arrays[0])), *arrays)  # fmt: skip
        return Taylor(float(totals[0]), np.asarray(grads[0]))

    def second_order(
        self, point: np.ndarray, steps: np.ndarray, arrays: Rows, like: dict[str, Any]
    ) -> Taylor:
        """`Taylor` at ``point`` of the rows; the Hessian by forward differences of ``steps``."""
        points = point + np.vstack([np.zeros_like(point), np.diag(steps)])
        totals, grads = self.gradient(*self.inputs(points, like),
                                      self.weights(len(arrays[0])), *arrays)  # fmt: skip
        hessian = (grads[1:] - grads[0]) / steps[:, None]  # row j: d gradient / d θ_j
        return Taylor(float(totals[0]), np.asarray(grads[0]), (hessian + hessian.T) / 2)

    def loglik(
        self, theta: np.ndarray, arrays: Rows, like: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per draw ``(draws,)``: the rows' summed log-likelihood, and the rest (priors...)."""
        *obs, rest = self.value(*self.inputs(theta, like), *arrays)
        weights = self.weights(len(arrays[0]))
        total = sum(w * np.asarray(o, np.float64) for w, o in zip(weights, obs, strict=True))
        return np.asarray(total), np.asarray(rest, np.float64)


#: Compiled functions per model, keyed by the data nodes they replace.
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], RowFunctions]] = (
    weakref.WeakKeyDictionary()
)


def row_functions(whole: FullData) -> RowFunctions:
    """The `RowFunctions` of ``whole``'s model, compiled once per model and data nodes."""
    key = (*(id(leaf.node) for leaf in whole.leaves), *(v.name for v in whole.model.value_vars))
    cache = _CACHE.setdefault(whole.model, {})
    if key not in cache:
        cache[key] = RowFunctions(whole)
    functions = cache[key]
    functions.whole = whole  # the same graph; the data sources may have been replaced
    return functions


def _gradient_function(whole: FullData) -> Any:
    """Compiled ``(*values (P, ...), weights, *rows) -> (loglik (P,), gradient (P, d))``."""
    model = whole.model
    batched = {v: pt.tensor(name=v.name, dtype=v.dtype, shape=(None, *v.type.shape))
               for v in model.value_vars}  # fmt: skip
    obs, _ = whole.graphs()
    weights = pt.vector("weights", dtype="float64")
    per_draw = vectorize_graph(model.replace_rvs_by_values(obs), replace=batched)
    total = sum((weights[k] * term for k, term in enumerate(per_draw)), pt.zeros(()))
    grads: list[Any] = pt.grad(pt.sum(total), list(batched.values()))  # type: ignore[assignment]
    flat = pt.concatenate([g.reshape((g.shape[0], -1)) for g in grads], axis=1)
    return pytensor.function([*batched.values(), weights, *whole.placeholders], [total, flat],
                             on_unused_input="ignore", mode=helper_mode())  # fmt: skip
