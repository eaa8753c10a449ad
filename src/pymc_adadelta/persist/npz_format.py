"""The checkpoint file: a `FitState` as one ``.npz`` file, read back with every check.

The file (NumPy's zip of ``.npy`` arrays, read with ``allow_pickle=False``) holds:

- ``meta``: a JSON string: ``format``, ``format_version``, ``step``, the approximation's
  class, the model's unconstrained variables (name, shape, dtype), the layout of the
  variational parameters, the optimizer's state dict without its arrays (hyperparameters,
  per-group settings, layout) and the state of every random generator of the step
  function;
- ``params/<group>/<name>``: the variational parameters (``mu``, ``rho``, ``L_tril``, ...);
- ``optimizer/<param>/<accumulator>``: the Adadelta accumulators;
- ``losses``: the loss of every step so far;
- ``history``: the accumulator tracker's records as netCDF-4 bytes (xarray's own
  serialization, engine h5netcdf).

It is written atomically (`pymc_adadelta.persist.atomic`). Reading checks the whole file
and raises ValueError naming the first entry that is wrong.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pymc_adadelta.persist.atomic import write_npz_atomically
from pymc_adadelta.persist.fit_state import FitState, Mismatch, check_finite

__all__ = ["CHECKPOINT_FORMAT_VERSION", "read_state", "write_state"]

#: Version of the files this package writes; it reads this one and version 1.
CHECKPOINT_FORMAT_VERSION = 2
FORMAT = "pymc-adadelta-checkpoint"
ACCUMULATORS = ("sq_grad", "sq_delta")
_UNREADABLE = (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeError)


def write_state(path: Path, state: FitState) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file renamed over it)."""
    arrays = {f"params/{k}": v for k, v in state.params.items()}
    arrays["losses"] = np.asarray(state.losses, dtype=np.float64)
    optimizer = dict(state.optimizer) if state.optimizer is not None else None
    if optimizer is not None:
        for name, values in optimizer.pop("accumulators").items():
            arrays.update({f"optimizer/{name}/{w}": values[w] for w in ACCUMULATORS})
    buffer = io.BytesIO()
    state.history.to_netcdf(buffer, engine="h5netcdf")
    arrays["history"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    meta = {
        "format": FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "step": state.step,
        "approximation": state.approximation,
        "model": state.model,
        "params": [
            {"name": k, "shape": list(v.shape), "dtype": str(v.dtype)}
            for k, v in state.params.items()
        ],
        "optimizer": _jsonable(optimizer),
        "rngs": _jsonable(state.rngs),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz_atomically(path, arrays)


def read_state(path: Path) -> FitState:
    """Read and check the checkpoint at ``path``.

    Raises
    ------
    FileNotFoundError
        If there is no file.
    ValueError
        If the file is truncated, corrupt, not a checkpoint, from a newer format, or an
        entry is malformed or not finite; the message names the entry.
    """
    arrays, meta = _read(path)
    where = f"checkpoint {str(path)!r}"
    _check_meta(where, meta)
    params = _take(where, arrays, meta["params"], "params/")
    optimizer = meta["optimizer"]
    if optimizer is not None:
        if not isinstance(optimizer, dict) or not isinstance(optimizer.get("layout"), list):
            raise ValueError(f"{where}: the metadata 'optimizer' is malformed")
        layout = [dict(p, name=f"{p.get('name')}/{w}") for p in optimizer["layout"]
                  for w in ACCUMULATORS]  # fmt: skip
        flat = _take(where, arrays, layout, "optimizer/")
        nested: dict[str, dict[str, np.ndarray]] = {}
        for key, array in flat.items():
            name, which = key.rsplit("/", 1)
            nested.setdefault(name, {})[which] = array
        optimizer = dict(optimizer, accumulators=nested)
    losses = arrays.get("losses")
    if losses is None or losses.ndim != 1 or len(losses) > meta["step"]:
        raise ValueError(f"{where}: 'losses' is missing or longer than step {meta['step']}")
    history = _history(where, arrays, meta)
    state = FitState(meta["step"], meta["approximation"], meta["model"], params, optimizer,
                     meta["rngs"], losses, history)  # fmt: skip
    mismatch = Mismatch(where)
    check_finite(state, mismatch)
    if mismatch.problems:
        raise ValueError(f"{where} cannot be resumed: " + ". ".join(mismatch.problems))
    return state


def _read(path: Path) -> tuple[dict[str, np.ndarray], Any]:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"checkpoint path {str(path)!r} is a directory, not a file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(str(arrays.pop("meta")[()]))
    except _UNREADABLE as error:
        raise ValueError(
            f"checkpoint {str(path)!r} is truncated or corrupt and cannot be read "
            f"({type(error).__name__}: {error})"
        ) from error
    return arrays, meta


_META_TYPES: dict[str, Any] = {
    "format": str,
    "format_version": int,
    "step": int,
    "approximation": str,
    "model": list,
    "params": list,
    "optimizer": (dict, type(None)),
    "rngs": list,
}


def _check_meta(where: str, meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{where} is not a pymc-adadelta checkpoint")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{where} has format_version {version!r}; this version of pymc-adadelta "
            f"reads up to {CHECKPOINT_FORMAT_VERSION}: upgrade pymc-adadelta"
        )
    for key, kind in _META_TYPES.items():
        if key not in meta:
            raise ValueError(f"{where} is missing the metadata {key!r}")
        if isinstance(meta[key], bool) or not isinstance(meta[key], kind):
            raise ValueError(f"{where}: the metadata {key!r} is malformed: {meta[key]!r}")
    if meta["step"] < 0:
        raise ValueError(f"{where}: the metadata 'step' is negative: {meta['step']}")
    for entry in (*meta["model"], *meta["params"]):
        _check_layout_entry(where, entry)


def _check_layout_entry(where: str, entry: Any) -> None:
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("shape"), list)
        and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
        and isinstance(entry.get("dtype"), str)
    )
    if not ok:
        raise ValueError(f"{where}: a layout entry is malformed (needs name, shape, dtype): "
                         f"{entry!r}")  # fmt: skip


