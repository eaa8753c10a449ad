"""Several independent fits of one model, in parallel: `fit(..., chains=k)`.

Each chain is a whole `fit` started from its own dispersed point: the means of the
approximation are jittered by ``Uniform(-JITTER, JITTER)`` on the unconstrained scale
around the model's initial point, before the warm start, with a generator seeded per
chain (children of ``np.random.SeedSequence(random_seed)``). That is Stan's default
initialization range; ``pm.sample`` jitters by ±1. A scale parameter then starts
anywhere between e^-2 and e^2 times its initial value, and a location parameter up to 2
units away, more than the posterior sd of most parameters, so that runs which end at the
same answer did not just stay where they started, and runs on a multimodal posterior
can find different modes. `pymc_adadelta.output.across_fits` compares them.

The chains run in worker processes, as ``pm.sample(cores=...)`` does: a
``concurrent.futures.ProcessPoolExecutor`` with the ``forkserver`` start method
(``spawn`` where that is missing), the model and the fit's arguments (one `FitOptions`)
shipped once with cloudpickle. With a ``dask.distributed.Client`` they go to that cluster
instead, through the client's ``concurrent.futures`` executor. ``cores=1`` runs them one
after another in this process. What comes back from a worker is plain data
(`ChainRun`): the variational parameters, losses, history, stop reason, optimizer state;
the parent sets those parameters into a fresh approximation of the same method on its
own model, so every chain's `FitResult` belongs to the model you passed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import fields, replace
from typing import Any, NamedTuple

import cloudpickle
import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymc_adadelta._validation import is_positive_int
from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.callbacks import Convergence
from pymc_adadelta.inference import chain_control
from pymc_adadelta.inference.fit_results import ChainsFailed, FitResults, warn_if_disagreeing
from pymc_adadelta.inference.loop import deferred_interrupt
from pymc_adadelta.inference.options import new_inference
from pymc_adadelta.inference.result import FitResult
from pymc_adadelta.inference.single_fit import FitOptions, fit_single
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState, restore_state

__all__ = ["JITTER", "ChainRun", "check_parallel_arguments", "fit_chains", "jitter_means",
           "run_chain"]  # fmt: skip

#: Half-width of the uniform jitter added to the initial means (unconstrained scale).
JITTER = 2.0
#: Fields of a chain's `FitResult` that the parent rebuilds rather than receives.
_REBUILT = ("approx", "optimizer", "convergence")


class ChainRun(NamedTuple):
    """What a worker sends back for one chain: plain data, no approximation.

    Attributes
    ----------
    chain : int
        The chain's index.
    state : FitState
        The chain's fit state at its last step (`pymc_adadelta.persist.fit_state`).
    params : dict of str to ndarray
        The parameters its approximation ended with (the average, when one was
        applied), by key ``"<group>/<name>"``.
    outcome : dict
        The other fields of the worker's `FitResult` (history, stop reason, steps, ...).
    convergence : Convergence or None
        The rule, detached from the worker's approximation (`Convergence.detached`).
    """

    chain: int
    state: FitState
    params: dict[str, np.ndarray]
    outcome: dict[str, Any]
    convergence: Convergence | None


def check_parallel_arguments(chains: Any, cores: Any, client: Any) -> None:
    """Raise unless ``chains`` and ``cores`` are positive integers and ``client`` a dask Client.

    ``cores`` may be None and ``client`` may be None.
    """
    if not is_positive_int(chains):
        raise ValueError(f"chains must be a positive integer, got {chains!r}")
    if cores is not None and not is_positive_int(cores):
        raise ValueError(f"cores must be a positive integer or None, got {cores!r}")
    if client is not None and not _is_dask_client(client):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")


def _is_dask_client(client: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:  # then it cannot be one
        return False
    return isinstance(client, Client)


def fit_chains(options: FitOptions, chains: int, *, cores: int | None, client: Any) -> FitResults:
    """Run ``chains`` fits of ``options`` from dispersed starts and gather them; see `fit`.

    Each chain runs `fit_single` on a copy of ``options`` with its own seed and start.
    Raises `ChainsFailed` when a chain fails, after the others have finished. Ctrl-C
    stops every chain after its current step and returns the chains that started, with
    ``stop_reason="interrupted"`` for the ones it stopped; chains that had not started
    then do not start.
    """
    _check_single_fit_only(options.method, options.checkpoint, options.resume)
    spec = replace(options, model=pm.modelcontext(options.model))  # shipped to the workers
    seeds = _seed_sequence(options.random_seed).spawn(chains + 1)
    # Ctrl-C until the result is built is a request to stop, never a lost result.
    with deferred_interrupt() as interrupted:
        runs, errors = _execute(cloudpickle.dumps(spec), seeds[:chains], cores, client)
        rebuilt = {c: _rebuild(spec, run) for c, run in runs.items()}
        if errors:
            raise ChainsFailed(rebuilt, errors, chains) from errors[min(errors)]
        if len(rebuilt) < chains and not rebuilt:  # stopped before any chain started
            raise KeyboardInterrupt
        results = FitResults(tuple(rebuilt[c] for c in sorted(rebuilt)), seeds[-1])
        if not interrupted():  # stopped fits disagree, and saying so would cost draws
            warn_if_disagreeing(results)
    return results


def _check_single_fit_only(method: Any, checkpoint: Any, resume: Any) -> None:
    if not isinstance(method, str):
        raise ValueError(
            f"method must be a method name when chains > 1 (each chain builds its own "
            f"Inference), got {type(method).__name__}"
        )
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and value is not False:
            raise ValueError(f"{name} works with chains=1 only, got {name}={value!r}")


def _seed_sequence(random_seed: Any) -> np.random.SeedSequence:
    """The seed sequence whose children seed the chains (`np.random.SeedSequence.spawn`)."""
    if isinstance(random_seed, np.random.SeedSequence):
        return random_seed
    if isinstance(random_seed, np.random.Generator):
        return np.random.SeedSequence(int(random_seed.integers(2**63)))
    return np.random.SeedSequence(random_seed)


def _execute(
    payload: bytes, seeds: Sequence[np.random.SeedSequence], cores: int | None, client: Any
) -> tuple[dict[int, ChainRun], dict[int, BaseException]]:
    """Run every chain on the chosen executor; return the runs and the failures by chain."""
    workers = min(len(seeds), cores or os.cpu_count() or 1)
    # Worker processes share this machine's cores, as pm.sample's blas_cores="auto" does;
    # dask sets its workers' own limits, and cores=1 leaves this process's alone.
    local = client is None and workers > 1
    blas_threads = max(1, (os.cpu_count() or 1) // workers) if local else None
    if local:
        chain_control.check_main_guard()
    context = _process_context() if local else None
    flag = chain_control.new_flag(context)
    previous = chain_control.set_flag(flag)  # read by chains run in this process
    stop = functools.partial(setattr, flag, "value", 1)
    try:
        with deferred_interrupt(stop) as interrupted, _executor(workers, client, flag) as pool:
            futures: dict[Future[Any], int] = {}
            for chain, seed in enumerate(seeds):
                if interrupted():  # cores=1: the chains after a Ctrl-C do not start
                    break
                futures[pool.submit(run_chain, payload, chain, seed, blas_threads)] = chain
            return _gather(futures, interrupted)
    finally:
        chain_control.set_flag(previous)


@contextlib.contextmanager
def _executor(workers: int, client: Any, flag: Any) -> Iterator[Executor]:
    """The dask client's executor, a process pool, or this process for one worker."""
    if client is not None:
        yield client.get_executor(pure=False)
        return
    if workers == 1:
        yield _InProcess()
        return
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_process_context(),
        initializer=chain_control.init_worker,
        initargs=(flag,),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _process_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (``spawn`` where missing), warmed up by its worker_init module."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Done once by the server rather than by every worker; no effect once it runs.
    context.set_forkserver_preload(["pymc_adadelta.inference.worker_init"])
    return context


