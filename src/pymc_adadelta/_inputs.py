"""Checks of the arguments shared by the export and diagnostics functions."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_draws", "check_positive_int", "is_positive_int", "split_input"]


def split_input(approx_or_result: Any, model: Any = None) -> tuple[Any, Any]:
    """Return ``(approx, result or None)``, checking the type and, if given, the model."""
    from pymc_adadelta.fit import FitResult

    result = approx_or_result if isinstance(approx_or_result, FitResult) else None
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
    return approx, result


def is_positive_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer ≥ 1 (booleans are not)."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and bool(value >= 1)


def check_positive_int(name: str, value: Any, what: str = "integer") -> None:
    """Raise ValueError, naming ``name`` and ``value``, unless it is a positive integer."""
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive {what}, got {value!r}")


def check_draws(draws: Any) -> None:
    """Raise ValueError unless ``draws`` is a positive integer."""
    check_positive_int("draws", draws)
