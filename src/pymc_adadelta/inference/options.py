"""The options of `fit`: method, optimizer, convergence rule, backend and their defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
from pymc.variational.inference import ADVI, ASVGD, SVGD, FullRankADVI, Inference

from pymc_adadelta._compat import BACKEND_MODES, available_backends
from pymc_adadelta._validation import check_bool
from pymc_adadelta.approx.scales import parameter_scales
from pymc_adadelta.callbacks import Convergence
from pymc_adadelta.optim import Adadelta
from pymc_adadelta.persist.fit_state import FitState

__all__ = ["METHODS", "STANDARDIZED_EPSILON", "WARM_AVERAGE_FROM", "WARM_LEARNING_RATE",
           "WARM_MIN_STEPS", "check_backend", "compile_step", "convergence_rule",
           "default_optimizer", "new_inference", "standardize_accumulators",
           "with_backend"]  # fmt: skip

METHODS = {"advi": ADVI, "fullrank_advi": FullRankADVI, "svgd": SVGD, "asvgd": ASVGD}
#: Learning rate of the default optimizer after a warm start. From the optimum only
#: refinement is left, and smaller steps give a more precise average in the same number
#: of steps: measured on four real-data models (docs/convergence.md), the error of the
#: average after 2,000 steps fell from 0.07-0.14 to 0.03-0.15 NUTS sd going from 1.0 to 0.3.
WARM_LEARNING_RATE = 0.3
#: ``epsilon`` of the default optimizer after a warm start: a floor far below any
#: accumulator of a posterior with sds between 1e-7 and 1e7 (see `standardize_accumulators`).
STANDARDIZED_EPSILON = 1e-16
#: First step whose iterates the "mcse" rule averages after a warm start. The
#: accumulators start at the warm start's scales (`standardize_accumulators`), so only
#: E[g²] has to settle, in about 1 / (1 - rho) = 20 steps; with zero accumulators it took
#: a few hundred (the value was 500 then).
WARM_AVERAGE_FROM = 100
#: Fewest steps of the "mcse" rule after a warm start: the rule's default. Measured with
#: 1,000 the refined means were 0.076 sd off on Gaussian posteriors and linear_diabetes
#: 0.105 NUTS sd off (``benchmarks/refinement.py``, ``benchmarks/convergence.py``),
#: against 0.027 and 0.063 with 2,000.
WARM_MIN_STEPS = 2000


def check_backend(backend: str | None) -> None:
    """Raise unless ``backend`` is None or a known backend whose library is installed.

    Raises
    ------
    ValueError
        For an unknown backend.
    ImportError
        When its library (numba, jax) is missing, naming the extra that installs it,
        before anything is compiled (pytensor would otherwise log a rewrite traceback
        first).
    """
    if backend is None:
        return
    if backend not in BACKEND_MODES:
        raise ValueError(f"backend must be one of {sorted(BACKEND_MODES)}, got {backend!r}")
    if backend not in available_backends():
        raise ImportError(
            f"backend={backend!r} needs {backend}, which is not installed: install "
            f'pymc-adadelta[{backend}] (python3 -m pip install "pymc-adadelta[{backend}]")'
        )


def with_backend(backend: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Put the pytensor mode of ``backend`` into the step function's ``compile_kwargs``."""
    if backend is None:
        return kwargs
    check_backend(backend)
    compile_kwargs = dict(kwargs.get("compile_kwargs") or {})
    if "mode" in compile_kwargs:
        raise ValueError("give backend or compile_kwargs['mode'], not both")
    compile_kwargs["mode"] = BACKEND_MODES[backend]
    return {**kwargs, "compile_kwargs": compile_kwargs}


def compile_step(
    inference: Inference, optimizer: Adadelta, kwargs: dict[str, Any]
) -> tuple[Any, bool]:
    """Compile PyMC's step function with ``optimizer``; score as ``Inference.fit`` does."""
    score = kwargs.pop("score", None)
    returns_loss = bool(inference.objective.op.returns_loss)
    score = returns_loss if score is None else bool(score) and returns_loss
    step = inference.objective.step_function(score=score, obj_optimizer=optimizer, **kwargs)
    return step, score


def check_optimizer(optimizer: Any) -> None:
    """Raise TypeError unless ``optimizer`` is None or an `Adadelta`."""
    if optimizer is not None and not isinstance(optimizer, Adadelta):
        raise TypeError(
            f"optimizer must be a pymc_adadelta.Adadelta (use pm.fit for other optimizers), "
            f"got {type(optimizer).__name__}"
        )


