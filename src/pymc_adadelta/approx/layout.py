"""Per-model-variable views of the accumulators of an Approximation's parameters.

PyMC's approximations keep their parameters as flat vectors over the concatenated,
unconstrained ("value") variables of the model: ``group.ordering`` says which slice
belongs to which variable. This module splits the accumulators the same way:

- ``mu``, ``rho`` (mean field) and ``mu`` (full rank): the variable's slice, in the
  variable's own shape;
- ``L_tril`` (full rank): the packed lower triangle of the Cholesky factor L (n × n,
  ``np.tril_indices`` order) is unpacked, and a variable gets its *rows* of L, shape
  ``(*var_shape, n)``: how its coordinates couple to every latent coordinate. Entries
  above the diagonal are NaN;
- ``histogram`` (Empirical/SVGD particles, ``(n_particles, n)``): the variable's columns,
  shape ``(n_particles, *var_shape)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from pymc_adadelta.approx.params import param_entries

__all__ = [
    "accumulators_by_variable",
    "accumulators_dataset",
    "coords_for",
    "dims_for",
    "group_latent_labels",
    "latent_labels",
    "ordering",
    "variable_indices",
]

Accumulators = Mapping[str, Mapping[str, np.ndarray]]


def accumulators_by_variable(
    approx: Any, per_param: Accumulators
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Split per-parameter accumulators into ``{param: {variable: {accumulator: array}}}``.

    ``param`` is the parameter's name (``"mu"``, ``"rho"``, ``"L_tril"``); with several
    groups each variable comes from the group that holds it.

    Parameters
    ----------
    approx : pymc Approximation
        The approximation whose parameters were optimized.
    per_param : mapping
        ``{label: {"sq_grad": array, "sq_delta": array}}``, keyed by parameter label
        (`pymc_adadelta.approx.params`: ``"mu"``, or ``"0/mu"`` with several groups).
    """
    result: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for entry in param_entries(approx):
        if entry.label not in per_param:
            raise ValueError(
                f"the optimizer state has no parameter {entry.label!r}; it holds "
                f"{sorted(per_param)}. Was it built for this approximation?"
            )
        split = _splitter(entry.name, entry.group)
        accumulators = per_param[entry.label].items()
        # Keyed by parameter name: a model variable belongs to one group only.
        result.setdefault(entry.name, {}).update(
            {
                var: {which: split(arr, slc, shape) for which, arr in accumulators}
                for var, slc, shape in ordering(entry.group)
            }
        )
    return result


def accumulators_dataset(approx: Any, per_param: Accumulators) -> xr.Dataset:
    """Return the accumulators as an ``xarray.Dataset`` with the model's dims and coords.

    Each model variable ``v`` gets a data variable ``v`` with dims
    ``("param", "accumulator", *dims_of_v)`` for the vector parameters (``mu``, ``rho``);
    full-rank groups add ``v_L_tril`` with dims ``("accumulator", *dims_of_v, "latent")``.
    """
    nested = accumulators_by_variable(approx, per_param)
    model = approx.model
    data_vars: dict[str, Any] = {}
    which = ["sq_grad", "sq_delta"]
    coords: dict[str, Any] = {"accumulator": which}
    vector_names: list[str] = []
    for g, group in enumerate(approx.groups):
        entries = [e for e in param_entries(approx) if e.group_index == g]
        vectors = [e for e in entries if e.name in ("mu", "rho")]
        vector_names += [e.name for e in vectors if e.name not in vector_names]
        for var, _, shape in ordering(group):
            dims = dims_for(model, var, shape)
            coords.update(coords_for(model, dims))
            if vectors:
                stacked = np.stack([[nested[e.name][var][w] for w in which] for e in vectors])
                data_vars[var] = (("param", "accumulator", *dims), stacked)
            for e in entries:
                if e.name == "L_tril":
                    rows = np.stack([nested[e.name][var][w] for w in which])
                    latent = "latent" if len(approx.groups) == 1 else f"latent_{g}"
                    data_vars[f"{var}_L_tril"] = (("accumulator", *dims, latent), rows)
                    coords[latent] = group_latent_labels(group)
    coords["param"] = vector_names
    return xr.Dataset(data_vars, coords=coords)


def variable_indices(param_name: str, group: Any) -> dict[str, np.ndarray]:
    """Return, per model variable, the flat (C-order) indices it owns in a parameter.

    Follows the mapping described in this module's docstring; for ``L_tril`` a variable
    owns the packed entries of its rows of L, which are contiguous.
    """
    n = group.ddim
    indices = {}
    for var, slc, _ in ordering(group):
        if param_name == "L_tril":
            owned = np.arange(slc.start * (slc.start + 1) // 2, slc.stop * (slc.stop + 1) // 2)
        elif param_name == "histogram":
            n_particles = group.params_dict["histogram"].get_value(borrow=True).shape[0]
            owned = (np.arange(n_particles)[:, None] * n + np.arange(slc.start, slc.stop)).ravel()
        else:
            owned = np.arange(slc.start, slc.stop)
        indices[var] = owned
    return indices


def ordering(group: Any) -> list[tuple[str, slice, tuple[int, ...]]]:
    """Return ``(value variable name, flat slice, shape)`` for each variable of a group."""
    return [(name, slc, tuple(shape)) for name, slc, shape, _ in group.ordering.values()]


def _splitter(param_name: str, group: Any) -> Any:
    if param_name == "L_tril":
        n = group.ddim
        rows, cols = np.tril_indices(n)

        def split_rows(flat: np.ndarray, slc: slice, shape: tuple) -> np.ndarray:
            full = np.full((n, n), np.nan, dtype=flat.dtype)
            full[rows, cols] = flat.reshape(-1)
            return full[slc].reshape(*shape, n)

        return split_rows
    if param_name == "histogram":
        return lambda arr, slc, shape: arr[:, slc].reshape(arr.shape[0], *shape)
    return lambda arr, slc, shape: arr.reshape(-1)[slc].reshape(shape)


def dims_for(model: Any, value_name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Return the model's dims of a value variable, or ``name_dim_i`` when it has none."""
    rv_name = _rv_name(model, value_name)
    dims = tuple(model.named_vars_to_dims.get(rv_name, ()) or ())
    sizes_agree = len(dims) == len(shape) and all(
        d is not None and len(model.coords.get(d) or ()) in (0, n)
        for d, n in zip(dims, shape, strict=True)
    )
    if sizes_agree:
        return dims
    return tuple(f"{value_name}_dim_{i}" for i in range(len(shape)))


def coords_for(model: Any, dims: tuple[str, ...]) -> dict[str, Any]:
    """Return the model's coordinate values of those ``dims`` that have them."""
    return {d: list(model.coords[d]) for d in dims if model.coords.get(d) is not None}


def _rv_name(model: Any, value_name: str) -> str:
    for rv, value in model.rvs_to_values.items():
        if value.name == value_name:
            return str(rv.name)
    return value_name


def latent_labels(approx: Any) -> list[str]:
    """Label every coordinate of the flat latent vector, e.g. ``beta[0]``."""
    return [label for group in approx.groups for label in group_latent_labels(group)]


def group_latent_labels(group: Any) -> list[str]:
    """Label every coordinate of one group's flat latent vector."""
    return [
        f"{var}[{','.join(map(str, idx))}]" if shape else var
        for var, _, shape in ordering(group)
        for idx in np.ndindex(shape)
    ]
