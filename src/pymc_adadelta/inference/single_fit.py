"""One fit of one approximation: warm start, compile, resume, run, result."""

from __future__ import annotations

import os
from collections.abc import Sequence
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
    split_pm_fit_kwargs,
    standardize_accumulators,
    with_backend,
)
from pymc_adadelta.inference.result import FitResult
from pymc_adadelta.inference.run import FitRun
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState, restore_state

__all__ = ["fit_single"]


def fit_single(
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
    resume: Any = None,
    backend: str | None = None,
    **pm_fit_kwargs: Any,
) -> FitResult:
    """Run one fit with `fit`'s arguments (already checked); see `fit`."""
    saved = read_resume(resume, checkpoint)
    inf_kwargs, step_kwargs = split_pm_fit_kwargs(method, pm_fit_kwargs)
    inference = new_inference(method, model, random_seed, inf_kwargs)
    if backend == "jax":
        give_static_shapes(inference.approx)  # pymc#8359
    if warm_start and saved is None and optimizer is None and convergence == "auto":
        # a minibatch model: the full-data answer in a few passes (inference/minibatch.py)
        done = minibatch_fit(inference, list(callbacks or []), random_seed=random_seed,
                             progressbar=progressbar)  # fmt: skip
        if done is not None:
            return done
    started = (
        run_warm_start(inference.approx, random_seed=random_seed)
        if warm_start and saved is None
        else None
    )
    warm = started is not None and started.applied
    standardized = warm and optimizer is None and saved is None
    optimizer = optimizer if optimizer is not None else default_optimizer(warm, saved)
    rule = convergence_rule(convergence, warm or saved is not None)
    saver = None if checkpoint is None else Checkpoint(checkpoint, checkpoint_every,
                                                       optimizer=optimizer)  # fmt: skip
    step, score = compile_step(inference, optimizer, with_backend(backend, step_kwargs))
    if saved is not None:
        restore_state(saved, inference.approx, optimizer, step, source=_source(resume))
    elif standardized:
        standardize_accumulators(optimizer, inference.approx)
    # the result is complete when FitRun returns it, still inside its Ctrl-C deferral
    run = FitRun(inference, optimizer, rule, step, score, saved, saver, warm_start=started)
    return run(n, check_callbacks(callbacks), progressbar=progressbar, average=average)


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