#: ``pm.fit`` keywords that `fit` passes to PyMC's step function.
STEP_FUNCTION_KWARGS = (
    "obj_n_mc",
    "tf_n_mc",
    "test_optimizer",
    "more_obj_params",
    "more_tf_params",
    "more_updates",
    "more_replacements",
    "total_grad_norm_constraint",
    "score",
    "compile_kwargs",
    "fn_kwargs",
)
#: ``pm.fit`` keywords that go to the Inference's constructor, as ``pm.fit`` does.
INFERENCE_KWARGS = ("start", "start_sigma")


def split_pm_fit_kwargs(method: Any, kwargs: dict[str, Any]) -> tuple[dict, dict]:
    """Split ``fit``'s extra keywords into the Inference's and the step function's.

    Raises
    ------
    TypeError
        For ``obj_optimizer`` (say ``optimizer=``) and unknown keywords, naming them, and
        for a ``score`` other than None, True or False.
    ValueError
        For ``start``/``start_sigma`` with an Inference object (it is already built).
    """
    extra = dict(kwargs)
    inf_kwargs = dict(extra.pop("inf_kwargs", None) or {})
    if "obj_optimizer" in extra:
        raise TypeError("fit() takes optimizer=Adadelta(...), not obj_optimizer= (use pm.fit "
                        "for other optimizers)")  # fmt: skip
    for name in INFERENCE_KWARGS:
        if name in extra:
            if isinstance(method, Inference):
                raise ValueError(f"{name}= goes to the Inference's constructor, but method is "
                                 f"an Inference already: build it with {name}=...")  # fmt: skip
            inf_kwargs[name] = extra.pop(name)
    unknown = sorted(set(extra) - set(STEP_FUNCTION_KWARGS))
    if unknown:
        raise TypeError(f"fit() got unexpected keyword arguments {unknown}; besides its own, it "
                        f"takes inf_kwargs, {', '.join(INFERENCE_KWARGS)} and PyMC's step "
                        f"function arguments {list(STEP_FUNCTION_KWARGS)}")  # fmt: skip
    if extra.get("score") is not None:
        check_bool("score", extra["score"])
    return inf_kwargs, extra


def default_optimizer(warm: bool, saved: FitState | None) -> Adadelta:
    """``Adadelta()``; when resuming, the saved one's.

    After a warm start, a smaller step and a negligible ``epsilon``: the accumulators are
    then started at the warm start's scales (`standardize_accumulators`).
    """
    if saved is not None and saved.optimizer is not None:
        return Adadelta.from_state_dict(saved.optimizer)
    if warm:
        return Adadelta(learning_rate=WARM_LEARNING_RATE, epsilon=STANDARDIZED_EPSILON)
    return Adadelta()


def standardize_accumulators(optimizer: Adadelta, approx: Any) -> None:
    """Start ``optimizer``'s accumulators at the approximation's parameter scales.

    ``E[dx²] = s²`` and ``E[g²] = 1/s²`` with ``s`` from
    `pymc_adadelta.approx.scales.parameter_scales`: with a negligible ``epsilon`` this
    is Adadelta in coordinates standardized by ``s`` (see that module). Parameters
    without a scale keep zero accumulators.
    """
    state = optimizer.state
    scale_of = {id(param): scale for param, scale in parameter_scales(approx)}
    values = {}
    for slot in state.slots:
        scale = scale_of.get(id(slot.param))
        if scale is None:
            zeros = np.zeros(slot.shape, dtype=slot.dtype)
            values[slot.name] = {"sq_grad": zeros, "sq_delta": zeros}
            continue
        values[slot.name] = {"sq_grad": (1.0 / scale**2).astype(slot.dtype),
                             "sq_delta": (scale**2).astype(slot.dtype)}  # fmt: skip
    state.load_accumulators(values, state.n_steps)


def convergence_rule(convergence: Any, warm: bool) -> Convergence | None:
    """The `Convergence` for ``fit(convergence=...)``; ``"auto"`` depends on the warm start."""
    if convergence is None or convergence is False:
        return None
    if isinstance(convergence, Convergence):
        return convergence
    if convergence == "auto":
        convergence = "mcse" if warm else "rhat"
    if convergence == "mcse":
        return Convergence("mcse", min_window=WARM_AVERAGE_FROM, min_steps=WARM_MIN_STEPS)
    if convergence in ("rhat", "stan", "cusum"):
        return Convergence(convergence)
    raise ValueError(
        f'convergence must be "auto", "rhat", "mcse", "stan", "cusum", a Convergence or None, '
        f"got {convergence!r}"
    )


def new_inference(method: Any, model: Any, random_seed: Any, inf_kwargs: Any) -> Inference:
    """The PyMC Inference of ``method`` (a name, or an Inference used as it is)."""
    if isinstance(method, Inference):
        return method
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} or an Inference, got {method!r}")
    kwargs = dict(inf_kwargs or {})
    if random_seed is not None:
        kwargs["random_seed"] = random_seed
    with pm.modelcontext(model):
        return METHODS[method.lower()](**kwargs)
