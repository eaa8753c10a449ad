"""PSIS importance resampling of exported draws: the posterior, from the approximation.

The draws `to_arviz` exports come from a proposal ``q`` (the corrected approximation of
`pymc_adadelta.approx.corrected`). Their importance ratios ``p/q``, Pareto-smoothed
(PSIS; Vehtari, Simpson, Gelman, Yao and Gabry 2024), weight them towards the posterior,
and resampling by those weights gives equally weighted draws that ArviZ can summarize,
as Pathfinder does (Zhang, Carpenter, Gelman and Vehtari 2022). Yao, Vehtari, Simpson
and Gelman (2018, "Yes, but did it work?") propose the same correction for VI.

What it fixed, measured on `benchmarks/posteriordb.py`'s posteriors (max |mean error|
in reference sds, exported draws against 8,000 proposals): eight schools 0.27 → 0.04
(sd ratios 0.99-3.1 → 0.98-1.03, k-hat 0.42), garch11 0.24 → 0.04 (k-hat 0.86, still
flagged), gp_pois_regr 1.04 → 0.53 (k-hat 0.91, still flagged).

`resample_indices` decides, with ``mode="auto"``:

- k-hat ≥ 1 (or a non-finite ratio): no resampling; the ratios have no finite mean, so
  weighted estimates do not converge. The export keeps the proposal's draws, flagged.
- otherwise resample (systematic resampling, Kitagawa 1996), unless the weights move no
  mean and no sd of the ``d`` unconstrained coordinates by more than
  ``sqrt(2 log(2 d) / draws)`` of an sd: resampling adds a Monte Carlo error of about
  ``1/sqrt(draws)`` sd to each of them, and that is its expected largest value over the
  ``2 d`` means and sds, so below it the proposal's own (quasi-random, nearly exact)
  draws are the better sample. On sblrc the weights moved a mean by 0.05 sd, and
  resampling 1,000 draws made the largest error 0.075 sd instead of 0.05. Between 0.7
  and 1 the resampled draws are the best estimate there is, but not a reliable one:
  `to_arviz` still warns.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pymc_adadelta._compat import psis_smooth
from pymc_adadelta.output.diagnostics import MIN_KHAT_DRAWS

__all__ = ["RESAMPLE_MODES", "Resampling", "resample_indices"]

#: Accepted values of ``resample=`` in `to_arviz`.
RESAMPLE_MODES = ("auto", "always", "never")
#: k-hat from which the ratios are taken to have no finite mean.
KHAT_NO_MEAN = 1.0


class Resampling(NamedTuple):
    """Which proposal draws to export, and why.

    Attributes
    ----------
    indices : ndarray of int, shape (draws,)
        Rows of the proposal draws to export (the first ``draws`` when not resampled).
    resampled : bool
        Whether the rows were drawn by PSIS weight.
    khat : float
        PSIS k-hat of all the proposal draws' ratios (NaN when not finite).
    ess : float
        Importance-sampling effective sample size of the smoothed weights
        (``1 / sum(w**2)``, weights summing to 1; NaN when not computed).
    reason : str
        ``"resampled"``, ``"weights change nothing"``, ``"k-hat >= 1"``,
        ``"not finite"``, ``"too few draws"`` (under `MIN_KHAT_DRAWS`) or ``"off"``.
    """

    indices: np.ndarray
    resampled: bool
    khat: float
    ess: float
    reason: str


def resample_indices(
    log_ratios: np.ndarray,
    flat: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    mode: str = "auto",
) -> Resampling:
    """Pick ``draws`` rows of the proposal draws by their PSIS weights (module docstring).

    Parameters
    ----------
    log_ratios : ndarray, shape (proposals,)
        ``log p - log q`` of every proposal draw.
    flat : ndarray, shape (proposals, dim)
        The proposal draws on the unconstrained scale, one row per draw.
    draws : int
        How many to export (at most ``proposals``).
    rng : numpy Generator
        Source of the systematic resampling's offset.
    mode : {"auto", "always", "never"}
        "always" resamples whenever k-hat is finite and below 1.

    Returns
    -------
    Resampling
    """
    head = np.arange(draws)
    if len(log_ratios) < MIN_KHAT_DRAWS:  # no Pareto tail to fit (ArviZ 1 raises)
        return Resampling(head, False, float("nan"), float("nan"), "too few draws")
    if not np.isfinite(log_ratios).all():
        return Resampling(head, False, float("nan"), float("nan"), "not finite")
    log_weights, khat = psis_smooth(log_ratios)
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    ess = float(1.0 / np.square(weights).sum())
    if mode == "never":
        return Resampling(head, False, khat, ess, "off")
    if not khat < KHAT_NO_MEAN:
        return Resampling(head, False, khat, ess, "k-hat >= 1")
    noise = np.sqrt(2.0 * np.log(2.0 * max(flat.shape[1], 1)) / draws)
    if mode == "auto" and _largest_shift(flat, weights) <= noise:
        return Resampling(head, False, khat, ess, "weights change nothing")
    return Resampling(_systematic(weights, draws, rng), True, khat, ess, "resampled")


def _largest_shift(flat: np.ndarray, weights: np.ndarray) -> float:
    """Largest change of a mean (in sds) or an sd (relative) that the weights make."""
    mean = flat.mean(axis=0)
    sd = flat.std(axis=0)
    weighted_mean = weights @ flat
    weighted_sd = np.sqrt(weights @ np.square(flat - weighted_mean))
    scale = np.where(sd > 0, sd, 1.0)
    shifts = np.concatenate([np.abs(weighted_mean - mean) / scale,
                             np.abs(weighted_sd / scale - 1.0) * (sd > 0)])  # fmt: skip
    return float(shifts.max()) if shifts.size else 0.0


def _systematic(weights: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling: one uniform offset, ``draws`` evenly spaced points."""
    points = (rng.random() + np.arange(draws)) / draws
    picked = np.searchsorted(np.cumsum(weights), points, side="right")
    return rng.permutation(np.minimum(picked, len(weights) - 1))
