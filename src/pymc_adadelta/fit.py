"""`fit()`: Adadelta with the package's callbacks wired together, resumable.

Adadelta, accumulator tracking, a divergence guard, a convergence rule, iterate averaging,
checkpoints and a progress display, returning a `FitResult`. `fit` compiles PyMC's step
function itself and runs the steps, so that it can resume a fit from a checkpoint (the
step numbers, losses and random state carry on), turn Ctrl-C into a clean stop after the
step under way, and show its own progress bar.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pymc as pm
import xarray as xr
from pymc.variational.inference import ADVI, ASVGD, SVGD, FullRankADVI, Inference

from pymc_adadelta._compat import BACKEND_MODES
from pymc_adadelta._inputs import check_positive_int
from pymc_adadelta._progress import ProgressDisplay
from pymc_adadelta._static_shapes import give_static_shapes
from pymc_adadelta.callbacks import AccumulatorTracker, Checkpoint, Convergence, DivergenceGuard
from pymc_adadelta.callbacks.checkpoint import CheckpointData
from pymc_adadelta.optimizer import Adadelta
from pymc_adadelta.warmstart import WarmStart
from pymc_adadelta.warmstart import warm_start as run_warm_start

if TYPE_CHECKING:
    from pymc_adadelta.chains import FitResults

__all__ = ["FitResult", "fit"]

METHODS = {"advi": ADVI, "fullrank_advi": FullRankADVI, "svgd": SVGD, "asvgd": ASVGD}
#: Every how many steps `fit` records the accumulator summaries.
TRACK_EVERY = 10
#: Learning rate of the default optimizer after a warm start. From the optimum only
#: refinement is left, and smaller steps give a more precise average in the same number
#: of steps: measured on four real-data models (docs/convergence.md), the error of the
#: average after 2,000 steps fell from 0.07-0.14 to 0.03-0.15 NUTS sd going from 1.0 to 0.3.
WARM_LEARNING_RATE = 0.3
#: First step whose iterates the "mcse" rule averages after a warm start: Adadelta's
#: accumulators settle within a few hundred steps.
WARM_AVERAGE_FROM = 500


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
        ``"interrupted"`` (Ctrl-C, or a callback of yours stopped the fit).
    n_steps : int
        Steps taken, counting those before a resume.
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

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import fit
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     result = fit(300, convergence=None, progressbar=False, random_seed=1)
    >>> result.stop_reason, result.n_steps, result.history.sizes["iteration"]
    ('max_steps', 300, 30)
    """

    approx: Any
    history: xr.Dataset
    converged: bool
    stop_reason: str
    n_steps: int
    optimizer: Adadelta
    convergence: Convergence | None = None
    last_iterate: dict[str, np.ndarray] = field(default_factory=dict)
    resumed_from: int = 0
    warm_start: WarmStart | None = None

    def to_arviz(self, draws: int = 1000, *, random_seed: Any = None) -> Any:
        """Export draws, history and diagnostics with `pymc_adadelta.to_arviz`."""
        from pymc_adadelta.arviz import to_arviz

        return to_arviz(self, draws, random_seed=random_seed)

    def plot(self, **kwargs: Any) -> Any:
        """Plot the optimization history with `pymc_adadelta.plot_history`."""
        from pymc_adadelta.plots import plot_history

        return plot_history(self, **kwargs)


class _Outcome(NamedTuple):
    """How the step loop ended."""

    reason: str | None  # "non-finite", "interrupted", or None: done or stopped by a callback
    clean: bool  # every step taken ran all its callbacks: the state is worth checkpointing


