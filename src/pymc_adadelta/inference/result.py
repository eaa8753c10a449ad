"""`FitResult`: what one fit returns: the approximation, its history and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from pymc_adadelta.approx.warmstart import WarmStart
from pymc_adadelta.callbacks import Convergence
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["FitResult"]


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
        `AccumulatorTracker.history`), including the steps before a resume; ``attrs``
        repeat the fields below.
    converged : bool
        Whether the convergence rule stopped the fit.
    stop_reason : str
        ``"converged"``, ``"max_steps"``, ``"non-finite"``, ``"rising-loss"`` or
        ``"interrupted"`` (Ctrl-C, or a callback of yours stopped the fit);
        ``"max_passes"`` for a minibatch model's full-data fit that used its 20 passes,
        ``"not-positive-definite"`` for one that stopped where its linear-response
        Hessian is not positive definite (not an optimum; both warn).
    n_steps : int
        Steps taken, counting those before a resume (outer steps of a minibatch model's
        full-data fit, whose ``history.attrs["passes"]`` counts the passes).
    optimizer : Adadelta
        The optimizer, with its state.
    convergence : Convergence or None
        The rule that was used, with its checks.
    last_iterate : dict of str to ndarray
        The parameters before averaging replaced them (empty when nothing was averaged).
    resumed_from : int
        The step of the checkpoint the fit resumed from (0 for a fresh fit).
    warm_start : WarmStart or None
        What the warm start did (None when it was off or the fit resumed).
    state : FitState or None
        The fit's state at its last step (parameters before averaging, optimizer state,
        random state, losses, history): ``fit(n, resume=result)`` continues from it,
        bit-identically to a fit that had not stopped.
    affected : tuple of str
        Model variables (unconstrained names) that went non-finite, for
        ``stop_reason="non-finite"``; the fit was restored to its last finite state.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import fit
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     result = fit(300, convergence=None, progressbar=False, random_seed=1)
    >>> result.stop_reason, result.n_steps, result.history.sizes["iteration"]
    ('max_steps', 300, 30)
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     more = fit(500, resume=result, convergence=None, progressbar=False)
    >>> more.n_steps, more.resumed_from
    (500, 300)
    """

    approx: Approximation
    history: xr.Dataset
    converged: bool
    stop_reason: str
    n_steps: int
    optimizer: Adadelta
    convergence: Convergence | None = None
    last_iterate: dict[str, np.ndarray] = field(default_factory=dict)
    resumed_from: int = 0
    warm_start: WarmStart | None = None
    state: FitState | None = None
    affected: tuple[str, ...] = ()

    @property
    def covariance(self) -> xr.DataArray | None:
        """The linear-response covariance of the unconstrained latent vector, or None.

        Dims ``latent`` and ``latent_bis``, labelled by coordinate (``beta[0]``,
        ``sigma_log__``, ...): what `to_arviz` exports by default (see
        `pymc_adadelta.approx.linear_response`). None without a warm start, or where it
        could not be computed (``result.warm_start.covariance_reason`` says why).
        """
        return None if self.warm_start is None else self.warm_start.covariance

    def to_arviz(self, draws: int | None = None, **kwargs: Any) -> Any:
        """Export draws, history and diagnostics: `pymc_adadelta.to_arviz` of this result.

        ``kwargs`` are `to_arviz`'s keywords (``random_seed``, ``log_weights``,
        ``covariance``, ``resample``, ``khat_draws``, ``exact_lp``).
        """
        from pymc_adadelta.output.export import to_arviz

        return to_arviz(self, draws, **kwargs)

    def plot(self, **kwargs: Any) -> Any:
        """Plot the optimization history with `pymc_adadelta.plot_history`."""
        from pymc_adadelta.output.plots import plot_history

        return plot_history(self, **kwargs)
