"""`FitState`: everything that continues a fit, in one type, with one restore path.

A checkpoint file (`pymc_adadelta.persist.npz_format`), a chain of ``fit(chains=k)``
coming back from its worker, and a `FitResult` continued in memory all hold a
`FitState`, and all go back into a fit through `restore_state`, which checks the whole
state against the fit first and names every difference before it sets anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any, NamedTuple

import numpy as np
import xarray as xr
from pymc.pytensorf import find_rng_nodes

from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.optim import Adadelta

__all__ = ["FitState", "capture_state", "model_layout", "param_layout", "random_generators",
           "restore_state"]  # fmt: skip


class FitState(NamedTuple):
    """The state of a fit after ``step`` steps.

    Attributes
    ----------
    step : int
        Steps taken.
    approximation : str
        Class name of the approximation (``"MeanField"``, ``"FullRank"``, ...).
    model : list of dict
        Name, shape and dtype of each unconstrained model variable, per group in order.
    params : dict of str to ndarray
        Variational parameters by key ``"<group>/<name>"`` (``"0/mu"``, ``"1/rho"``): the
        last iterate, before any averaging.
    optimizer : dict or None
        `Adadelta.state_dict`: accumulators, step count, hyperparameters, per-group
        settings (schedules described by name) and layout; None without an optimizer.
    rngs : list of dict
        Bit-generator states of the step function's random generators.
    losses : ndarray
        The loss of every step (NaN for methods without one), shape ``(step,)`` or shorter.
    history : xarray.Dataset
        The accumulator tracker's records (dimension ``iteration``).
    """

    step: int
    approximation: str
    model: list[dict[str, Any]]
    params: dict[str, np.ndarray]
    optimizer: dict[str, Any] | None
    rngs: list[dict[str, Any]]
    losses: np.ndarray
    history: xr.Dataset

    def restore(
        self, approx: Any, optimizer: Adadelta | None = None, step_function: Any = None
    ) -> None:
        """Write this state into a fit after checking it; see `restore_state`.

        Examples
        --------
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
        restore_state(self, approx, optimizer, step_function)


def capture_state(
    approx: Any,
    step: int,
    *,
    optimizer: Adadelta | None = None,
    step_function: Any = None,
    losses: np.ndarray | None = None,
    history: xr.Dataset | None = None,
) -> FitState:
    """Copy the state of a fit: parameters, optimizer, random generators, losses, history.

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     approx = pm.fit(10, progressbar=False)
    >>> state = capture_state(approx, 10)
    >>> state.approximation, sorted(state.params)
    ('MeanField', ['0/mu', '0/rho'])
    """
    generators = random_generators(step_function) if step_function is not None else []
    return FitState(
        step=int(step),
        approximation=type(approx).__name__,
        model=model_layout(approx),
        params={e.key: np.array(e.param.get_value()) for e in param_entries(approx)},
        optimizer=optimizer.state_dict() if optimizer is not None else None,
        rngs=[_copy_state(g.get_value(borrow=True).bit_generator.state) for g in generators],
        losses=np.asarray(losses if losses is not None else np.full(step, np.nan), float).copy(),
        history=history.copy() if history is not None else xr.Dataset(),
    )


