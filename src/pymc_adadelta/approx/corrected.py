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

__all__ = ["COVARIANCES", "MEAN_DRIFT_SDS", "ChosenCovariance", "choose_covariance", "export_draws",
           "gaussian_draws"]  # fmt: skip

#: Accepted values of ``covariance=`` in `to_arviz` / `psis_khat`.
COVARIANCES = ("auto", "linear_response", "approximation")
#: With linear response, the fit's mean is used unless it lies further than this many
#: linear-response sds from the warm start's optimum in some coordinate: then Adadelta's
#: refinement was swamped by its own step scale (sblrc: posterior sds ~1e-3 against
#: Adadelta's ~sqrt(epsilon) = 1e-3 steps; the fit's mean was 0.80 ref sd off, the
#: optimum's 0.08), and the optimum's mean is used.
MEAN_DRIFT_SDS = 0.5


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
    mean : ndarray or None
        The mean to draw around (None: the approximation's).
    mean_label : str
        ``"fit"`` or ``"warm_start"`` (see `MEAN_DRIFT_SDS`).
    """

    label: str
    matrix: np.ndarray | None
    reason: str
    mean: np.ndarray | None = None
    mean_label: str = "fit"


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
        fit_mean = np.concatenate([gaussian_moments(g).mean for g in approx.groups])
        optimum = getattr(result.warm_start, "mean", None)
        if optimum is not None:
            optimum = np.asarray(optimum, dtype=np.float64)
            drift = np.abs(fit_mean - optimum) / np.sqrt(np.diag(matrix))
            if optimum.shape == fit_mean.shape and drift.max() > MEAN_DRIFT_SDS:
                return ChosenCovariance("linear_response", matrix, "ok", optimum, "warm_start")
        return ChosenCovariance("linear_response", matrix, "ok", fit_mean, "fit")
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
    approx: Any,
    covariance: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    mean: np.ndarray | None = None,
) -> ApproxDraws:
    """Draws from ``N(mean, covariance)`` (default mean: the approximation's)."""
    if mean is None:
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
    return gaussian_draws(approx, chosen.matrix, draws, rng, chosen.mean)