def fit(
    n: int = 50_000,
    *,
    model: Any = None,
    method: str | Inference = "advi",
    optimizer: Adadelta | None = None,
    callbacks: Sequence[Any] | None = None,
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
        Most steps to take, counting those before a resume.
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
        the ELBO over fixed draws (`pymc_adadelta.warmstart.warm_start`). Skipped for
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
    resume : str, os.PathLike or bool, optional
        Continue the fit saved in this checkpoint: its parameters, optimizer state,
        random state and history, for the remaining ``n - step`` steps. True resumes
        from ``checkpoint`` if that file exists and starts afresh otherwise.
    backend : {"c", "numba", "jax"}, optional
        pytensor backend of the step function (``compile_kwargs["mode"]``); defaults
        to pytensor's default mode.
    chains : int, default 1
        Independent fits, each from its own dispersed start (the means jittered by
        ``Uniform(-2, 2)`` on the unconstrained scale before the warm start) and with
        its own seed (``np.random.SeedSequence(random_seed).spawn``). More than one
        returns a `FitResults` with R-hat and ESS across the fits, and warns when they
        disagree; see `pymc_adadelta.parallel` and the docs page "Several fits".
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
        and the step function's arguments (``obj_n_mc``, ``total_grad_norm_constraint``,
        ``compile_kwargs``, ...).

    Returns
    -------
    FitResult or FitResults
        A `FitResult`; a `FitResults` when ``chains > 1``.

    Raises
    ------
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
    check_positive_int("n", n, "number of steps")
    check_positive_int("checkpoint_every", checkpoint_every)
    _check_optimizer(optimizer)
    from pymc_adadelta.parallel import check_parallel_arguments, fit_chains  # imports fit

    check_parallel_arguments(chains, cores, client)
    if chains > 1:
        return fit_chains(chains, cores=cores, client=client, model=model, method=method,
                          random_seed=random_seed, checkpoint=checkpoint, resume=resume, n=n,
                          optimizer=optimizer, callbacks=callbacks, convergence=convergence,
                          average=average, warm_start=warm_start, backend=backend,
                          **pm_fit_kwargs)  # fmt: skip
    saved = _read_resume(resume, checkpoint)
    inference = _inference(method, model, random_seed, pm_fit_kwargs.pop("inf_kwargs", None))
    if backend == "jax":
        give_static_shapes(inference.approx)  # pymc#8359
    started = (
        run_warm_start(inference.approx, random_seed=random_seed)
        if warm_start and saved is None
        else None
    )
    warm = started is not None and started.applied
    optimizer = optimizer if optimizer is not None else _default_optimizer(warm, saved)
    rule = _convergence_rule(convergence, warm or saved is not None)
    saver = (
        None
        if checkpoint is None
        else Checkpoint(checkpoint, checkpoint_every, optimizer=optimizer)
    )
    step, score = _compile(inference, optimizer, _with_backend(backend, pm_fit_kwargs))
    if saved is not None:
        saved.restore(inference.approx, optimizer, step)
    run = _Run(inference, optimizer, rule, step, score, saved, saver)
    result = run(n, list(callbacks or []), progressbar=progressbar, average=average)
    return replace(result, warm_start=started)


