"""What the output functions accept: an approximation, a `FitResult` or a `FitResults`.

The result types live in `pymc_adadelta.inference`, above this layer, so they are
recognised by their fields rather than imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta.approx.params import param_entries

__all__ = ["fits_of", "is_fit_result", "is_fit_results", "split_input"]


def is_fit_result(obj: Any) -> bool:
    """Whether ``obj`` is a `pymc_adadelta.FitResult` (one fit)."""
    return all(hasattr(obj, name) for name in ("approx", "history", "stop_reason", "optimizer"))


def is_fit_results(obj: Any) -> bool:
    """Whether ``obj`` is a `pymc_adadelta.FitResults` (several fits of one model)."""
    return hasattr(obj, "chains") and hasattr(obj, "stop_reasons")


def fits_of(approx_or_result: Any) -> list[Any]:
    """The approximations or results to export, one per chain (a list is taken as is)."""
    if is_fit_results(approx_or_result):
        return list(approx_or_result.chains)
    if isinstance(approx_or_result, list | tuple):
        return list(approx_or_result)
    return [approx_or_result]


def split_input(approx_or_result: Any, model: Any = None) -> tuple[Any, Any]:
    """Return ``(approx, result or None)``, checking the type and, if given, the model."""
    result = approx_or_result if is_fit_result(approx_or_result) else None
    approx = result.approx if result is not None else approx_or_result
    if not hasattr(approx, "groups") or not hasattr(approx, "model"):
        raise TypeError(
            f"approx_or_result must be a pymc Approximation or a FitResult, "
            f"got {type(approx_or_result).__name__}"
        )
    if model is not None and approx.model is not model:
        raise ValueError(
            f"the approximation was fitted to another model (its free variables: "
            f"{[rv.name for rv in approx.model.free_RVs]}); model has "
            f"{[rv.name for rv in model.free_RVs]}"
        )
    bad = [e.label for e in param_entries(approx)
           if not np.isfinite(np.asarray(e.param.get_value(borrow=True))).all()]  # fmt: skip
    if bad:
        raise ValueError(
            f"the approximation's parameters {bad} hold NaN or inf: the fit diverged and "
            f"was not restored. Refit (fit() restores the last finite state by itself) "
            f"or restore it with DivergenceGuard.restore()"
        )
    return approx, result
