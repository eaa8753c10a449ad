"""The log-likelihood of a set of data rows at many draws: value, gradient, Taylor expansion.

Building blocks of the full-data fit (`pymc_adadelta.approx.full_data_fit`) and of the
export's estimator (`pymc_adadelta.approx.difference_lp`) for minibatch models, on one
compiled function: the summed log-likelihood ``Σ_{i∈rows} ℓ_i(θ)`` of any rows of the
full data (`FullData`) per draw, its gradient, and its second-order expansion at a
point, with the draws as flat vectors θ (the model's value variables side by side, in
``model.value_vars`` order). PyMC's ``total_size / rows`` scaling of the observed
variables is undone: these are plain sums over the rows given.
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
Shapes = dict[str, tuple[int, ...]]


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
    """One compiled log density of rows at many draws, and its gradient, flat θ layout.

    ``evaluate(theta (P, d), weights (k,), rest_weight, *rows) -> (total (P,), gradient
    (P, d), rest (P,))`` with ``total = rest_weight · rest(θ) + Σ_k weights[k] · obs_k(θ, rows)``:
    ``obs_k`` is the log density of the ``k``-th fed observed variable as PyMC scales it
    (``total_size / rows``), ``rest`` the priors, the other observed variables and the
    potentials. The full-data fit (`pymc_adadelta.approx.full_data_fit`) and the
    export's estimator (`pymc_adadelta.approx.difference_lp`) share it, so a model's
    export compiles nothing after its fit. Build with `row_functions` (cached per model).
    """

    def __init__(self, whole: FullData, shapes: Shapes) -> None:
        self.whole = whole
        self.value_vars = list(whole.model.value_vars)
        self.shapes = shapes
        self.evaluate = _compile(whole, self.value_vars, shapes)

    def flatten(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """``(draws, d)``: the value variables' draws side by side."""
        draws = len(values[self.value_vars[0].name])
        parts = [np.asarray(values[v.name], np.float64).reshape(draws, -1) for v in self.value_vars]
        return np.concatenate(parts, axis=1)

    def weights(self, rows: int) -> np.ndarray:
        """Per fed observed variable: undoes PyMC's ``total_size / rows`` scaling."""
        return np.asarray(self.whole.chunk_weights(rows), dtype=np.float64)

    def first_order(self, point: np.ndarray, arrays: Rows) -> Taylor:
        """Value and gradient at ``point`` ``(d,)`` of the rows ``arrays``."""
        totals, grads, _ = self.evaluate(point[None], self.weights(len(arrays[0])), 0.0, *arrays)
        return Taylor(float(totals[0]), np.asarray(grads[0]))

    def second_order(self, point: np.ndarray, steps: np.ndarray, arrays: Rows) -> Taylor:
        """`Taylor` at ``point`` of the rows; the Hessian by forward differences of ``steps``."""
        points = point + np.vstack([np.zeros_like(point), np.diag(steps)])
        totals, grads, _ = self.evaluate(points, self.weights(len(arrays[0])), 0.0, *arrays)
        hessian = (grads[1:] - grads[0]) / steps[:, None]  # row j: d gradient / d θ_j
        return Taylor(float(totals[0]), np.asarray(grads[0]), (hessian + hessian.T) / 2)

    def loglik(self, theta: np.ndarray, arrays: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Per draw ``(draws,)``: the rows' summed log-likelihood, and the rest (priors...)."""
        totals, _, rest = self.evaluate(theta, self.weights(len(arrays[0])), 0.0, *arrays)
        return np.asarray(totals, np.float64), np.asarray(rest, np.float64)


#: Compiled functions per model, keyed by the data nodes they replace.
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], RowFunctions]] = (
    weakref.WeakKeyDictionary()
)


def row_functions(whole: FullData, shapes: Shapes) -> RowFunctions:
    """The `RowFunctions` of ``whole``'s model, compiled once per model, data nodes, shapes.

    ``shapes``: the shape of each value variable (one draw), by name.
    """
    names = [v.name for v in whole.model.value_vars]
    key = (*(id(leaf.node) for leaf in whole.leaves),
           *((name, tuple(shapes[name])) for name in names))  # fmt: skip
    cache = _CACHE.setdefault(whole.model, {})
    if key not in cache:
        cache[key] = RowFunctions(whole, {name: tuple(shapes[name]) for name in names})
    functions = cache[key]
    functions.whole = whole  # the same graph; the data sources may have been replaced
    return functions


def _compile(whole: FullData, value_vars: list[Any], shapes: Shapes) -> Any:
    """Compiled ``(theta (P, d), weights, rest_weight, *rows) -> (total, grad, rest)``.

    ``total`` and ``rest`` ``(P,)``, ``grad`` ``(P, d)``: see `RowFunctions`.
    """
    theta = pt.matrix("theta", dtype="float64")
    weights = pt.vector("weights", dtype="float64")
    rest_weight = pt.scalar("rest_weight", dtype="float64")
    replace, offset = {}, 0
    for var in value_vars:
        shape = shapes[var.name]
        size = int(np.prod(shape, dtype=np.int64))
        piece = theta[:, offset : offset + size].reshape((theta.shape[0], *shape))
        replace[var] = piece.astype(var.dtype)
        offset += size
    obs, rest = whole.graphs()
    *per_draw, rest_b = vectorize_graph(whole.model.replace_rvs_by_values([*obs, rest]),
                                        replace=replace)  # fmt: skip
    total = rest_weight * rest_b + sum(
        (weights[k] * term for k, term in enumerate(per_draw)), pt.zeros(())
    )
    gradient: Any = pt.grad(pt.sum(total), theta)
    return pytensor.function([theta, weights, rest_weight, *whole.placeholders],
                             [total, gradient, rest_b], on_unused_input="ignore",
                             mode=helper_mode())  # fmt: skip