@dataclass
class _Run:
    """The state of one call of `fit`: its parts, callbacks and what was resumed."""

    inference: Inference
    optimizer: Adadelta
    rule: Convergence | None
    step: Any
    score: bool
    saved: CheckpointData | None
    saver: Checkpoint | None
    tracker: AccumulatorTracker = field(init=False)
    guard: DivergenceGuard = field(init=False)

    def __post_init__(self) -> None:
        self.done = self.saved.step if self.saved is not None else 0
        self.tracker = AccumulatorTracker(self.optimizer, every=TRACK_EVERY)
        self.guard = DivergenceGuard(self.optimizer)
        if self.saver is not None:
            self.saver.history, self.saver.step_function = self.history, self.step

    def __call__(
        self, n: int, callbacks: list[Any], *, progressbar: bool, average: bool
    ) -> FitResult:
        display = (
            ProgressDisplay(n, rule=self.rule, first_step=self.done + 1) if progressbar else None
        )
        rule = [self.rule] if self.rule is not None else []
        last = [c for c in (self.saver, display) if c is not None]
        losses = self._losses(n)
        try:
            outcome = _run_steps(
                self.step,
                self.inference.approx,
                [self.guard, self.tracker, *rule, *callbacks, *last],
                losses,
                self.done + 1,
                n,
            )
        except BaseException:
            if display is not None:
                display.close("failed")
            raise
        n_steps = self.optimizer.state.n_steps
        stop_reason = self._stop_reason(outcome, n_steps, n)
        if display is not None:
            display.close(stop_reason)
        if self._worth_saving(outcome, stop_reason, n_steps):
            assert self.saver is not None
            self.saver.save(self.inference.approx, _first(losses, n_steps), n_steps)
        return self._result(stop_reason, _first(losses, n_steps), n_steps, average)

    def _worth_saving(self, outcome: _Outcome, stop_reason: str, n_steps: int) -> bool:
        """Whether to write a last checkpoint: a clean stop at a step not saved yet."""
        fresh = self.saver is not None and self.saver.last_step != n_steps
        return fresh and outcome.clean and stop_reason != "non-finite"

    def history(self) -> xr.Dataset:
        """The tracker's history, after the saved one when resuming."""
        parts = [self.saved.history] if self.saved is not None else []
        if len(self.tracker):
            parts.append(self.tracker.history)
        parts = [p for p in parts if p.data_vars]
        if not parts:
            return xr.Dataset()
        return xr.concat(parts, dim="iteration") if len(parts) > 1 else parts[0].copy()

    def _losses(self, n: int) -> np.ndarray | None:
        """A buffer for every step's loss, holding the saved losses when resuming."""
        if not self.score:
            return None
        losses = np.full(max(n, self.done), np.nan)
        if self.saved is not None:
            saved = self.saved.losses
            losses[self.done - len(saved) : self.done] = saved
        return losses

    def _stop_reason(self, outcome: _Outcome, n_steps: int, n: int) -> str:
        if outcome.reason == "non-finite":  # a NaN loss: PyMC would raise here
            self.guard.restore()
            return "non-finite"
        for reason in (
            self.rule.stop_reason if self.rule else None,
            self.guard.stop_reason,
            outcome.reason,
        ):
            if reason:
                return reason
        return "max_steps" if n_steps >= n else "interrupted"

    def _result(
        self, stop_reason: str, losses: np.ndarray | None, n_steps: int, average: bool
    ) -> FitResult:
        approx = self.inference.approx
        _values_to_numpy([*approx.params, *self.optimizer.state.buffers])
        if losses is not None:  # where pm.fit leaves the losses
            self.inference.hist = approx.hist = losses.copy()
        last_iterate = _apply_average(approx, self.rule) if average else {}
        converged = self.rule is not None and self.rule.converged
        history = self.history()
        history.attrs.update(converged=int(converged), stop_reason=stop_reason, n_steps=n_steps)
        return FitResult(
            approx,
            history,
            converged,
            stop_reason,
            n_steps,
            self.optimizer,
            self.rule,
            last_iterate,
            self.done,
        )


def _values_to_numpy(variables: Sequence[Any]) -> None:
    """Replace JAX arrays left in shared variables by NumPy arrays (pymc#8360).

    The JAX backend leaves its outputs in the shared variables; PyMC's own sampling and
    other backends then fail on them.
    """
    for variable in variables:
        value = variable.get_value(borrow=True)
        if not isinstance(value, np.ndarray):
            variable.set_value(np.asarray(value))


