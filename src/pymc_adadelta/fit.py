"""`fit()`: ``pm.fit`` with the package's callbacks wired together.

Adadelta, accumulator tracking, a divergence guard, a convergence rule and iterate
averaging, returning a `FitResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from pymc.variational.inference import ADVI, ASVGD, SVGD, FullRankADVI, Inference

from pymc_adadelta.callbacks import AccumulatorTracker, Convergence, DivergenceGuard
from pymc_adadelta.optimizer import Adadelta

__all__ = ["FitResult", "fit"]

METHODS = {"advi": ADVI, "fullrank_advi": FullRankADVI, "svgd": SVGD, "asvgd": ASVGD}
#: Every how many steps `fit` records the accumulator summaries.
TRACK_EVERY = 10


@dataclass(frozen=True)
class FitResult:
    """What `fit` returns.

    Attributes
    ----------
    approx : pymc Approximation
        The fitted approximation; holds the averaged parameters when the fit converged
        and averaging was on.
    history : xarray.Dataset
        Loss and accumulator summaries with dimension ``iteration`` (see
        `AccumulatorTracker.history`); ``attrs`` repeat the fields below.
    converged : bool
        Whether the convergence rule stopped the fit.
    stop_reason : str
        ``"converged"``, ``"max_steps"``, ``"non-finite"``, ``"rising-loss"`` or
        ``"interrupted"`` (Ctrl-C).
    n_steps : int
        Steps taken.
    optimizer : Adadelta
        The optimizer, with its state.
    convergence : Convergence or None
        The rule that was used, with its checks.
    last_iterate : dict of str to ndarray
        The parameters before averaging replaced them (empty when nothing was averaged).
    """

    approx: Any
    history: xr.Dataset
    converged: bool
    stop_reason: str
    n_steps: int
    optimizer: Adadelta
    convergence: Convergence | None = None
    last_iterate: dict[str, np.ndarray] = field(default_factory=dict)

    def to_arviz(self, draws: int = 1000, *, random_seed: Any = None) -> Any:
        """Export draws, history and diagnostics with `pymc_adadelta.to_arviz`."""
        from pymc_adadelta.arviz import to_arviz

        return to_arviz(self, draws, random_seed=random_seed)

    def plot(self, **kwargs: Any) -> Any:
        """Plot the optimization history with `pymc_adadelta.plot_history`."""
        from pymc_adadelta.plots import plot_history

        return plot_history(self, **kwargs)


def fit(
    n: int = 50_000,
    *,
    model: Any = None,
    method: str | Inference = "advi",
    optimizer: Adadelta | None = None,
    callbacks: Sequence[Any] | None = None,
    convergence: Any = "auto",
    average: bool = True,
    random_seed: Any = None,
    progressbar: bool = True,
    **pm_fit_kwargs: Any,
) -> FitResult:
    """Fit a variational approximation with Adadelta until it has converged.

    Parameters
    ----------
    n : int, default 50_000
        Most steps to take.
    model : pm.Model, optional
        Defaults to the model on the context stack.
    method : str or Inference, default "advi"
        ``"advi"``, ``"fullrank_advi"``, ``"svgd"``, ``"asvgd"`` or an Inference object.
    optimizer : Adadelta, optional
        Defaults to ``Adadelta()``.
    callbacks : sequence of callables, optional
        More callbacks, called after the package's own.
    convergence : "auto", "rhat", "stan", Convergence or None, default "auto"
        The stopping rule; ``"auto"`` is ``Convergence("rhat")``; None runs all ``n`` steps.
    average : bool, default True
        When the rule converged, replace the last iterate by the average of the
        stationary iterates (`Convergence.average`).
    random_seed : int or Generator, optional
        Seed of the fit.
    progressbar : bool, default True
        Show PyMC's progress bar.
    **pm_fit_kwargs
        Passed to ``Inference.fit`` (``inf_kwargs`` goes to the Inference constructor).

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import fit
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=2)
    ...     result = fit(progressbar=False, random_seed=1)
    >>> result.stop_reason, result.n_steps < 50_000
    ('converged', True)
    """
    _check_n(n)
    optimizer = _check_optimizer(optimizer)
    rule = _convergence_rule(convergence)
    tracker = AccumulatorTracker(optimizer, every=TRACK_EVERY)
    guard = DivergenceGuard(optimizer)
    own = [guard, tracker] + ([rule] if rule is not None else [])
    inference = _inference(method, model, random_seed, pm_fit_kwargs.pop("inf_kwargs", None))
    stop_reason = None
    try:
        inference.fit(n, obj_optimizer=optimizer, callbacks=[*own, *(callbacks or [])],
                      progressbar=progressbar, **pm_fit_kwargs)  # fmt: skip
    except FloatingPointError:  # PyMC's own check of a NaN loss, before callbacks run
        guard.restore()
        stop_reason = "non-finite"
    n_steps = optimizer.state.n_steps
    stop_reason = stop_reason or _stop_reason(rule, guard, n_steps, n)
    last_iterate = _apply_average(inference.approx, rule) if average else {}
    converged = rule is not None and rule.converged
    history = tracker.history if len(tracker) else xr.Dataset()
    history.attrs.update(converged=int(converged), stop_reason=stop_reason, n_steps=n_steps)
    return FitResult(inference.approx, history, converged, stop_reason, n_steps, optimizer,
                     rule, last_iterate)  # fmt: skip


def _check_n(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive number of steps, got {n!r}")


def _check_optimizer(optimizer: Any) -> Adadelta:
    if optimizer is None:
        return Adadelta()
    if not isinstance(optimizer, Adadelta):
        raise TypeError(
            f"optimizer must be a pymc_adadelta.Adadelta (use pm.fit for other optimizers), "
            f"got {type(optimizer).__name__}"
        )
    return optimizer


def _convergence_rule(convergence: Any) -> Convergence | None:
    if convergence is None or convergence is False:
        return None
    if isinstance(convergence, Convergence):
        return convergence
    if convergence == "auto":
        return Convergence("rhat")
    if convergence in ("rhat", "stan"):
        return Convergence(convergence)
    raise ValueError(
        f'convergence must be "auto", "rhat", "stan", a Convergence or None, got {convergence!r}'
    )


def _inference(method: Any, model: Any, random_seed: Any, inf_kwargs: Any) -> Inference:
    if isinstance(method, Inference):
        return method
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} or an Inference, got {method!r}")
    kwargs = dict(inf_kwargs or {})
    if random_seed is not None:
        kwargs["random_seed"] = random_seed
    with pm.modelcontext(model):
        return METHODS[method.lower()](**kwargs)


def _stop_reason(rule: Convergence | None, guard: DivergenceGuard, n_steps: int, n: int) -> str:
    if rule is not None and rule.stop_reason:
        return rule.stop_reason
    if guard.stop_reason:
        return guard.stop_reason
    return "max_steps" if n_steps >= n else "interrupted"


def _apply_average(approx: Any, rule: Convergence | None) -> dict[str, np.ndarray]:
    if rule is None or not rule.average:
        return {}
    last = {}
    for group in approx.groups:
        for name, param in group.params_dict.items():
            last[name] = param.get_value().copy()
            param.set_value(rule.average[name].astype(param.dtype))
    return last
