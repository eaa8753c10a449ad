"""Every difference between the supported stacks, and nowhere else.

- Python 3.11: PyMC 5.x, pytensor 2.x (default linker: C), ArviZ 0.x (InferenceData).
- Python 3.12: PyMC 6.x, pytensor 3.x (default linker: numba), ArviZ 1.x (DataTree).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pymc
import pytensor
import xarray as xr

__all__ = [
    "ARVIZ_MAJOR",
    "BACKEND_MODES",
    "PYMC_MAJOR",
    "PYTENSOR_MAJOR",
    "VI_DRAWS",
    "VI_DRAWS_ATTR",
    "arviz_group",
    "arviz_root_attrs",
    "available_backends",
    "helper_mode",
    "is_arviz_data",
    "load_arviz",
    "make_arviz",
    "psis_khat_of_log_ratios",
    "psis_smooth",
]

PYMC_MAJOR = int(pymc.__version__.split(".")[0])
PYTENSOR_MAJOR = int(pytensor.__version__.split(".")[0])

#: pytensor mode name for each backend; the same names work on pytensor 2 and 3.
BACKEND_MODES = {"c": "CVM", "numba": "NUMBA", "jax": "JAX"}

_BACKEND_LIBRARIES = {"c": None, "numba": "numba", "jax": "jax"}


def helper_mode() -> str | None:
    """Compile mode of the package's own functions (warm start, export, full-data fit).

    The C backend where a C compiler is configured: on PyMC 6, whose default is numba,
    compiling the warm-start objective of gp_pois_regr took 35 s with numba and about a
    second in C, and these functions run a few hundred times at most. Else the default.
    """
    return BACKEND_MODES["c"] if pytensor.config.cxx else None


def available_backends() -> list[str]:
    """Backends whose libraries are installed (``"c"`` is always there)."""
    return [
        name
        for name, library in _BACKEND_LIBRARIES.items()
        if library is None or importlib.util.find_spec(library) is not None
    ]


ARVIZ_MAJOR = int(importlib.metadata.version("arviz").split(".")[0])

# ArviZ is imported inside the functions below: PyMC 6 loads it lazily too, and
# ``import pymc_adadelta`` should not cost more than ``import pymc``.


def make_arviz(
    groups: Mapping[str, Mapping[str, Any]],
    *,
    coords: Mapping[str, Any],
    dims: Mapping[str, Any],
    attrs: Mapping[str, Any],
    datasets: Mapping[str, xr.Dataset],
) -> Any:
    """Build the installed ArviZ's own object: InferenceData (0.x) or DataTree (1.x).

    ``groups`` go through ArviZ's ``from_dict`` (sample dims ``chain, draw`` except for
    ``*_data`` groups); ``datasets`` are added as ready-made groups; ``attrs`` are the
    root attributes.
    """
    if ARVIZ_MAJOR == 0:
        import arviz as az

        as_kwargs: dict[str, Any] = dict(groups)
        idata = az.from_dict(**as_kwargs, coords=coords, dims=dims)
        if "posterior" in idata.groups():
            idata.posterior.attrs[VI_DRAWS_ATTR] = VI_DRAWS
            _quiet_one_chain_shape_warning()
        with warnings.catch_warnings():  # groups outside ArviZ 0's schema are fine here
            warnings.filterwarnings("ignore", message=".*not defined in the InferenceData")
            idata.add_groups({name: ds for name, ds in datasets.items()})
        idata.attrs = dict(attrs)
        return idata
    from arviz_base import from_dict

    tree = from_dict(dict(groups), coords=coords, dims=dims, attrs={"/": dict(attrs)})
    if "posterior" in tree.children:
        tree["posterior"].attrs[VI_DRAWS_ATTR] = VI_DRAWS
    for name, ds in datasets.items():
        tree[name] = xr.DataTree(ds)
    return tree


#: The posterior's attribute that marks draws of a variational approximation.
VI_DRAWS_ATTR = "draws_from"
VI_DRAWS = "variational approximation"


class _OneChainVIFilter(logging.Filter):
    """Drop ArviZ 0.x's one-chain shape warning when the data are an export's VI draws.

    ArviZ 0.x's ``summary``, ``rhat`` and friends log "Shape validation failed: input_shape:
    (1, N), minimum_shape: (chains=2, ...)" for any one-chain posterior and report R-hat as
    NaN. For VI draws that is the expected answer, not a problem (one fit gives no R-hat;
    docs/diagnostics.md), so the warning is dropped when a caller up the stack holds a
    posterior marked with `VI_DRAWS_ATTR`. One-chain MCMC keeps its warning; ArviZ 1.x
    has no such warning.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not (message.startswith("Shape validation failed: input_shape: (1,")
                and "chains=2" in message):  # fmt: skip
            return True
        frame = sys._getframe(1)
        while frame is not None:
            if any(_is_vi_posterior(value) for value in frame.f_locals.values()):
                return False
            frame = frame.f_back  # type: ignore[assignment]
        return True


