"""Draws from the variance-corrected Gaussian: the fit's mean, linear-response covariance.

A mean-field fit's means are close to the posterior's, its sds are not (they shrink on
correlated posteriors, and it has no correlations). The warm start's linear-response
covariance (`pymc_adadelta.approx.linear_response`) corrects them. `export_draws` is what
`to_arviz` and `psis_khat` draw from: the Gaussian with the approximation's current mean
(after Adadelta and averaging) and that covariance when a fit result carries one, the
approximation itself otherwise.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pymc_adadelta.approx.draws import ApproxDraws, approximation_draws, gaussian_moments
from pymc_adadelta.approx.layout import ordering

__all__ = ["COVARIANCES", "ChosenCovariance", "choose_covariance", "export_draws",
           "gaussian_draws"]  # fmt: skip

#: Accepted values of ``covariance=`` in `to_arviz` / `psis_khat`.
COVARIANCES = ("auto", "linear_response", "approximation")


class ChosenCovariance(NamedTuple):
    """Which covariance the draws use.

    Attributes
    ----------
    label : str
        ``"linear_response"`` or ``"approximation"``.
    matrix : ndarray or None
        The linear-response covariance (None for ``"approximation"``).
    reason : str
        Why (``"ok"``, ``"no warm start"``, the warm start's ``covariance_reason``, ...).
    """

    label: str
    matrix: np.ndarray | None
    reason: str


def choose_covariance(approx: Any, result: Any, covariance: str = "auto") -> ChosenCovariance:
    """The covariance to draw with: linear response when ``result`` has one.

    Else the approximation's; ``covariance="linear_response"`` raises when there is none.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
    if covariance == "approximation":
        return ChosenCovariance("approximation", None, "requested")
    matrix, reason = _linear_response_of(approx, result)
    if matrix is not None:
        return ChosenCovariance("linear_response", matrix, "ok")
    if covariance == "linear_response":
        raise ValueError(f"covariance='linear_response': there is none ({reason})")
    return ChosenCovariance("approximation", None, reason)


def _linear_response_of(approx: Any, result: Any) -> tuple[np.ndarray | None, str]:
    started = getattr(result, "warm_start", None) if result is not None else None
    if started is None:
        return None, "no warm start" if result is not None else "not a FitResult"
    cov = getattr(started, "covariance", None)
    if cov is None:
        return None, str(getattr(started, "covariance_reason", started.reason))
    if any("mu" not in g.params_dict for g in approx.groups):
        return None, "not gaussian"
    matrix = np.asarray(cov, dtype=np.float64)
    if matrix.shape != (approx.ndim, approx.ndim):
        return None, f"covariance shape {matrix.shape} does not match dim {approx.ndim}"
    return matrix, "ok"


def gaussian_draws(
    approx: Any, covariance: np.ndarray, draws: int, rng: np.random.Generator
) -> ApproxDraws:
    """Draws from ``N(mean of approx, covariance)`` with their log densities."""
    mean = np.concatenate([gaussian_moments(g).mean for g in approx.groups])
    chol = np.linalg.cholesky(covariance)
    eps = rng.standard_normal((draws, mean.size))
    flat = mean + eps @ chol.T
    log_norm = -0.5 * np.log(2 * np.pi) * mean.size - np.log(np.diag(chol)).sum()
    logq = log_norm - 0.5 * np.einsum("ij,ij->i", eps, eps)
    values: dict[str, np.ndarray] = {}
    offset = 0
    for group in approx.groups:
        for name, slc, shape in ordering(group):
            dtype = group.ordering[name][3]
            part = flat[:, offset + slc.start : offset + slc.stop]
            values[name] = part.reshape(draws, *shape).astype(dtype, copy=False)
        offset += group.ddim
    return ApproxDraws(values, logq)


def export_draws(
    approx: Any, chosen: ChosenCovariance, draws: int, rng: np.random.Generator
) -> ApproxDraws:
    """``draws`` draws from the chosen Gaussian (see `choose_covariance`)."""
    if chosen.matrix is None:
        return approximation_draws(approx, draws, rng)
    return gaussian_draws(approx, chosen.matrix, draws, rng)
