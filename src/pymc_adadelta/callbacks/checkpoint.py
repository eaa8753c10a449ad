"""`Checkpoint`: save a fit to disk, atomically, and read it back to resume.

A checkpoint is one ``.npz`` file (NumPy's zip of ``.npy`` arrays, read with
``allow_pickle=False``) holding:

- ``meta``: a JSON string: ``format``, ``format_version``, ``step``, the approximation's
  class, the model's unconstrained variables (name, shape, dtype), the layout of the
  variational parameters, the optimizer's state dict without its arrays, the state of
  every random generator of the compiled step function, and the dims of the history;
- ``params/<group>/<name>``: the variational parameters (``mu``, ``rho``, ``L_tril``, ...);
- ``optimizer/<param>/<accumulator>``: the Adadelta accumulators;
- ``losses``: the loss of every step so far;
- ``history/<name>`` and ``history/coords/<name>``: the accumulator tracker's records.

The file is written to a temporary file in the same directory, flushed to disk and then
renamed over the previous checkpoint, so a crash mid-write leaves the previous one intact.
Reading checks the whole file, and `CheckpointData.restore` checks it against the fit
before it sets anything.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from pymc_adadelta.callbacks.tracking import AccumulatorTracker
from pymc_adadelta.optim.optimizer import Adadelta
from pymc_adadelta.persist.atomic import write_npz_atomically

__all__ = ["CHECKPOINT_FORMAT_VERSION", "Checkpoint", "CheckpointData", "random_generators"]

#: Version of the checkpoint files this package writes; it reads this one and older.
CHECKPOINT_FORMAT_VERSION = 1
_FORMAT = "pymc-adadelta-checkpoint"
_ACCUMULATORS = ("sq_grad", "sq_delta")

PathLike = str | os.PathLike[str]
HistorySource = AccumulatorTracker | Callable[[], xr.Dataset]


class CheckpointData(NamedTuple):
    """A checkpoint read back from disk, checked for consistency.

    Attributes
    ----------
    path : pathlib.Path
        The file it was read from.
    meta : dict
        The JSON metadata (format version, step, layouts, random generator states).
    params : dict of str to ndarray
        Variational parameters keyed ``"<group>/<name>"``, e.g. ``"0/mu"``.
    optimizer : dict or None
        The `Adadelta.state_dict` that was saved, or None when no optimizer was given.
    losses : ndarray
        The loss of each step (NaN for methods without a loss).
    history : xarray.Dataset
        The accumulator tracker's history (empty when none was saved).

    Examples
    --------
    >>> import pathlib, tempfile, pymc as pm
    >>> from pymc_adadelta import Checkpoint, fit
    >>> where = pathlib.Path(tempfile.mkdtemp()) / "fullrank.npz"
    >>> with pm.Model(coords={"k": ["a", "b"]}) as model:
    ...     w = pm.Normal("w", 0.0, 1.0, dims="k")
    >>> _ = fit(200, model=model, method="fullrank_advi", checkpoint=where, progressbar=False)
    >>> data = Checkpoint.load(where)
    >>> data.step, sorted(data.params), data.meta["approximation"]
    (200, ['0/L_tril', '0/mu'], 'FullRank')
    """

    path: Path
    meta: dict[str, Any]
    params: dict[str, np.ndarray]
    optimizer: dict[str, Any] | None
    losses: np.ndarray
    history: xr.Dataset

    @property
    def step(self) -> int:
        """Number of steps the fit had taken."""
        return int(self.meta["step"])

    def restore(
        self, approx: Any, optimizer: Adadelta | None = None, step_function: Any = None
    ) -> None:
        """Write the saved state into a fit, after checking that it fits.

        Parameters
        ----------
        approx : pymc Approximation
            Receives the variational parameters.
        optimizer : Adadelta, optional
            Receives the accumulators, step count and shared hyperparameters; it must
            have built its updates (compile the step function first).
        step_function : pytensor Function, optional
            The compiled step function, whose random generators receive their states.

        Raises
        ------
        ValueError
            If the checkpoint was written for another model, approximation, parameter
            layout, optimizer layout or step function. Nothing is changed then.

        Examples
        --------
        Put the parameters of a saved fit into a new approximation of the same model:

        >>> import tempfile, pymc as pm
        >>> from pymc_adadelta import Checkpoint, fit
        >>> with tempfile.TemporaryDirectory() as folder, pm.Model():
        ...     scale = pm.HalfNormal("scale", 1.0)
        ...     saved = fit(100, checkpoint=f"{folder}/f.npz", progressbar=False)
        ...     fresh = pm.MeanField()
        ...     Checkpoint.load(f"{folder}/f.npz").restore(fresh)
        >>> [bool((a.get_value() == b.get_value()).all())
        ...  for a, b in zip(fresh.params, saved.approx.params)]
        [True, True]
        """
        generators = random_generators(step_function) if step_function is not None else None
        self._check_against(approx, optimizer, generators)
        if optimizer is not None and self.optimizer is not None:
            _load_optimizer(optimizer, self.optimizer, self.path)
        for key, param in _params(approx).items():
            param.set_value(self.params[key].copy())
        for generator, state in zip(generators or [], self.meta["rngs"], strict=False):
            value = generator.get_value()
            value.bit_generator.state = state
            generator.set_value(value, borrow=True)

    def _check_against(
        self, approx: Any, optimizer: Adadelta | None, generators: Sequence[Any] | None
    ) -> None:
        meta = self.meta
        mismatch = _Mismatch(self.path)
        kind = type(approx).__name__
        if meta["approximation"] != kind:
            mismatch.add(f"it holds a {meta['approximation']} approximation, this fit a {kind}")
        mismatch.compare("model variables", meta["model"], model_layout(approx))
        mismatch.compare("variational parameters", meta["params"], param_layout(approx))
        if optimizer is not None and self.optimizer is not None:
            mismatch.compare("optimizer layout", self.optimizer["layout"], optimizer.state.layout())
        if meta["rngs"] and generators is not None:
            mismatch.compare(
                "random generators",
                [s["bit_generator"] for s in meta["rngs"]],
                [g.get_value(borrow=True).bit_generator.state["bit_generator"] for g in generators],
            )
        mismatch.raise_if_any()


class Checkpoint:
    """Save the fit every ``every`` steps, so that it can be resumed.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file (npz; see the module documentation). It is replaced
        atomically at each save.
    every : int, default 1000
        Steps between saves.
    optimizer : Adadelta, optional
        The fit's optimizer, whose state is saved; without it the checkpoint holds the
        parameters and history only and cannot resume a fit.
    history : AccumulatorTracker or callable, optional
        The tracker whose history is saved, or a function returning the history Dataset.
    step_function : pytensor Function, optional
        The compiled step function, whose random generators are saved; without it a
        resumed fit draws other (equally distributed) random numbers. `pymc_adadelta.fit`
        passes it.

    Attributes
    ----------
    last_step : int or None
        Step of the last checkpoint written.
    skipped : int
        Saves skipped because the parameters or the loss were not finite.

    Examples
    --------
    >>> import pymc as pm, tempfile, os
    >>> from pymc_adadelta import Adadelta, Checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.npz")
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     opt = Adadelta()
    ...     save = Checkpoint(path, every=100, optimizer=opt)
    ...     approx = pm.fit(250, obj_optimizer=opt, callbacks=[save], progressbar=False)
    >>> save.last_step, Checkpoint.load(path).optimizer["step"]
    (200, 200)
    """

    def __init__(
        self,
        path: PathLike,
        every: int = 1000,
        *,
        optimizer: Adadelta | None = None,
        history: HistorySource | None = None,
        step_function: Any = None,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if optimizer is not None and not isinstance(optimizer, Adadelta):
            raise TypeError(f"optimizer must be an Adadelta or None, got {optimizer!r}")
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ValueError(f"path {str(path)!r} is in a directory that does not exist")
        self.every = every
        self.optimizer = optimizer
        self.history = history
        self.step_function = step_function
        self.last_step: int | None = None
        self.skipped = 0

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Save step ``i`` if it is one of every ``every`` steps."""
        if i % self.every == 0:
            self.save(approx, losses, i)

    def save(self, approx: Any, losses: np.ndarray | None, step: int) -> bool:
        """Write a checkpoint of ``approx`` after ``step`` steps now.

        Returns False, keeping the previous file, when the parameters or the last loss
        are not finite (a diverged state is not worth resuming).
        """
        params = {k: p.get_value(borrow=True) for k, p in _params(approx).items()}
        if not _finite(params, losses):
            self.skipped += 1
            warnings.warn(
                f"step {step}: non-finite parameters or loss; kept the checkpoint "
                f"of step {self.last_step}",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        arrays, meta = self._contents(approx, params, losses, step)
        arrays["meta"] = np.array(json.dumps(meta))
        write_npz_atomically(self.path, arrays)
        self.last_step = step
        return True

    @staticmethod
    def load(path: PathLike) -> CheckpointData:
        """Read and check the checkpoint at ``path``.

        Raises
        ------
        ValueError
            If the file is truncated, corrupt, not a checkpoint, or from a newer format.

        Examples
        --------
        >>> from pymc_adadelta import Checkpoint
        >>> Checkpoint.load("no-such-file.npz")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...
        """
        return _parse(Path(path), *_read(Path(path)))

    def _contents(
        self, approx: Any, params: Mapping[str, np.ndarray], losses: np.ndarray | None, step: int
    ) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {f"params/{k}": v for k, v in params.items()}
        arrays["losses"] = np.asarray(
            losses if losses is not None else np.full(step, np.nan), dtype=np.float64
        )
        optimizer = self.optimizer.state_dict() if self.optimizer is not None else None
        if optimizer is not None:
            for name, values in optimizer.pop("accumulators").items():
                arrays.update({f"optimizer/{name}/{w}": values[w] for w in _ACCUMULATORS})
        history = _history(self.history)
        arrays.update(_encode_dataset(history))
        generators = random_generators(self.step_function) if self.step_function else []
        meta = {
            "format": _FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "step": int(step),
            "approximation": type(approx).__name__,
            "model": model_layout(approx),
            "params": param_layout(approx),
            "optimizer": _jsonable(optimizer),
            "rngs": [g.get_value(borrow=True).bit_generator.state for g in generators],
            "history": {
                "dims": {k: list(v.dims) for k, v in history.variables.items()},
                "attrs": _jsonable(dict(history.attrs)),
            },
        }
        return arrays, meta


def random_generators(step_function: Any) -> list[Any]:
    """Return the shared NumPy random generators a compiled pytensor function uses.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> rng = pytensor.shared(np.random.default_rng(1))
    >>> f = pytensor.function([], rng)
    >>> random_generators(f)[0] is rng
    True
    """
    return [
        v
        for v in step_function.get_shared()
        if isinstance(v.get_value(borrow=True), np.random.Generator)
    ]


def model_layout(approx: Any) -> list[dict[str, Any]]:
    """Name, shape and dtype of each unconstrained model variable of ``approx``."""
    return [
        {"name": name, "shape": [int(s) for s in shape], "dtype": str(np.dtype(dtype))}
        for group in approx.groups
        for name, _, shape, dtype in group.ordering.values()
    ]


def param_layout(approx: Any) -> list[dict[str, Any]]:
    """Key, shape and dtype of each variational parameter of ``approx``."""
    return [
        {"name": key, "shape": list(value.shape), "dtype": str(value.dtype)}
        for key, value in ((k, p.get_value(borrow=True)) for k, p in _params(approx).items())
    ]


def _params(approx: Any) -> dict[str, Any]:
    return {
        f"{g}/{name}": param
        for g, group in enumerate(approx.groups)
        for name, param in group.params_dict.items()
    }


def _finite(params: Mapping[str, np.ndarray], losses: np.ndarray | None) -> bool:
    last = losses[-1] if losses is not None and len(losses) else 0.0
    return bool(np.isfinite(last)) and all(np.isfinite(v).all() for v in params.values())


def _history(source: HistorySource | None) -> xr.Dataset:
    if source is None:
        return xr.Dataset()
    if isinstance(source, AccumulatorTracker):
        return source.history if len(source) else xr.Dataset()
    return source()


# -- writing ----------------------------------------------------------------------------
def _encode_dataset(dataset: xr.Dataset) -> dict[str, np.ndarray]:
    arrays = {f"history/{k}": _plain(v.values) for k, v in dataset.data_vars.items()}
    arrays.update({f"history/coords/{k}": _plain(v.values) for k, v in dataset.coords.items()})
    return arrays


def _plain(values: np.ndarray) -> np.ndarray:
    """Strings as fixed-width unicode: object arrays would need pickle."""
    return values.astype(str) if values.dtype == object else values


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


# -- reading ----------------------------------------------------------------------------
_UNREADABLE = (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeError)


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
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


def _parse(path: Path, arrays: dict[str, np.ndarray], meta: Any) -> CheckpointData:
    _check_meta(path, meta)
    params = _take(path, arrays, {f"params/{p['name']}": p for p in meta["params"]}, "params/")
    optimizer = meta["optimizer"]
    if optimizer is not None:
        optimizer = dict(optimizer, accumulators=_accumulators(path, arrays, optimizer))
    losses = arrays.get("losses")
    if losses is None or losses.ndim != 1 or len(losses) > meta["step"]:
        raise ValueError(
            f"checkpoint {str(path)!r} has no valid per-step losses for step {meta['step']}"
        )
    history = _decode_dataset(path, arrays, meta["history"])
    return CheckpointData(path, meta, params, optimizer, losses, history)


_META_KEYS = (
    "format",
    "format_version",
    "step",
    "approximation",
    "model",
    "params",
    "optimizer",
    "rngs",
    "history",
)


def _check_meta(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a pymc-adadelta checkpoint")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {str(path)!r} has format_version {version!r}; this version of "
            f"pymc-adadelta reads up to {CHECKPOINT_FORMAT_VERSION}: upgrade pymc-adadelta"
        )
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is missing the metadata {missing}")


def _take(
    path: Path, arrays: Mapping[str, np.ndarray], expected: Mapping[str, Mapping], prefix: str
) -> dict[str, np.ndarray]:
    """Return the arrays named in ``expected``, checked against their shapes and dtypes."""
    taken = {}
    for key, layout in expected.items():
        array = arrays.get(key)
        want = (tuple(layout["shape"]), str(layout["dtype"]))
        if array is None or (array.shape, str(array.dtype)) != want:
            got = "nothing" if array is None else (array.shape, str(array.dtype))
            raise ValueError(
                f"checkpoint {str(path)!r} is inconsistent: {key!r} holds {got}, "
                f"its metadata says {want}"
            )
        taken[key.removeprefix(prefix)] = array
    return taken


def _accumulators(
    path: Path, arrays: Mapping[str, np.ndarray], optimizer: Mapping[str, Any]
) -> dict[str, dict[str, np.ndarray]]:
    expected = {f"optimizer/{p['name']}/{w}": p for p in optimizer["layout"] for w in _ACCUMULATORS}
    flat = _take(path, arrays, expected, "optimizer/")
    nested: dict[str, dict[str, np.ndarray]] = {}
    for key, array in flat.items():
        name, which = key.rsplit("/", 1)
        nested.setdefault(name, {})[which] = array
    return nested


def _decode_dataset(
    path: Path, arrays: Mapping[str, np.ndarray], saved: Mapping[str, Any]
) -> xr.Dataset:
    dims = saved["dims"]
    variables = {}
    for name, var_dims in dims.items():
        key = f"history/coords/{name}" if f"history/coords/{name}" in arrays else f"history/{name}"
        if key not in arrays or arrays[key].ndim != len(var_dims):
            raise ValueError(f"checkpoint {str(path)!r} is inconsistent: history {name!r}")
        variables[name] = (key.startswith("history/coords/"), tuple(var_dims), arrays[key])
    try:
        return xr.Dataset(
            {k: (d, a) for k, (is_coord, d, a) in variables.items() if not is_coord},
            coords={k: (d, a) for k, (is_coord, d, a) in variables.items() if is_coord},
            attrs=saved.get("attrs", {}),
        )
    except ValueError as error:
        raise ValueError(
            f"checkpoint {str(path)!r} has an inconsistent history: {error}"
        ) from error


def _load_optimizer(optimizer: Adadelta, saved: dict[str, Any], path: Path) -> None:
    """Load ``saved``; on a refusal, put back what the optimizer held before."""
    before = optimizer.state_dict()
    try:
        optimizer.load_state_dict(saved)
    except ValueError as error:
        optimizer.load_state_dict(before)
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit this optimizer: {error}"
        ) from error


class _Mismatch:
    """Collect every difference between a checkpoint and a fit, then raise them together."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def compare(self, what: str, saved: Sequence[Any], current: Sequence[Any]) -> None:
        saved, current = _normal(saved), _normal(current)
        differences = [
            f"{a if a is not None else 'nothing'} in the checkpoint vs "
            f"{b if b is not None else 'nothing'} here"
            for a, b in zip_longest(saved, current)
            if a != b
        ]
        if differences:
            self.add(f"{what} differ: " + "; ".join(differences))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ValueError(
                f"checkpoint {str(self.path)!r} was written for another fit: "
                + ". ".join(self.problems)
            )


def _normal(layout: Sequence[Any]) -> list[Any]:
    """Layout entries as comparable tuples: ``(name, shape, dtype)`` or the value itself."""
    return [
        (d["name"], tuple(int(s) for s in d["shape"]), str(d["dtype"]))
        if isinstance(d, Mapping)
        else d
        for d in layout
    ]
