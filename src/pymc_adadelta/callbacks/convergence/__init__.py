"""`Convergence`: decide when a stochastic VI fit is done, and stop it.

Four rules, one module each, compared in the docs (docs/convergence.md):

- ``"rhat"`` (`~pymc_adadelta.callbacks.convergence.rhat`), after Dhaka et al. 2020:
  split-R̂ over windows of iterates finds a stationary window, whose average's MCSE
  then decides;
- ``"mcse"`` (`~pymc_adadelta.callbacks.convergence.mcse`): for fits that start at the
  optimum (after `fit`'s warm start): average, drop transients, stop on a small MCSE;
- ``"stan"`` (`~pymc_adadelta.callbacks.convergence.stan`): Stan's relative change of
  the mean loss;
- ``"cusum"`` (`~pymc_adadelta.callbacks.convergence.cusum`): a CUSUM on the loss
  decreases (pymc#8384).

The iterate-based rules keep memory bounded whatever the number of steps: a thinned
buffer of at most 64 tracked coordinates and block sums for the average
(`~pymc_adadelta.callbacks.averaging.BlockMeans`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pymc_adadelta._validation import check_positive_int, check_threshold
from pymc_adadelta.callbacks.convergence.cusum import CusumRule
from pymc_adadelta.callbacks.convergence.iterates import RuleSettings
from pymc_adadelta.callbacks.convergence.mcse import McseRule
from pymc_adadelta.callbacks.convergence.rhat import RhatRule
from pymc_adadelta.callbacks.convergence.stan import StanRule

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["RULES", "Convergence"]

#: The rule classes by name.
RULES: dict[str, Any] = {"rhat": RhatRule, "mcse": McseRule, "stan": StanRule, "cusum": CusumRule}


class Convergence:
    """Stop ``pm.fit`` once the fit has converged, by the chosen rule.

    Parameters
    ----------
    rule : {"rhat", "mcse", "stan", "cusum"}, default "rhat"
        See the module documentation.
    check_every : int, default 1000
        Steps between checks.
    min_steps : int, default 2000
        No check before this step.
    thin : int, default 10
        Record one iterate in ``thin`` for the R̂ rule.
    min_window : int, default 2000
        Steps in the shortest candidate window (R̂ of fewer iterates is too noisy); for
        the ``"mcse"`` rule, the step from which iterates are averaged.
    max_coords : int, default 64
        Largest number of parameter coordinates tracked (a seeded random subset beyond).
    rhat_threshold : float, default 1.1
    mcse_threshold : float, default 0.1
    tol_rel_obj : float, default 0.01
        Stan rule tolerance.
    cusum_allowance, cusum_threshold : float, default 0.25, 20.0
        CUSUM allowance (kappa) and decision threshold (h).
    cusum_halflife : int, default 200
        Half-life, in steps, of the CUSUM rule's noise scale.

    Attributes
    ----------
    converged : bool
    stop_reason : str or None
        ``"converged"`` once the rule fired.
    converged_at : int or None
        Step at which the fit was stopped.
    stationary_at : int or None
        Step at which the R̂ rule found the iterates stationary (for ``"mcse"``: the
        step of the check that stopped the fit).
    window_start : int or None
        First step whose iterates are averaged: the start of the window found
        stationary (R̂ rule) or kept after dropping transients (MCSE rule), rounded up
        to the first step recorded after a check.
    average : dict of str to ndarray
        Mean of the iterates recorded (one in ``thin``) from ``window_start`` to the
        stop, per parameter label (``"mu"``, or ``"0/mu"`` with several groups); empty
        until the fit converged.
    checks : list of dict
        What each check measured (R̂, MCSE, drift, relative change, CUSUM statistic).

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import Convergence, adadelta
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=3)
    ...     rule = Convergence(check_every=500, min_steps=1000)
    ...     approx = pm.fit(50_000, obj_optimizer=adadelta(), callbacks=[rule],
    ...                     progressbar=False, random_seed=1)
    >>> rule.converged
    True
    """

    def __init__(
        self,
        rule: str = "rhat",
        *,
        check_every: int = 1000,
        min_steps: int = 2000,
        thin: int = 10,
        min_window: int = 2000,
        max_coords: int = 64,
        rhat_threshold: float = 1.1,
        mcse_threshold: float = 0.1,
        tol_rel_obj: float = 0.01,
        cusum_allowance: float = 0.25,
        cusum_threshold: float = 20.0,
        cusum_halflife: int = 200,
    ):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {tuple(RULES)}, got {rule!r}")
        counts = {"check_every": check_every, "min_steps": min_steps, "thin": thin,
                  "min_window": min_window, "max_coords": max_coords,
                  "cusum_halflife": cusum_halflife}  # fmt: skip
        for name, value in counts.items():
            check_positive_int(name, value)
        if check_every < 10 * thin:
            raise ValueError(f"check_every ({check_every}) must be at least 10 * thin ({thin})")
        check_threshold("rhat_threshold", rhat_threshold, above=1.0)
        thresholds = {
            "mcse_threshold": mcse_threshold,
            "tol_rel_obj": tol_rel_obj,
            "cusum_allowance": cusum_allowance,
            "cusum_threshold": cusum_threshold,
        }
        for threshold_name, threshold in thresholds.items():
            check_threshold(threshold_name, threshold, above=0.0)
        self.rule = rule
        self.settings = RuleSettings(
            int(check_every), int(min_steps), int(thin), int(min_window), int(max_coords),
            float(rhat_threshold), float(mcse_threshold), float(tol_rel_obj),
            float(cusum_allowance), float(cusum_threshold), int(cusum_halflife),
        )  # fmt: skip
        self.converged = False
        self.stop_reason: str | None = None
        self.converged_at: int | None = None
        self.average: dict[str, np.ndarray] = {}
        self.checks: list[dict[str, float]] = []
        self._rule: Callable[[Any, np.ndarray | None, int], bool] = RULES[rule](
            self.settings, self.checks
        )

    def __getattr__(self, name: str) -> Any:
        # The settings read as attributes (rule.check_every, rule.thin, ...).
        settings = self.__dict__.get("settings")
        if settings is not None and name in RuleSettings._fields:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def stationary_at(self) -> int | None:
        """Step at which the rule found the iterates stationary (None for loss rules)."""
        return getattr(self._rule, "stationary_at", None)

    @property
    def window_start(self) -> int | None:
        """First step whose iterates are averaged (None for loss rules)."""
        return getattr(self._rule, "window_start", None)

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """Record step ``i`` and, on check steps, stop the fit when converged."""
        if not self._rule(approx, losses, i):
            return
        self.converged = True
        self.stop_reason = "converged"
        self.converged_at = i
        iterates = getattr(self._rule, "iterates", None)
        if iterates is not None:
            self.average = iterates.average()
        # Plain pm.fit logs this message, then "Interrupted at <step - 1> [<percent>%]":
        # say first that the rule stopped the fit, and that it was not an error.
        raise StopIteration(
            f'Converged at step {i:,d}: Convergence("{self.rule}") stopped the fit as '
            f'intended (PyMC\'s next line calls this early stop "Interrupted")'
        )

    def detached(self) -> Convergence:
        """A copy holding the results only (no iterates, no approximation).

        What a worker of ``fit(chains=k)`` sends back.
        """
        copy = Convergence.__new__(Convergence)
        copy.__dict__.update(self.__dict__)
        copy._rule = _Finished(self.stationary_at, self.window_start)
        return copy


class _Finished:
    """What a detached rule keeps: when it was stationary and what it averaged."""

    def __init__(self, stationary_at: int | None, window_start: int | None):
        self.stationary_at = stationary_at
        self.window_start = window_start

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> bool:
        raise RuntimeError("a detached Convergence only reports a finished fit")
