"""The variational parameters of an approximation, keyed by group and name.

PyMC names the parameters of every group alike (``mu``, ``rho``, ``L_tril``, ...), so a
structured approximation with several groups has several ``mu``. Everything in this
package that stores, averages, tracks or restores parameters keys them here:

- ``label``: the name for a one-group approximation (``"mu"``), ``"<group>/<name>"``
  with several groups (``"0/mu"``, ``"1/mu"``); what results and callbacks show;
- ``key``: always ``"<group>/<name>"``; what checkpoint files store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ParamEntry", "param_entries", "params_by_label", "read_params", "write_params"]


class ParamEntry(NamedTuple):
    """One variational parameter of one group of an approximation."""

    label: str
    key: str
    group_index: int
    group: Any
    name: str
    param: Any


def param_entries(approx: Any) -> list[ParamEntry]:
    """Every variational parameter of ``approx``, in group order.

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model():
    ...     a = pm.Normal("a", 0.0, 1.0)
    ...     b = pm.Normal("b", 0.0, 1.0)
    ...     approx = pm.Approximation([pm.Group([a], vfam="fr"), pm.Group(None, vfam="mf")])
    >>> [e.label for e in param_entries(approx)]
    ['0/mu', '0/L_tril', '1/mu', '1/rho']
    """
    groups = list(approx.groups)
    entries = []
    for g, group in enumerate(groups):
        for name, param in group.params_dict.items():
            key = f"{g}/{name}"
            entries.append(
                ParamEntry(name if len(groups) == 1 else key, key, g, group, name, param)
            )
    return entries


def params_by_label(approx: Any) -> dict[str, Any]:
    """The shared variables of ``approx``'s parameters by label."""
    return {e.label: e.param for e in param_entries(approx)}


def read_params(approx: Any) -> dict[str, np.ndarray]:
    """Copies of the parameter values by label (NumPy, also on the JAX backend)."""
    return {e.label: np.array(e.param.get_value()) for e in param_entries(approx)}


def write_params(approx: Any, values: Mapping[str, np.ndarray]) -> None:
    """Set parameters from ``values`` (by label), cast to each parameter's dtype.

    Raises
    ------
    ValueError
        If a label is missing or a shape differs; nothing is written then.
    """
    entries = param_entries(approx)
    for e in entries:
        if e.label not in values:
            raise ValueError(f"no value for parameter {e.label!r}; given {sorted(values)}")
        shape = np.shape(e.param.get_value(borrow=True))
        if np.shape(values[e.label]) != shape:
            raise ValueError(
                f"parameter {e.label!r} has shape {shape}, the value {np.shape(values[e.label])}"
            )
    for e in entries:
        dtype = e.param.get_value(borrow=True).dtype
        e.param.set_value(np.asarray(values[e.label], dtype=dtype).copy())