def _is_vi_posterior(value: Any) -> bool:
    if not isinstance(value, xr.Dataset):
        value = (
            getattr(value, "posterior", None) if type(value).__name__ == "InferenceData" else None
        )
    return isinstance(value, xr.Dataset) and value.attrs.get(VI_DRAWS_ATTR) == VI_DRAWS


def _quiet_one_chain_shape_warning() -> None:
    """Install `_OneChainVIFilter` on ArviZ 0.x's logger, once."""
    import arviz as az

    logger = getattr(az, "_log", None)
    if logger is not None and not any(isinstance(f, _OneChainVIFilter) for f in logger.filters):
        logger.addFilter(_OneChainVIFilter())


def is_arviz_data(obj: Any) -> bool:
    """Whether ``obj`` is an InferenceData or a DataTree."""
    if isinstance(obj, xr.DataTree):
        return True
    return ARVIZ_MAJOR == 0 and type(obj).__name__ == "InferenceData"


def arviz_group(data: Any, name: str) -> xr.Dataset | None:
    """Return group ``name`` of an InferenceData or DataTree as a Dataset, or None."""
    if isinstance(data, xr.DataTree):
        return data[name].to_dataset() if name in data.children else None
    return getattr(data, name, None) if name in data.groups() else None


def arviz_root_attrs(data: Any) -> dict[str, Any]:
    """Return the root attributes of an InferenceData or DataTree."""
    return dict(getattr(data, "attrs", None) or {})


def load_arviz(path: str | Path) -> Any:
    """Load what ``to_netcdf`` wrote, as the installed ArviZ's own object."""
    if ARVIZ_MAJOR == 0:
        import arviz as az

        _quiet_one_chain_shape_warning()
        return az.from_netcdf(path)
    return xr.open_datatree(path).load()


def psis_smooth(log_ratios: Any) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log weights (normalized: they log-sum-exp to 0) and k-hat.

    ArviZ's PSIS of importance ratios given as ``log p - log q``.
    """
    if ARVIZ_MAJOR == 0:
        import arviz as az

        log_weights, khat = az.psislw(np.asarray(log_ratios, dtype=np.float64))
        return np.asarray(log_weights), float(khat)
    from arviz_stats.base import array_stats

    # arviz-stats smooths the ratios of minus its input (its input is a log-likelihood).
    log_weights, khat = array_stats.psislw(-np.asarray(log_ratios, dtype=np.float64), r_eff=1)
    return np.asarray(log_weights), float(khat)


def psis_khat_of_log_ratios(log_ratios: Any) -> float:
    """Pareto k-hat of importance ratios given as ``log p - log q``, with ArviZ's PSIS."""
    return psis_smooth(log_ratios)[1]


def mcse_of_mean(draws: Any) -> Any:
    """Monte Carlo standard error of each column's mean, ``draws`` shaped (draw, coord).

    ArviZ's ``mcse(method="mean")`` (ESS-based, Vehtari et al. 2021) on one chain. On
    ArviZ 1 the array API of arviz-stats is called directly: its xarray front end keeps
    references to its inputs, which grew a long fit's memory (measured: +100 MiB over
    80,000 steps of a convergence rule on 2,000 variables).
    """
    if ARVIZ_MAJOR == 0:
        import arviz as az

        data = xr.Dataset({"x": (("chain", "draw", "coord"), draws[None])})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.mcse(data, method="mean")["x"].to_numpy()
    from arviz_stats.base import array_stats

    return array_stats.mcse(draws[None], chain_axis=0, draw_axis=1, method="mean")


def split_rhat(windows: Any) -> Any:
    """ArviZ's split-R̂ of ``windows`` shaped (window, chain, draw, coord): (window, coord)."""
    if ARVIZ_MAJOR == 0:
        import arviz as az

        data = xr.DataArray(windows, dims=("window", "chain", "draw", "coord"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhat = az.rhat(xr.Dataset({"iterates": data}), method="split")["iterates"]
        return rhat.transpose("window", "coord").to_numpy()
    from arviz_stats.base import array_stats

    return array_stats.rhat(windows, chain_axis=1, draw_axis=2, method="split")