def _take(
    where: str, arrays: Mapping[str, np.ndarray], layout: list[dict[str, Any]], prefix: str
) -> dict[str, np.ndarray]:
    """The arrays named in ``layout``, checked against their shapes and dtypes."""
    taken = {}
    for entry in layout:
        _check_layout_entry(where, entry)
        key = f"{prefix}{entry['name']}"
        array = arrays.get(key)
        want = (tuple(entry["shape"]), str(entry["dtype"]))
        if array is None or (array.shape, str(array.dtype)) != want:
            got = "nothing" if array is None else (array.shape, str(array.dtype))
            raise ValueError(f"{where} is inconsistent: {key!r} holds {got}, its metadata "
                             f"says {want}")  # fmt: skip
        taken[entry["name"]] = array
    return taken


def _history(where: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> xr.Dataset:
    if meta["format_version"] == 1:
        return _history_v1(where, arrays, meta.get("history") or {})
    raw = arrays.get("history")
    if raw is None:
        raise ValueError(f"{where} has no 'history'")
    try:
        with xr.open_dataset(io.BytesIO(raw.tobytes()), engine="h5netcdf") as dataset:
            return dataset.load()
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{where}: 'history' cannot be read ({error})") from error


def _history_v1(where: str, arrays: Mapping[str, np.ndarray], saved: Mapping) -> xr.Dataset:
    """The history of a format-1 file: one array per variable and coordinate."""
    data: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for name, dims in dict(saved.get("dims", {})).items():
        key = f"history/coords/{name}"
        target = coords if key in arrays else data
        key = key if key in arrays else f"history/{name}"
        if key not in arrays or arrays[key].ndim != len(dims):
            raise ValueError(f"{where} is inconsistent: history {name!r}")
        target[name] = (tuple(dims), arrays[key])
    try:
        return xr.Dataset(data, coords=coords, attrs=saved.get("attrs", {}))
    except ValueError as error:
        raise ValueError(f"{where} has an inconsistent history: {error}") from error


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return str(value)