class _InProcess(Executor):
    """Runs each call at once in this process: the chains of ``cores=1``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


def _gather(
    futures: Mapping[Future[Any], int], interrupted: Callable[[], bool]
) -> tuple[dict[int, ChainRun], dict[int, BaseException]]:
    """Wait for the chains; after Ctrl-C, cancel those not started and keep the others."""
    runs: dict[int, ChainRun] = {}
    errors: dict[int, BaseException] = {}
    pending, cancelled = set(futures), False
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        for future in done:
            chain = futures[future]
            try:
                runs[chain] = future.result()
            except (CancelledError, chain_control.ChainNotStarted) as error:
                if not interrupted():
                    errors[chain] = error
            except Exception as error:  # the chain's own error, or its worker's end
                errors[chain] = error
        if interrupted() and not cancelled:
            cancelled = True
            for future in pending:
                future.cancel()  # those not running yet
    return runs, errors


def run_chain(
    payload: bytes, chain: int, seed: np.random.SeedSequence, blas_threads: int | None = None
) -> ChainRun:
    """Fit one chain in a worker: jitter the start, run `fit`, return plain data.

    Parameters
    ----------
    payload : bytes
        The cloudpickled `FitOptions`, holding the model.
    chain : int
        The chain's index.
    seed : numpy.random.SeedSequence
        The chain's seed: one child for the jitter, one for the fit.
    blas_threads : int, optional
        Most BLAS threads of this worker (None: no limit).
    """
    from threadpoolctl import threadpool_limits

    if chain_control.stop_requested():
        raise chain_control.ChainNotStarted(chain)
    spec: FitOptions = cloudpickle.loads(payload)
    jitter_seed, fit_seed = seed.spawn(2)
    fit_int_seed = int(fit_seed.generate_state(1)[0])
    inference = new_inference(spec.method, spec.model, fit_int_seed, spec.inf_kwargs)
    jitter_means(inference.approx, np.random.default_rng(jitter_seed))
    options = replace(spec, model=None, method=inference, inf_kwargs={}, random_seed=fit_int_seed,
                      callbacks=[chain_control.StopWhenAsked(), *spec.callbacks],
                      progressbar=False, checkpoint=None, resume=None)  # fmt: skip
    with threadpool_limits(limits=blas_threads):
        result = fit_single(options)
    return _chain_run(chain, result)


def jitter_means(approx: Any, rng: np.random.Generator, width: float = JITTER) -> None:
    """Add ``Uniform(-width, width)`` noise to the means of every Gaussian group."""
    for group in approx.groups:
        mu = group.params_dict.get("mu")
        if mu is not None:
            value = mu.get_value()
            mu.set_value((value + rng.uniform(-width, width, value.shape)).astype(value.dtype))


def _chain_run(chain: int, result: FitResult) -> ChainRun:
    assert result.state is not None
    params = {e.key: np.array(e.param.get_value()) for e in param_entries(result.approx)}
    outcome = {f.name: getattr(result, f.name) for f in fields(result) if f.name not in _REBUILT}
    rule = result.convergence.detached() if result.convergence is not None else None
    return ChainRun(chain, result.state, params, outcome, rule)


def _rebuild(spec: FitOptions, run: ChainRun) -> FitResult:
    """The chain's `FitResult` on the parent's model: its state in a new approximation."""
    inference = new_inference(spec.method, spec.model, None, spec.inf_kwargs)
    approx = inference.approx
    template = spec.optimizer
    optimizer = (
        copy.deepcopy(template)
        if template is not None
        else Adadelta.from_state_dict(run.state.optimizer or {})
    )
    params = approx.params
    optimizer([pt.zeros_like(p) for p in params], params)  # the state's layout, not compiled
    restore_state(run.state, approx, optimizer, source=f"chain {run.chain}")
    for entry in param_entries(approx):  # what the chain's approximation ended with
        entry.param.set_value(run.params[entry.key])
    inference.hist = approx.hist = run.state.losses
    return FitResult(approx=approx, optimizer=optimizer, convergence=run.convergence,
                     **run.outcome)  # fmt: skip
