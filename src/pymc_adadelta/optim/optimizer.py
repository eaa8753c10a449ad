"""`Adadelta`: the optimizer handle to pass as ``pm.fit(obj_optimizer=...)``.

It holds the hyperparameters (and per-group overrides), builds the update graph when
PyMC calls it with gradients and parameters, and keeps the `AdadeltaState` of the last
graph it built so that the accumulators can be inspected, saved and restored.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable

from pymc_adadelta._typing import SharedTensor
from pymc_adadelta.approx.layout import accumulators_by_variable, accumulators_dataset
from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.optim.hyperparameters import HyperParameters, describe_value, validate_groups
from pymc_adadelta.optim.state import AdadeltaState
from pymc_adadelta.optim.updates import AdadeltaUpdates, build_updates, check_params, compute_grads

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["STATE_FORMAT_VERSION", "Adadelta"]

#: Version of the dictionaries returned by `Adadelta.state_dict`.
STATE_FORMAT_VERSION = 1


class Adadelta:
    """Adadelta optimizer with packed, named state, usable as PyMC's ``obj_optimizer``.

    Parameters
    ----------
    learning_rate : float, pytensor scalar or callable, default 1.0
        Step scale; a callable is a schedule of the int64 step count (0 on the first
        step) returning a symbolic scalar, built into the graph.
    rho : float or pytensor scalar, default 0.95
        Decay of the running averages, in [0, 1).
    epsilon : float or pytensor scalar, default 1e-6
        Positive floor inside the square roots.
    groups : mapping, optional
        Per-parameter overrides, keyed by parameter name (``"mu"``, ``"rho"``,
        ``"L_tril"``, ...) or shared variable, e.g. ``{"mu": {"learning_rate": 0.5}}``.

    Examples
    --------
    >>> import numpy as np, pymc as pm
    >>> from pymc_adadelta import Adadelta
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=2)
    ...     opt = Adadelta(groups={"rho": {"learning_rate": 0.5}})
    ...     approx = pm.fit(200, obj_optimizer=opt, progressbar=False, random_seed=1)
    >>> opt.state.n_steps
    200
    >>> sorted(opt.accumulators())
    ['mu', 'rho']
    """

    def __init__(
        self,
        learning_rate: Any = 1.0,
        rho: Any = 0.95,
        epsilon: Any = 1e-6,
        groups: Mapping[Any, Mapping[str, Any]] | None = None,
    ):
        if isinstance(learning_rate, list | tuple) and isinstance(rho, list | tuple):
            # pm.fit(obj_optimizer=Adadelta): PyMC called the class with (grads, params)
            raise TypeError(
                "obj_optimizer must be an Adadelta instance: pass Adadelta() (or adadelta()), "
                "not the class Adadelta"
            )
        self.hyperparameters = HyperParameters.create(learning_rate, rho, epsilon)
        self.groups = validate_groups(groups)
        self._group_hyperparameters = {
            key: self.hyperparameters.replace(settings) for key, settings in self.groups.items()
        }
        self._state: AdadeltaState | None = None
        self._slot_hyperparameters: list[HyperParameters] = []

    def __repr__(self) -> str:
        described = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.describe().items())
        groups = f", groups={self.groups!r}" if self.groups else ""
        return f"Adadelta({described}{groups})"

    def __call__(self, loss_or_grads: Any, params: Any) -> AdadeltaUpdates:
        """Build the updates of one Adadelta step for ``params``.

        Parameters
        ----------
        loss_or_grads : scalar Variable or list of Variable
            A scalar loss or one gradient per parameter.
        params : list of SharedVariable
            The parameters to update.

        Returns
        -------
        AdadeltaUpdates
            Ordered updates; ``.state`` is the new `AdadeltaState`, also kept as
            ``self.state``.
        """
        if loss_or_grads is None or params is None:
            raise ValueError("Please provide both `loss_or_grads` and `params` to get updates")
        params = check_params(params)
        grads = compute_grads(loss_or_grads, params)
        state = AdadeltaState.create(params)
        self._slot_hyperparameters = self._hyperparameters_for(state)
        updates = build_updates(grads, state, self._slot_hyperparameters)
        self._state = state
        return updates

    def _hyperparameters_for(self, state: AdadeltaState) -> list[HyperParameters]:
        chosen: dict[str, HyperParameters] = {}
        unknown = []
        for key, hyper in self._group_hyperparameters.items():
            matches = [s.name for s in state.slots if _matches(key, s.name, s.param)]
            if not matches:
                unknown.append(_group_key(key))
            chosen.update(dict.fromkeys(matches, hyper))
        if unknown:
            raise ValueError(
                f"groups refers to parameters {unknown} that are not being optimized; "
                f"the parameters are {list(state.names)}"
            )
        return [chosen.get(s.name, self.hyperparameters) for s in state.slots]

    @property
    def state(self) -> AdadeltaState:
        """The `AdadeltaState` of the last update graph this optimizer built."""
        if self._state is None:
            raise RuntimeError(
                "this Adadelta optimizer has not built any updates yet; pass it to "
                "pm.fit(obj_optimizer=...) or call it with gradients and parameters first"
            )
        return self._state

    def accumulators(self, approx: Approximation | None = None, *, as_dataset: bool = False) -> Any:
        """Return E[g²] (``sq_grad``) and E[Δx²] (``sq_delta``).

        Parameters
        ----------
        approx : pymc Approximation, optional
            The approximation being fitted. When given, the accumulators are split by
            model variable (see `pymc_adadelta.approx.layout.accumulators_by_variable`); keys
            are parameter labels (``"mu"``, or ``"0/mu"`` with several groups).
        as_dataset : bool, default False
            With ``approx``: return an ``xarray.Dataset`` with the model's dims instead
            of nested dicts.

        Returns
        -------
        dict or xarray.Dataset
            Without ``approx``: ``{param: {"sq_grad": array, "sq_delta": array}}``.
            With it: ``{param: {variable: {"sq_grad": ..., "sq_delta": ...}}}``.
        """
        per_param = self.state.accumulators()
        if approx is None:
            if as_dataset:
                raise ValueError("as_dataset=True needs the approximation (approx=...)")
            return per_param
        per_label = self._by_label(approx, per_param)
        if as_dataset:
            return accumulators_dataset(approx, per_label)
        return accumulators_by_variable(approx, per_label)

    def _by_label(self, approx: Any, per_slot: Mapping[str, Any]) -> dict[str, Any]:
        """Re-key per-slot values by the approximation's parameter labels (by identity)."""
        slot_of = {id(slot.param): slot.name for slot in self.state.slots}
        return {
            e.label: per_slot[slot_of[id(e.param)]]
            for e in param_entries(approx)
            if id(e.param) in slot_of
        }

    def hyperparameters_of(self, param: SharedTensor) -> HyperParameters:
        """The hyperparameters that update ``param`` (its group's, or the defaults)."""
        for slot, hyper in zip(self.state.slots, self._slot_hyperparameters, strict=True):
            if slot.param is param:
                return hyper
        raise ValueError(f"this optimizer does not update {param}")

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any]) -> Adadelta:
        """A new optimizer with the hyperparameters and per-group settings of a state dict.

        Raises
        ------
        ValueError
            If a saved hyperparameter is a schedule or symbolic: it cannot be rebuilt from
            its description, so the message says which callable to pass.

        Examples
        --------
        >>> import pymc as pm
        >>> from pymc_adadelta import Adadelta
        >>> with pm.Model():
        ...     x = pm.Normal("x", 0.0, 1.0)
        ...     opt = Adadelta(0.5, groups={"rho": {"rho": 0.9}})
        ...     _ = pm.fit(5, obj_optimizer=opt, progressbar=False)
        >>> Adadelta.from_state_dict(opt.state_dict())
        Adadelta(learning_rate=0.5, rho=0.95, epsilon=1e-06, groups={'rho': {'rho': 0.9}})
        """
        _check_keys(state_dict)
        settings = {"": state_dict["hyperparameters"]}
        settings.update({f" groups[{k!r}]": v for k, v in state_dict.get("groups", {}).items()})
        for where, values in settings.items():
            for name, value in values.items():
                if isinstance(value, str):
                    raise ValueError(
                        f"the saved{where} {name} is {value!r}, which cannot be rebuilt from "
                        f"the file: pass optimizer=Adadelta({name}=<that callable or "
                        f"variable>, ...) with the same settings to continue the fit"
                    )
        groups = {k: _changed(v, state_dict["hyperparameters"])
                  for k, v in state_dict.get("groups", {}).items()}  # fmt: skip
        return cls(**state_dict["hyperparameters"], groups=groups or None)

    def settings_differences(self, state_dict: Mapping[str, Any]) -> list[str]:
        """How this optimizer's settings differ from those a state dict was saved with.

        Compares the kind of every hyperparameter (number or schedule, and the
        schedule's name), constant values, and the per-group settings (their keys and
        values). Shared-variable values are not compared: loading sets them.
        """
        problems = _differences("", state_dict.get("hyperparameters", {}), self.hyperparameters)
        saved_groups = dict(state_dict.get("groups", {}))
        here = {_group_key(k): v for k, v in self._group_hyperparameters.items()}
        if set(saved_groups) != set(here):
            problems.append(f"groups differ: {sorted(saved_groups)} saved vs {sorted(here)} here")
        for key in sorted(set(saved_groups) & set(here)):
            problems += _differences(f"groups[{key!r}] ", saved_groups[key], here[key])
        return problems

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer state as plain Python and NumPy values (no pickle needed).

        Returns
        -------
        dict
            ``format_version``, ``step``, ``hyperparameters`` (numbers, or a description
            for schedules and symbolic values), ``groups``, ``layout`` (parameter names,
            shapes and dtypes) and ``accumulators`` (``{param: {"sq_grad", "sq_delta"}}``).
        """
        state = self.state
        return {
            "format_version": STATE_FORMAT_VERSION,
            "step": state.n_steps,
            "hyperparameters": self.hyperparameters.describe(),
            "groups": {_group_key(k): v.describe() for k, v in self._group_hyperparameters.items()},
            "layout": state.layout(),
            "accumulators": state.accumulators(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore accumulators, step count and shared hyperparameters from `state_dict`.

        Raises
        ------
        ValueError
            If the dict was made for another parameter layout (names, shapes, dtypes),
            by a newer format, or with other constant hyperparameters.
        """
        state = self.state
        _check_keys(state_dict)
        version = state_dict["format_version"]
        if version > STATE_FORMAT_VERSION:
            raise ValueError(
                f"state_dict has format_version {version}; this version of pymc-adadelta "
                f"reads up to {STATE_FORMAT_VERSION}"
            )
        _check_layout(state.layout(), state_dict["layout"])
        _load_hyperparameters(self.hyperparameters, state_dict["hyperparameters"])
        state.load_accumulators(state_dict["accumulators"], int(state_dict["step"]))