def restore_state(
    state: FitState,
    approx: Any,
    optimizer: Adadelta | None = None,
    step_function: Any = None,
    *,
    source: str = "the saved fit",
) -> None:
    """Write ``state`` into a fit, after checking that it fits; nothing changes otherwise.

    Parameters
    ----------
    state : FitState
    approx : pymc Approximation
        Receives the variational parameters.
    optimizer : Adadelta, optional
        Receives the accumulators, step count and shared hyperparameters; it must have
        built its updates (compile the step function first) and have the same constant
        hyperparameters, schedules and per-group settings.
    step_function : pytensor Function, optional
        Its random generators receive their states.
    source : str
        How messages name the state (a file name, ``"chain 2"``, ...).

    Raises
    ------
    ValueError
        Naming every difference: approximation, model variables, parameters, optimizer
        layout or settings, random generators, or non-finite saved values.
    """
    generators = random_generators(step_function) if step_function is not None else None
    mismatch = Mismatch(source)
    check_finite(state, mismatch)
    _compare(state, approx, optimizer, generators, mismatch)
    mismatch.raise_if_any()
    if optimizer is not None and state.optimizer is not None:
        try:
            optimizer.load_state_dict(state.optimizer)
        except ValueError as error:
            raise ValueError(f"{source} does not fit this optimizer: {error}") from error
    for entry in param_entries(approx):
        dtype = entry.param.get_value(borrow=True).dtype
        entry.param.set_value(state.params[entry.key].astype(dtype, copy=True))
    for generator, saved in zip(generators or [], state.rngs, strict=False):
        value = generator.get_value()
        value.bit_generator.state = _copy_state(saved)
        generator.set_value(value, borrow=True)


def check_finite(state: FitState, mismatch: Mismatch) -> None:
    """Add a problem for every non-finite saved parameter or accumulator."""
    for key, value in state.params.items():
        if not np.isfinite(value).all():
            mismatch.add(f"parameter {key!r} holds NaN or inf")
    accumulators = (state.optimizer or {}).get("accumulators", {})
    for name, values in accumulators.items():
        for which, value in values.items():
            if not np.isfinite(value).all():
                mismatch.add(f"accumulator {name}/{which} holds NaN or inf")


def _compare(
    state: FitState,
    approx: Any,
    optimizer: Adadelta | None,
    generators: Sequence[Any] | None,
    mismatch: Mismatch,
) -> None:
    kind = type(approx).__name__
    if state.approximation != kind:
        mismatch.add(f"it holds a {state.approximation} approximation, this fit a {kind}")
    mismatch.compare("model variables", state.model, model_layout(approx))
    saved_params = [
        {"name": k, "shape": list(v.shape), "dtype": str(v.dtype)} for k, v in state.params.items()
    ]
    mismatch.compare("variational parameters", saved_params, param_layout(approx))
    if optimizer is not None and state.optimizer is not None:
        mismatch.compare("optimizer layout", state.optimizer["layout"], optimizer.state.layout())
        mismatch.extend(optimizer.settings_differences(state.optimizer))
    if state.rngs and generators is not None:
        mismatch.compare(
            "random generators",
            [s["bit_generator"] for s in state.rngs],
            [g.get_value(borrow=True).bit_generator.state["bit_generator"] for g in generators],
        )


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
    return list(find_rng_nodes(step_function.get_shared()))


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
        {"name": e.key, "shape": list(v.shape), "dtype": str(v.dtype)}
        for e, v in ((e, e.param.get_value(borrow=True)) for e in param_entries(approx))
    ]


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in state.items()}


class Mismatch:
    """Collect every difference between a saved state and a fit, then raise them together."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        """Record one problem."""
        self.problems.append(problem)

    def extend(self, problems: Sequence[str]) -> None:
        """Record several problems."""
        self.problems.extend(problems)

    def compare(self, what: str, saved: Sequence[Any], current: Sequence[Any]) -> None:
        """Record the entries of two layouts that differ."""
        saved, current = _normal(saved), _normal(current)
        differences = [
            f"{a if a is not None else 'nothing'} saved vs {b if b is not None else 'nothing'} here"
            for a, b in zip_longest(saved, current)
            if a != b
        ]
        if differences:
            self.add(f"{what} differ: " + "; ".join(differences))

    def raise_if_any(self) -> None:
        """Raise ValueError listing every problem, if there is any."""
        if self.problems:
            raise ValueError(f"{self.source} does not fit this fit: " + ". ".join(self.problems))


def _normal(layout: Sequence[Any]) -> list[Any]:
    """Layout entries as comparable tuples: ``(name, shape, dtype)`` or the value itself."""
    return [
        (d["name"], tuple(int(s) for s in d["shape"]), str(d["dtype"]))
        if isinstance(d, Mapping)
        else d
        for d in layout
    ]
