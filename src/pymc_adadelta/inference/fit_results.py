"""The results of several fits of one model: `FitResults`, `ChainsFailed`, R-hat across fits.

`fit(..., chains=k)` (run by `pymc_adadelta.inference.several_fits`) returns a `FitResults`: one
`FitResult` per chain and ArviZ's R-hat and ESS computed over the chains' draws, as if
each fit were one MCMC chain. Fits that found the same optimum give draws from the same
Gaussian, so R-hat is 1 up to the noise of the draws; fits that ended in different
optima, or still far from one, give R-hat > 1. `fit` warns when it exceeds
`RHAT_THRESHOLD` for some variable. When chains fail, `ChainsFailed` carries the ones
that finished.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import BrokenExecutor, CancelledError
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import xarray as xr

from pymc_adadelta.inference.result import FitResult

__all__ = ["RHAT_THRESHOLD", "ChainsFailed", "FitResults", "warn_if_disagreeing"]

#: R-hat above which `fit` warns that the chains disagree.
RHAT_THRESHOLD = 1.01


@dataclass(frozen=True)
class FitResults:
    """What ``fit(..., chains=k)`` returns for ``k > 1``: one `FitResult` per chain.

    Indexing, iteration and ``len`` go over the chains.

    Attributes
    ----------
    chains : tuple of FitResult
        The fits, in chain order; each ``approx`` belongs to the model that was fitted.
    diagnostics : xarray.Dataset
        R-hat and bulk and tail ESS across the chains, per model variable (free
        variables and deterministics, with the model's dims), along the dimension
        ``diagnostic`` = ``["rhat", "ess_bulk", "ess_tail"]``; computed by ArviZ from
        ``DIAGNOSTIC_DRAWS`` draws of every chain's approximation.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import FitResults, fit
    >>> with pm.Model() as model:
    ...     mu = pm.Normal("mu", 1.0, 2.0, shape=2)
    >>> results = fit(300, model=model, chains=2, cores=1, convergence=None,
    ...               progressbar=False, random_seed=1)
    >>> isinstance(results, FitResults), results.stop_reasons
    (True, ('max_steps', 'max_steps'))
    >>> results.diagnostics["mu"].sel(diagnostic="rhat").shape, results.disagreeing()
    ((2,), [])
    """

    chains: tuple[FitResult, ...]
    diagnostics_seed: Any = None

    @cached_property
    def diagnostics(self) -> xr.Dataset:
        """R-hat and bulk/tail ESS across the chains (`pymc_adadelta.output.across_fits`)."""
        from pymc_adadelta.output.across_fits import chain_diagnostics

        return chain_diagnostics(self.chains, random_seed=self.diagnostics_seed)

    def __len__(self) -> int:
        return len(self.chains)

    def __getitem__(self, chain: int) -> FitResult:
        return self.chains[chain]

    def __iter__(self) -> Iterator[FitResult]:
        return iter(self.chains)

    @property
    def converged(self) -> bool:
        """Whether every chain's convergence rule stopped its fit."""
        return all(result.converged for result in self.chains)

    @property
    def stop_reasons(self) -> tuple[str, ...]:
        """Each chain's ``stop_reason``."""
        return tuple(result.stop_reason for result in self.chains)

    def disagreeing(self, threshold: float = RHAT_THRESHOLD) -> list[str]:
        """Names of the variables whose largest R-hat exceeds ``threshold``."""
        rhat = self.diagnostics.sel(diagnostic="rhat")
        return [str(name) for name, value in rhat.data_vars.items() if value.max() > threshold]

    def to_arviz(self, draws: int | None = None, **kwargs: Any) -> Any:
        """Export draws, history and diagnostics: `pymc_adadelta.to_arviz` of this result.

        ``kwargs`` are `to_arviz`'s keywords (``random_seed``, ``log_weights``,
        ``covariance``, ``resample``, ``khat_draws``, ``exact_lp``).
        """
        from pymc_adadelta.output.export import to_arviz

        return to_arviz(self, draws, **kwargs)


class ChainsFailed(RuntimeError):
    """Some chains of ``fit(..., chains=k)`` did not finish; the others are kept.

    Raised when a chain's fit raised an exception, or when its worker process or the
    dask cluster went away before it finished.

    Parameters
    ----------
    completed : mapping of int to FitResult
        The chains that finished, by chain index.
    errors : mapping of int to BaseException
        Why each other chain did not.
    chains : int
        How many chains were asked for.

    Attributes
    ----------
    completed : dict of int to FitResult
    errors : dict of int to BaseException
    chains : int

    Examples
    --------
    >>> from pymc_adadelta import ChainsFailed
    >>> error = ChainsFailed({}, {1: RuntimeError("out of memory")}, chains=2)
    >>> print(error)
    0 of 2 chains completed; chain 1 failed: RuntimeError: out of memory
    >>> error.completed
    {}
    """

    def __init__(
        self,
        completed: Mapping[int, FitResult],
        errors: Mapping[int, BaseException],
        chains: int,
    ):
        self.completed = dict(sorted(completed.items()))
        self.errors = dict(sorted(errors.items()))
        self.chains = chains
        super().__init__(self._message())

    def _message(self) -> str:
        done = f"{len(self.completed)} of {self.chains} chains completed"
        if self.completed:
            done += f" (chains {', '.join(map(str, self.completed))})"
        failures = "; ".join(f"chain {c} {_why(e)}" for c, e in self.errors.items())
        return f"{done}; {failures}"


def _why(error: BaseException) -> str:
    if isinstance(error, CancelledError | BrokenExecutor):
        name = type(error).__name__
        return f"was lost: its worker process or cluster went away ({name})"
    return f"failed: {type(error).__name__}: {error}"


def warn_if_disagreeing(results: FitResults) -> None:
    """Warn, naming the variables, when R-hat across the fits exceeds `RHAT_THRESHOLD`."""
    names = results.disagreeing()
    if not names:
        return
    worst = float(results.diagnostics.sel(diagnostic="rhat")[names].to_array().max())
    warnings.warn(
        f"the {len(results)} fits disagree: R-hat > {RHAT_THRESHOLD} across chains for "
        f"{names} (largest {worst:.3f}). They ended at different answers from their "
        f"dispersed starts: the posterior may be multimodal or not identified, or the "
        f"fits stopped before converging.",
        UserWarning,
        stacklevel=4,  # fit's caller: warn_if_disagreeing < fit_chains < fit
    )