def _matches(key: Any, name: str, param: SharedTensor) -> bool:
    return name == key if isinstance(key, str) else param is key


def _group_key(key: Any) -> str:
    return key if isinstance(key, str) else str(key.name)


_REQUIRED_KEYS = ("format_version", "step", "hyperparameters", "layout", "accumulators")


def _check_keys(state_dict: Mapping[str, Any]) -> None:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict is missing {missing}; was it made by Adadelta.state_dict?")


def _check_layout(expected: list[dict[str, Any]], given: list[dict[str, Any]]) -> None:
    def normal(layout: list[dict[str, Any]]) -> list[tuple]:
        return [(d["name"], tuple(int(n) for n in d["shape"]), str(d["dtype"])) for d in layout]

    mine, theirs = normal(expected), normal(given)
    if mine == theirs:
        return
    differences = [
        f"{a or 'nothing'} here vs {b or 'nothing'} in state_dict"
        for a, b in zip_longest(mine, theirs)
        if a != b
    ]
    raise ValueError(
        "state_dict was made for another parameter layout (name, shape, dtype): "
        + "; ".join(differences)
    )


def _load_hyperparameters(hyper: HyperParameters, saved: Mapping[str, Any]) -> None:
    for name, value in hyper._asdict().items():
        stored = saved.get(name)
        if isinstance(value, SharedVariable):
            value.set_value(np.asarray(stored, dtype=value.type.dtype))
        elif isinstance(value, float) and isinstance(stored, int | float) and value != stored:
            raise ValueError(
                f"state_dict was saved with {name}={stored!r}, "
                f"but this optimizer has {name}={value!r}"
            )


def _changed(group: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a saved group that differ from the saved defaults."""
    return {k: v for k, v in group.items() if defaults.get(k) != v}


def _differences(where: str, saved: Mapping[str, Any], here: HyperParameters) -> list[str]:
    problems = []
    for name, current in here._asdict().items():
        stored, shown = saved.get(name), describe_value(current)
        saved_schedule = isinstance(stored, str) and stored.startswith("schedule:")
        here_schedule = isinstance(shown, str) and shown.startswith("schedule:")
        constants_differ = (
            isinstance(current, float) and isinstance(stored, int | float) and stored != current
        )
        if (
            saved_schedule != here_schedule
            or (saved_schedule and stored != shown)
            or (constants_differ)
        ):
            problems.append(f"{where}{name} is {stored!r} saved vs {shown!r} here")
    return problems
