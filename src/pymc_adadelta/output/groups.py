"""The groups and attributes of `to_arviz`'s output besides the draws.

``observed_data`` and ``constant_data`` (`data_groups`), ``vi_parameters`` (the raw
approximation's parameters), ``optimization`` (the loss per step and the tracked
accumulators) and the root attributes (method, optimizer, steps, convergence, k-hat,
versions).
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from pymc.backends.arviz import find_constants, find_observations
from scipy.linalg import block_diag

from pymc_adadelta.approx.draws import group_moments
from pymc_adadelta.approx.layout import coords_for, dims_for, latent_labels, ordering

__all__ = ["GROUP_SHORT_NAMES", "data_groups", "export_attrs", "lp_attrs",
           "optimization_history", "vi_parameters"]  # fmt: skip

#: Method name written in ``attrs["method"]`` per PyMC group family.
GROUP_SHORT_NAMES = {"mean_field": "advi", "full_rank": "fullrank_advi", "empirical": "svgd"}
_VERSIONED = ("pymc_adadelta", "pymc", "pytensor", "arviz")


def data_groups(
    model: Any, coords: Mapping[str, Any], dims: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, xr.Dataset]]:
    """``observed_data`` and ``constant_data``: as ArviZ's ``from_dict`` takes them, or built.

    A group goes to ``from_dict`` (the first dict) as PyMC finds it, unless one of its
    arrays is longer along a dim than that dim's coordinate. That is a minibatch model:
    PyMC gives the FULL data (all ``N`` rows), while the model's coords have the batch's
    length, so the batch's coordinate values cannot label the rows. Such a group is built
    here (the second dict) with that dim indexed ``0 .. N-1``, as ArviZ indexes a dim
    without coords; its other dims keep the model's coords.
    """
    plain: dict[str, dict[str, Any]] = {}
    built: dict[str, xr.Dataset] = {}
    for group, found in (("observed_data", find_observations(model)),
                         ("constant_data", find_constants(model))):  # fmt: skip
        arrays = {name: np.asarray(value) for name, value in found.items()}
        named = {name: _data_dims(name, array.ndim, dims) for name, array in arrays.items()}
        sizes = {
            d: n
            for name, array in arrays.items()
            for d, n in zip(named[name], array.shape, strict=True)
        }
        if all(len(coords[d]) == n for d, n in sizes.items() if d in coords):
            if found:
                plain[group] = found
            continue
        labels = {d: coords[d] if d in coords and len(coords[d]) == n else np.arange(n)
                  for d, n in sizes.items()}  # fmt: skip
        built[group] = xr.Dataset({name: (named[name], array) for name, array in arrays.items()},
                                  coords=labels)  # fmt: skip
    return plain, built


def _data_dims(name: str, ndim: int, dims: Mapping[str, Any]) -> tuple[str, ...]:
    """The dims of data ``name``: the model's, else ArviZ's ``{name}_dim_{i}``."""
    given = list(dims.get(name) or ())
    given += [None] * (ndim - len(given))
    return tuple(d if d is not None else f"{name}_dim_{i}" for i, d in enumerate(given[:ndim]))


def vi_parameters(approx: Any) -> xr.Dataset:
    """Mean and sd per model variable on the unconstrained scale; ``cov`` for full rank."""
    model = approx.model
    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {"vi_stat": ["mean", "sd"]}
    chols = []
    for group in approx.groups:
        mean, sd, chol = group_moments(group)
        chols.append(chol if chol is not None else np.diag(sd))
        for name, slc, shape in ordering(group):
            var_dims = dims_for(model, name, shape)
            coords.update(coords_for(model, var_dims))
            stacked = np.stack([mean[slc].reshape(shape), sd[slc].reshape(shape)])
            data_vars[name] = (("vi_stat", *var_dims), stacked)
    if any(g.short_name == "full_rank" for g in approx.groups):
        chol = block_diag(*chols)
        data_vars["cov"] = (("latent", "latent_bis"), chol @ chol.T)
        coords["latent"] = coords["latent_bis"] = latent_labels(approx)
    return xr.Dataset(data_vars, coords=coords)


def optimization_history(approx: Any, result: Any) -> xr.Dataset | None:
    """Loss per step and, for a `FitResult`, the tracked accumulator summaries."""
    loss = np.asarray(getattr(approx, "hist", ()), dtype=float)
    history = result.history if result is not None else xr.Dataset()
    if not loss.size and "loss" in history:
        loss = history["loss"].to_numpy()  # the fit ended before PyMC stored its history
    parts = []
    if loss.size:
        parts.append(xr.Dataset({"loss": ("iteration", loss)},
                                coords={"iteration": np.arange(1, loss.size + 1)}))  # fmt: skip
    tracked = history.drop_vars("loss", errors="ignore")
    if tracked.data_vars:
        parts.append(tracked.rename(iteration="tracked_iteration"))
    return xr.merge(parts, combine_attrs="drop") if parts else None


def export_attrs(approx: Any, result: Any, khat: float, draws: int) -> dict[str, Any]:
    """Root attributes: method, optimizer, steps, convergence, k-hat and versions."""
    attrs: dict[str, Any] = {
        "method": "+".join(
            GROUP_SHORT_NAMES.get(g.short_name, g.short_name) for g in approx.groups
        ),
        "psis_khat": khat,
        "psis_khat_draws": draws,
        "n_steps": len(getattr(approx, "hist", ())),
    }
    if result is not None:
        attrs.update(_result_attrs(result))
    attrs.update({f"{lib}_version": importlib.metadata.version(lib.replace("_", "-"))
                  for lib in _VERSIONED})  # fmt: skip
    return attrs


def lp_attrs(estimate: Any) -> dict[str, Any]:
    """How ``sample_stats["lp"]`` was had: ``lp_estimator`` and, when estimated, its error.

    ``estimate`` is a `pymc_adadelta.approx.difference_lp.LogDensityEstimate`, or None
    where every row was evaluated at every draw.
    """
    if estimate is None:
        return {"lp_estimator": "exact"}
    return {
        "lp_estimator": "difference (Quiroz et al. 2019)",
        "lp_error_sd": estimate.reached(),  # nats, at the 99th percentile of the draws
        "lp_hessian_rows": int(estimate.hessian_rows),
        "lp_residual_rows": int(estimate.residual_rows),
        "lp_data_rows": int(estimate.length),
    }


def _result_attrs(result: Any) -> dict[str, Any]:
    optimizer = result.optimizer
    attrs: dict[str, Any] = {
        "optimizer": type(optimizer).__name__,
        "optimizer_hyperparameters": json.dumps(optimizer.hyperparameters.describe()),
        "n_steps": int(result.n_steps),
        "converged": int(result.converged),
        "stop_reason": result.stop_reason,
        "warm_start": "off" if result.warm_start is None else result.warm_start.reason,
    }
    rule = result.convergence
    if rule is not None:
        attrs["convergence_rule"] = rule.rule
        for name in ("converged_at", "stationary_at", "window_start"):
            value = getattr(rule, name, None)
            if value is not None:
                attrs[name] = int(value)
    return attrs
