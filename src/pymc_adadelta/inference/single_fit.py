"""One fit of one approximation: warm start, compile, resume, run, result."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymc.variational.inference import Inference

from pymc_adadelta._validation import check_callbacks
from pymc_adadelta.approx.static_shapes import give_static_shapes
from pymc_adadelta.approx.warmstart import warm_start as run_warm_start
from pymc_adadelta.callbacks import Checkpoint
from pymc_adadelta.inference.minibatch import minibatch_fit
from pymc_adadelta.inference.options import (
    compile_step,
    convergence_rule,
    default_optimizer,
    new_inference,
    standardize_accumulators,
    with_backend,
)
from pymc_adadelta.inference.result import FitResult
from pymc_adadelta.inference.run import FitRun
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState, restore_state

__all__ = ["FitOptions", "fit_single"]


@dataclass(frozen=True, kw_only=True)
class FitOptions:
    """`fit`'s arguments for one fit, checked: built once by `fit`, read by `fit_single`.

    The fields are `fit`'s keywords of the same names (see `fit` for their meaning and
    defaults, which live there only), except ``inf_kwargs`` and ``step_kwargs``: the
    Inference's and the step function's parts of ``**pm_fit_kwargs``
    (`split_pm_fit_kwargs`). ``chains``, ``cores`` and ``client`` are not here: they
    choose how many fits run, and where. Frozen, and picklable when its values are: the
    several-fits path ships it to worker processes and changes fields with
    ``dataclasses.replace``.
    """

    n: int
    model: Any
    method: str | Inference
    optimizer: Adadelta | None
    callbacks: list[Any]
    convergence: Any
    average: bool
    warm_start: bool
    random_seed: Any
    progressbar: bool
    checkpoint: str | os.PathLike[str] | None
    checkpoint_every: int
    resume: Any
    backend: str | None
    inf_kwargs: dict[str, Any]
    step_kwargs: dict[str, Any]


def fit_single(options: FitOptions) -> FitResult:
    """Run one fit with `fit`'s arguments, already checked; see `fit`."""
    o = options
    saved = read_resume(o.resume, o.checkpoint)
    inference = new_inference(o.method, o.model, o.random_seed, o.inf_kwargs)
    if o.backend == "jax":
        give_static_shapes(inference.approx)  # pymc#8359
    if o.warm_start and saved is None and o.optimizer is None and o.convergence == "auto":
        # a minibatch model: the full-data answer in a few passes (inference/minibatch.py)
        done = minibatch_fit(inference, list(o.callbacks), random_seed=o.random_seed,
                             progressbar=o.progressbar)  # fmt: skip
        if done is not None:
            return done
    started = (
        run_warm_start(inference.approx, random_seed=o.random_seed)
        if o.warm_start and saved is None
        else None
    )
    warm = started is not None and started.applied
    standardized = warm and o.optimizer is None and saved is None
    optimizer = o.optimizer if o.optimizer is not None else default_optimizer(warm, saved)
    rule = convergence_rule(o.convergence, warm or saved is not None)
    saver = None if o.checkpoint is None else Checkpoint(o.checkpoint, o.checkpoint_every,
                                                         optimizer=optimizer)  # fmt: skip
    step, score = compile_step(inference, optimizer, with_backend(o.backend, o.step_kwargs))
    if saved is not None:
        restore_state(saved, inference.approx, optimizer, step, source=_source(o.resume))
    elif standardized:
        standardize_accumulators(optimizer, inference.approx)
    # the result is complete when FitRun returns it, still inside its Ctrl-C deferral
    run = FitRun(inference, optimizer, rule, step, score, saved, saver, warm_start=started)
    return run(o.n, check_callbacks(o.callbacks), progressbar=o.progressbar, average=o.average)


def read_resume(resume: Any, checkpoint: Any) -> FitState | None:
    """The state to resume: from a `FitResult`, a checkpoint file, or None.

    Raises
    ------
    ValueError
        If there is nothing to resume from (``resume=True`` without ``checkpoint``, a
        result without a state, a checkpoint written without an optimizer).
    TypeError
        If ``resume`` is of another kind.
    """
    if resume is None or resume is False:
        return None
    if isinstance(resume, FitResult):
        if resume.state is None or resume.state.optimizer is None:
            raise ValueError("resume=<FitResult>: that result holds no fit state to continue")
        return resume.state
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True resumes from the checkpoint file: pass checkpoint=path")
        if not Path(checkpoint).exists():
            return None
        resume = checkpoint
    if not isinstance(resume, str | os.PathLike):
        raise TypeError(f"resume must be a checkpoint path, True or a FitResult, got "
                        f"{type(resume).__name__}")  # fmt: skip
    saved = Checkpoint.load(resume)
    if saved.optimizer is None:
        raise ValueError(
            f"resume={str(resume)!r}: the checkpoint holds no optimizer state (it was "
            f"written without optimizer=...), so a fit cannot resume from it"
        )
    return saved


def _source(resume: Any) -> str:
    if isinstance(resume, FitResult):
        return f"the FitResult of step {resume.n_steps}"
    return f"checkpoint {str(resume)!r}"
