"""`Convergence`: decide when a stochastic VI fit is done, and stop it.

Two rules, compared in the docs:

``"rhat"`` (default), after Dhaka et al. 2020 ("Robust, accurate stochastic optimization
for variational inference"): treat the iterates of the variational parameters as a
Markov chain. Every ``check_every`` steps, for candidate windows of the last W iterates,
compute the split-R̂ of each tracked coordinate with ArviZ; the fit is *stationary* when
the best window's largest R̂ is below ``rhat_threshold``. From then on the recorded
iterates are averaged (`Convergence.average`), and the fit stops when the Monte Carlo
standard error of the mean over the stationary window (batch means) is below
``mcse_threshold`` on every tracked coordinate; as in Dhaka et al., the MCSE of a
location parameter (``mu``) is measured in units of the approximation's standard
deviation of that coordinate, the others in their own units.

``"mcse"``, for fits that start at (or near) the optimum, as `fit` does after its warm
start: the iterates are averaged from ``min_window`` steps on (Adadelta's accumulators
settle in the first few hundred steps), with no R̂ gate: from the optimum the iterates
wander slowly, so split-R̂ over short windows stays above 1.1 even though nothing
drifts (measured: 1.2-3 over 30,000 steps on a linear and a logistic regression). Every
``check_every`` steps the means of the window's two halves are compared; when they differ
by more than ``2 * mcse_threshold`` (in the units above) the first half is dropped, as a
transient. The fit stops when the halves agree and the MCSE of the window's mean is below
``mcse_threshold``.

``"cusum"``, after the ``CheckLossConvergence`` proposed for PyMC (pymc#8384): a
one-sided CUSUM (Page 1954) on the standardized per-step improvement of the loss,
``S = max(0, S + allowance - z)``, where ``z`` is the loss decrease divided by a robust
noise scale (exponentially weighted successive differences of the decreases, half-life
``cusum_halflife``) and clipped to [-4, 4]; armed from ``min_steps``, it stops once
``S > cusum_threshold``. Like Stan's rule it reads only the loss.

``"stan"``, as Stan's ADVI: every ``check_every`` steps take the mean loss of the last
block; the relative change against the previous block goes into a circular buffer, and
the fit stops when the buffer's mean or median is below ``tol_rel_obj``. It reads only
the loss, so it stops early on noisy ELBOs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from pymc_adadelta.approx.draws import group_sd

__all__ = ["Convergence"]

_RULES = ("rhat", "mcse", "stan", "cusum")


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
        First step of the window found stationary, whose iterates are averaged.
    average : dict of str to ndarray
        Mean of the iterates recorded (one in ``thin``) from ``stationary_at`` to the stop,
        per parameter name; empty until the fit converged.

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
        if rule not in _RULES:
            raise ValueError(f"rule must be one of {_RULES}, got {rule!r}")
        counts = {"check_every": check_every, "min_steps": min_steps, "thin": thin,
                  "min_window": min_window, "max_coords": max_coords,
                  "cusum_halflife": cusum_halflife}  # fmt: skip
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if check_every < 10 * thin:
            raise ValueError(f"check_every ({check_every}) must be at least 10 * thin ({thin})")
        limits = {"rhat_threshold": (rhat_threshold, 1.0), "mcse_threshold": (mcse_threshold, 0.0),
                  "tol_rel_obj": (tol_rel_obj, 0.0), "cusum_allowance": (cusum_allowance, 0.0),
                  "cusum_threshold": (cusum_threshold, 0.0)}  # fmt: skip
        for name, (threshold, above) in limits.items():
            if not threshold > above:
                raise ValueError(f"{name} must be > {above}, got {threshold!r}")
        self.rule = rule
        self.check_every = check_every
        self.min_steps = min_steps
        self.thin = thin
        self.min_window = min_window
        self.max_coords = max_coords
        self.rhat_threshold = rhat_threshold
        self.mcse_threshold = mcse_threshold
        self.tol_rel_obj = tol_rel_obj
        self.cusum_allowance = cusum_allowance
        self.cusum_threshold = cusum_threshold
        self._cusum = _Cusum(1.0 - 0.5 ** (1.0 / cusum_halflife))
        self.converged = False
        self.stop_reason: str | None = None
        self.converged_at: int | None = None
        self.stationary_at: int | None = None
        self.window_start: int | None = None
        self.average: dict[str, np.ndarray] = {}
        self.checks: list[dict[str, float]] = []
        self._params: list[tuple[str, Any]] = []
        self._groups: list[Any] = []
        self._location: np.ndarray | None = None  # per tracked coord: latent index, or -1
        self._coords: np.ndarray | None = None
        self._iterates: list[np.ndarray] = []
        self._steps: list[int] = []
        self._full: list[list[np.ndarray]] = []
        self._rel_changes: list[float] = []
        self._previous_block: float | None = None

    def __call__(self, approx: Any, losses: np.ndarray | None, i: int) -> None:
        """Record step ``i`` and, on check steps, stop the fit when converged."""
        if self._done(approx, losses, i):
            self.converged = True
            self.stop_reason = "converged"
            self.converged_at = i
            raise StopIteration(f"Convergence ({self.rule}) reached at step {i}")

    def _done(self, approx: Any, losses: np.ndarray | None, i: int) -> bool:
        if self.rule == "cusum":  # reads every step's loss
            return self._check_cusum(losses, i)
        if self.rule != "stan" and i % self.thin == 0:
            self._record(approx, i)
        if i < self.min_steps or i % self.check_every:
            return False
        if self.rule == "stan":
            return self._check_stan(losses, i)
        return self._check_rhat(i) if self.rule == "rhat" else self._check_mcse(i)

    # -- the R-hat rule -------------------------------------------------------------
    def _record(self, approx: Any, i: int) -> None:
        if self.rule == "mcse" and i < self.min_window:
            return
        if not self._params:
            self._start(approx)
        values = [p.get_value(borrow=True).reshape(-1) for _, p in self._params]
        flat = np.concatenate(values)
        self._iterates.append(flat[self._coords])
        self._steps.append(i)
        if self.stationary_at is not None or self.rule == "mcse":
            self._full.append([v.copy() for v in values])

    def _start(self, approx: Any) -> None:
        self._groups = list(approx.groups)
        self._params = [(n, p) for g in self._groups for n, p in g.params_dict.items()]
        location, latent_offset = [], 0
        for group in self._groups:
            for name, param in group.params_dict.items():
                size = param.get_value(borrow=True).size
                is_mean = name == "mu"
                location.append(np.arange(size) + latent_offset if is_mean else np.full(size, -1))
            latent_offset += group.ddim
        rng = np.random.default_rng(0)
        total = sum(len(loc) for loc in location)
        self._coords = (
            np.sort(rng.choice(total, self.max_coords, replace=False))
            if total > self.max_coords
            else np.arange(total)
        )
        self._location = np.concatenate(location)[self._coords]

    def _scales(self) -> np.ndarray:
        """Per tracked coordinate: the approximation's sd for means, 1 otherwise."""
        assert self._location is not None
        std = np.concatenate([group_sd(g) for g in self._groups])
        return np.where(self._location >= 0, std[np.maximum(self._location, 0)], 1.0)

    def _check_rhat(self, i: int) -> bool:
        draws = np.asarray(self._iterates)
        if self.stationary_at is None:
            start = self._stationary_window(draws)
            if start is not None:
                self.stationary_at = i
                self.window_start = self._steps[start]
                self._iterates = self._iterates[start:]
                self._steps = self._steps[start:]
                self._full = []
            return False
        whole = len(draws) // 2 * 2
        if _max_rhat(draws, np.array([whole]))[0] > self.rhat_threshold:
            # The window drifted after all: look for a stationary window again.
            self.stationary_at = self.window_start = None
            return False
        relative = float(np.max(_batch_means_mcse(draws) / self._scales()))
        self.checks.append({"step": i, "max_relative_mcse": relative})
        if relative > self.mcse_threshold or not self._full:
            return False
        self._set_average()
        return True

    def _set_average(self) -> None:
        means = np.mean([np.concatenate(f) for f in self._full], axis=0)
        offsets = np.cumsum([0] + [p.get_value(borrow=True).size for _, p in self._params])
        self.average = {
            name: means[a:b].reshape(p.get_value(borrow=True).shape)
            for (name, p), a, b in zip(self._params, offsets[:-1], offsets[1:], strict=True)
        }

    # -- the MCSE rule (from the optimum) ----------------------------------------------
    def _check_mcse(self, i: int) -> bool:
        draws = np.asarray(self._iterates)
        if len(draws) < 20:
            return False
        scales = self._scales()
        half = len(draws) // 2
        drift = float(np.max(np.abs(draws[:half].mean(0) - draws[half:].mean(0)) / scales))
        relative = float(np.max(_batch_means_mcse(draws) / scales))
        self.checks.append({"step": i, "halves_drift": drift, "max_relative_mcse": relative})
        if drift > 2 * self.mcse_threshold:  # still moving: the first half was a transient
            self._iterates, self._steps = self._iterates[half:], self._steps[half:]
            self._full = self._full[half:]
            return False
        if relative > self.mcse_threshold:
            return False
        self.stationary_at, self.window_start = i, self._steps[0]
        self._set_average()
        return True

    def _stationary_window(self, draws: np.ndarray) -> int | None:
        """Index of the first draw of the best stationary window, or None."""
        n = len(draws)
        smallest = max(self.min_window // self.thin, 20)
        sizes = np.unique(np.linspace(smallest, 0.95 * n, 5).astype(int) // 2 * 2)
        sizes = sizes[(sizes >= 20) & (sizes <= n)]
        if not len(sizes):
            return None
        worst = _max_rhat(draws, sizes)
        best = int(np.argmin(worst))
        self.checks.append({"step": self._steps[-1], "best_window_rhat": float(worst[best])})
        return n - int(sizes[best]) if worst[best] <= self.rhat_threshold else None

    # -- Stan's rule ------------------------------------------------------------------
    def _check_stan(self, losses: np.ndarray | None, i: int) -> bool:
        if losses is None or len(losses) < self.check_every:
            return False
        block = float(np.mean(losses[-self.check_every :]))
        previous, self._previous_block = self._previous_block, block
        if previous is None:
            return False
        self._rel_changes.append(abs((previous - block) / block))
        buffer = self._rel_changes[-10:]
        self.checks.append({"step": i, "rel_change": self._rel_changes[-1]})
        return len(buffer) >= 2 and bool(
            np.mean(buffer) < self.tol_rel_obj or np.median(buffer) < self.tol_rel_obj
        )

    # -- the CUSUM rule ---------------------------------------------------------------
    def _check_cusum(self, losses: np.ndarray | None, i: int) -> bool:
        if losses is None or len(losses) < 2:
            return False
        statistic = self._cusum.update(float(losses[-2] - losses[-1]), self.cusum_allowance,
                                       armed=i >= self.min_steps)  # fmt: skip
        if i % self.check_every == 0:
            self.checks.append({"step": i, "cusum": statistic})
        return statistic > self.cusum_threshold


class _Cusum:
    """One-sided CUSUM of standardized loss decreases, with a robust running scale."""

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.mean_sq_diff: float | None = None  # EW mean of (d_t - d_{t-1})^2
        self.previous: float | None = None
        self.statistic = 0.0

    def update(self, decrease: float, allowance: float, *, armed: bool) -> float:
        """Take the loss decrease of one step and return the CUSUM statistic."""
        if decrease != decrease or abs(decrease) == float("inf"):
            return self.statistic  # non-finite losses carry no evidence
        previous, self.previous = self.previous, decrease
        if previous is None:
            return self.statistic
        sq_diff = (decrease - previous) ** 2
        mean = self.mean_sq_diff
        if mean is not None:  # one spike must not inflate the scale for thousands of steps
            sq_diff = min(sq_diff, 100.0 * mean)
        self.mean_sq_diff = sq_diff if mean is None else mean + self.alpha * (sq_diff - mean)
        # Successive differences of an MA(1)-like series: E[(d_t - d_{t-1})^2] = 3 var(d)
        # for i.i.d. losses; a trend in d cancels out, so a fast-falling loss cannot
        # inflate the scale.
        scale = (self.mean_sq_diff / 3.0) ** 0.5
        if armed and scale > 0:
            z = min(max(decrease / scale, -4.0), 4.0)
            self.statistic = max(0.0, self.statistic + allowance - z)
        return self.statistic


def _max_rhat(draws: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Largest split-R̂ over coordinates of each window of the last ``sizes`` draws.

    Every window is thinned to the smallest one's length so that one ArviZ call does all;
    each window is cut in two "chains", which split-R̂ halves again.
    """
    n, length = len(draws), int(sizes[0])
    windows = np.stack(
        [draws[np.linspace(n - size, n - 1, length).astype(int)] for size in sizes]
    ).reshape(len(sizes), 2, length // 2, -1)
    data = xr.DataArray(windows, dims=("window", "chain", "draw", "coord"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        rhat = az.rhat(xr.Dataset({"iterates": data}), method="split")["iterates"]
    return rhat.max("coord").values


def _batch_means_mcse(draws: np.ndarray, n_batches: int = 10) -> np.ndarray:
    """Monte Carlo standard error of each column's mean, by non-overlapping batch means."""
    usable = len(draws) // n_batches * n_batches
    batches = draws[-usable:].reshape(n_batches, -1, draws.shape[1]).mean(axis=1)
    return batches.std(axis=0, ddof=1) / np.sqrt(n_batches)
