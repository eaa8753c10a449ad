"""`fit()`: Adadelta with the package's callbacks wired together, resumable.

Adadelta, accumulator tracking, a divergence guard, a convergence rule, iterate averaging,
checkpoints and a progress display, returning a `FitResult`. `fit` compiles PyMC's step
function itself and runs the steps, so that it can resume a fit from a checkpoint (the
step numbers, losses and random state carry on), turn Ctrl-C into a clean stop after the
step under way, and show its own progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymc.variational.inference import Inference

from pymc_adadelta._validation import (
    check_bool,
    check_callbacks,
    check_positive_int,
    check_random_seed,
    check_writable_file,
)
from pymc_adadelta.callbacks.base import Callback
from pymc_adadelta.inference.options import check_backend, check_optimizer, split_pm_fit_kwargs
from pymc_adadelta.inference.several_fits import check_parallel_arguments, fit_chains
from pymc_adadelta.inference.single_fit import FitOptions, fit_single
from pymc_adadelta.optim import Adadelta

if TYPE_CHECKING:
    from pymc import Model

    from pymc_adadelta.inference.fit_results import FitResults
    from pymc_adadelta.inference.result import FitResult

__all__ = ["fit"]


def fit(
    n: int = 50_000,
    *,
    model: Model | None = None,
    method: str | Inference = "advi",
    optimizer: Adadelta | None = None,
    callbacks: Sequence[Callback] | None = None,
    convergence: Any = "auto",
    average: bool = True,
    warm_start: bool = True,
    random_seed: Any = None,
    progressbar: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1000,
    resume: str | os.PathLike[str] | bool | None = None,
    backend: str | None = None,
    chains: int = 1,
    cores: int | None = None,
    client: Any = None,
    **pm_fit_kwargs: Any,
) -> FitResult | FitResults:
    """Fit a variational approximation with Adadelta until it has converged.

    Parameters
    ----------
    n : int, default 50_000
        Most steps to take, counting those before a resume. A minibatch model with the
        default options takes the full-data fit instead (`pymc_adadelta.inference.minibatch`),
        which stops by itself or after 20 passes over the data (``"max_passes"``); ``n``
        does not apply there, and ``n_steps`` counts its outer steps.
    model : pm.Model, optional
        Defaults to the model on the context stack.
    method : str or Inference, default "advi"
        ``"advi"``, ``"fullrank_advi"``, ``"svgd"``, ``"asvgd"`` or an Inference object.
    optimizer : Adadelta, optional
        Defaults to ``Adadelta()``, or ``Adadelta(learning_rate=WARM_LEARNING_RATE)``
        after a warm start.
    callbacks : sequence of callables, optional
        More callbacks, called after the package's own and before the checkpoint.
    convergence : "auto", "rhat", "mcse", "stan", "cusum", Convergence or None, default "auto"
        The stopping rule. ``"auto"`` is ``Convergence("mcse")`` after a warm start or
        on resume, and ``Convergence("rhat")`` otherwise; None runs all ``n`` steps.
    average : bool, default True
        When the rule converged, replace the last iterate by the average of the
        stationary iterates (`Convergence.average`).
    warm_start : bool, default True
        Before the stochastic steps, move a Gaussian approximation to the optimum of
        the ELBO over fixed draws (`pymc_adadelta.approx.warmstart.warm_start`). Skipped for
        particle approximations, minibatch models and resumed fits, and when it fails.
    random_seed : int or Generator, optional
        Seed of the fit.
    progressbar : bool, default True
        Show a progress bar: step, smoothed loss, steps per second, convergence status.
    checkpoint : str or os.PathLike, optional
        Save the fit to this npz file every ``checkpoint_every`` steps and when it stops
        (see `Checkpoint`).
    checkpoint_every : int, default 1000
        Steps between checkpoints.
    resume : str, os.PathLike, bool or FitResult, optional
        Continue the fit saved in this checkpoint, or the `FitResult` of an earlier
        call (in memory): its parameters (the last iterate, not the average), optimizer
        state and settings, random state and history, for the remaining ``n - step``
        steps, bit-identically to a fit that had not stopped. True resumes from
        ``checkpoint`` if that file exists and starts afresh otherwise. The optimizer's
        settings (constants, schedules, groups) must match the saved ones.
    backend : {"c", "numba", "jax"}, optional
        pytensor backend of the step function (``compile_kwargs["mode"]``); defaults
        to pytensor's default mode.
    chains : int, default 1
        Independent fits, each from its own dispersed start (the means jittered by
        ``Uniform(-2, 2)`` on the unconstrained scale before the warm start) and with
        its own seed (``np.random.SeedSequence(random_seed).spawn``). More than one
        returns a `FitResults` with R-hat and ESS across the fits, and warns when they
        disagree; see `pymc_adadelta.inference.several_fits` and the docs page "Several fits".
        Checkpoints, resuming and the progress bar are for ``chains=1``; your
        callbacks run in the workers, on copies.
    cores : int, optional
        Worker processes for ``chains > 1`` (``forkserver`` start method, the model
        shipped with cloudpickle, as ``pm.sample`` does); defaults to
        ``min(chains, os.cpu_count())``; 1 runs the chains one after another in this
        process.
    client : dask.distributed.Client, optional
        Run the chains (``chains > 1``) on this dask cluster instead of local processes.
    **pm_fit_kwargs
        ``score`` as in ``Inference.fit``, ``inf_kwargs`` for the Inference constructor,
        ``start`` and ``start_sigma`` as ``pm.fit`` takes them, and the step function's
        arguments (``obj_n_mc``, ``total_grad_norm_constraint``, ``compile_kwargs``,
        ...). ``obj_optimizer`` is refused: pass ``optimizer=Adadelta(...)``.

    Returns
    -------
    FitResult or FitResults
        A `FitResult`; a `FitResults` when ``chains > 1``.

    Raises
    ------
    ValueError, TypeError
        For a bad argument, before any work starts; the message names it.
    ImportError
        For ``backend="jax"`` or ``"numba"`` without its library, before any work
        starts; the message names the extra to install.
    ChainsFailed
        When some of several chains failed or their workers went away; the finished
        ones are in its ``completed``.

    Notes
    -----
    Ctrl-C stops the fit after the step under way, writes the checkpoint and returns the
    result with ``stop_reason="interrupted"``; a second Ctrl-C stops at once (the last
    checkpoint stays as it was). Ctrl-C while the step function compiles raises
    ``KeyboardInterrupt`` as usual. On resume the convergence rule and your callbacks
    start afresh; the tracker's history and the losses carry on.

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
    # Every argument is checked here, before any warm start, compile or worker.
    check_positive_int("n", n, "number of steps")
    check_random_seed(random_seed)
    for name, flag in (("average", average), ("warm_start", warm_start),
                       ("progressbar", progressbar)):  # fmt: skip
        check_bool(name, flag)  # "no" is truthy: taken as a flag it would do the opposite
    check_positive_int("checkpoint_every", checkpoint_every)
    check_optimizer(optimizer)
    check_backend(backend)
    callbacks = check_callbacks(callbacks)
    inf_kwargs, step_kwargs = split_pm_fit_kwargs(method, pm_fit_kwargs)
    if checkpoint is not None:
        check_writable_file(checkpoint, "checkpoint")
    check_parallel_arguments(chains, cores, client)
    options = FitOptions(
        n=n, model=model, method=method, optimizer=optimizer, callbacks=callbacks,
        convergence=convergence, average=average, warm_start=warm_start,
        random_seed=random_seed, progressbar=progressbar, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, resume=resume, backend=backend,
        inf_kwargs=inf_kwargs, step_kwargs=step_kwargs,
    )  # fmt: skip
    if chains > 1:
        return fit_chains(options, chains, cores=cores, client=client)
    return fit_single(options)