def _run_steps(
    step: Any, approx: Any, callbacks: Sequence[Any], losses: np.ndarray | None, first: int, n: int
) -> _Outcome:
    """Take steps ``first..n``, calling the callbacks after each, until one stops the fit."""
    with _deferred_interrupt() as interrupted:
        try:
            for i in range(first, n + 1):
                value = step()
                seen = None
                if losses is not None:
                    loss = float(value)
                    if loss != loss:  # NaN: stop before the callbacks, as PyMC does
                        return _Outcome("non-finite", clean=False)
                    losses[i - 1] = loss
                    seen = losses[:i]
                for callback in callbacks:
                    callback(approx, seen, i)
                if i < n and interrupted():
                    return _Outcome("interrupted", clean=True)
        except StopIteration:
            return _Outcome(None, clean=True)
        except KeyboardInterrupt:  # a second Ctrl-C, or one we could not defer
            return _Outcome("interrupted", clean=False)
    return _Outcome(None, clean=True)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a request to stop after the step under way.

    Yields a function telling whether Ctrl-C was pressed; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Only done where Python's own handler is installed, in
    the main thread (as in a terminal or a Jupyter kernel); elsewhere Ctrl-C behaves as
    it otherwise would.
    """
    requested: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)

    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not ours:
        yield lambda: False
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _first(losses: np.ndarray | None, count: int) -> np.ndarray | None:
    return losses[:count] if losses is not None else None


def _read_resume(resume: Any, checkpoint: Any) -> CheckpointData | None:
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True resumes from the checkpoint file: pass checkpoint=path")
        if not Path(checkpoint).exists():
            return None
        resume = checkpoint
    saved = Checkpoint.load(resume)
    if saved.optimizer is None:
        raise ValueError(
            f"resume={str(resume)!r}: the checkpoint holds no optimizer state (it was "
            f"written without optimizer=...), so a fit cannot resume from it"
        )
    return saved


def _with_backend(backend: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Put the pytensor mode of ``backend`` into the step function's ``compile_kwargs``."""
    if backend is None:
        return kwargs
    if backend not in BACKEND_MODES:
        raise ValueError(f"backend must be one of {sorted(BACKEND_MODES)}, got {backend!r}")
    compile_kwargs = dict(kwargs.get("compile_kwargs") or {})
    if "mode" in compile_kwargs:
        raise ValueError("give backend or compile_kwargs['mode'], not both")
    compile_kwargs["mode"] = BACKEND_MODES[backend]
    return {**kwargs, "compile_kwargs": compile_kwargs}


def _compile(inference: Inference, optimizer: Adadelta, kwargs: dict[str, Any]) -> tuple[Any, bool]:
    """Compile PyMC's step function with ``optimizer``; score as ``Inference.fit`` does."""
    score = kwargs.pop("score", None)
    returns_loss = bool(inference.objective.op.returns_loss)
    score = returns_loss if score is None else bool(score) and returns_loss
    step = inference.objective.step_function(score=score, obj_optimizer=optimizer, **kwargs)
    return step, score


def _check_optimizer(optimizer: Any) -> None:
    if optimizer is not None and not isinstance(optimizer, Adadelta):
        raise TypeError(
            f"optimizer must be a pymc_adadelta.Adadelta (use pm.fit for other optimizers), "
            f"got {type(optimizer).__name__}"
        )


def _default_optimizer(warm: bool, saved: CheckpointData | None) -> Adadelta:
    """``Adadelta()``; after a warm start a smaller step; when resuming, the saved one's."""
    if saved is not None and saved.optimizer is not None:
        return Adadelta(**saved.optimizer["hyperparameters"])
    return Adadelta(learning_rate=WARM_LEARNING_RATE if warm else 1.0)


def _convergence_rule(convergence: Any, warm: bool) -> Convergence | None:
    if convergence is None or convergence is False:
        return None
    if isinstance(convergence, Convergence):
        return convergence
    if convergence == "auto":
        convergence = "mcse" if warm else "rhat"
    if convergence == "mcse":
        return Convergence("mcse", min_window=WARM_AVERAGE_FROM)
    if convergence in ("rhat", "stan", "cusum"):
        return Convergence(convergence)
    raise ValueError(
        f'convergence must be "auto", "rhat", "mcse", "stan", "cusum", a Convergence or None, '
        f"got {convergence!r}"
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


def _apply_average(approx: Any, rule: Convergence | None) -> dict[str, np.ndarray]:
    if rule is None or not rule.average:
        return {}
    last = {}
    for group in approx.groups:
        for name, param in group.params_dict.items():
            last[name] = param.get_value().copy()
            param.set_value(rule.average[name].astype(param.dtype))
    return last
