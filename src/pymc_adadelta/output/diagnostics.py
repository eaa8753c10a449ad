"""`psis_khat`: how far a fitted approximation is from the posterior.

Pareto-smoothed importance sampling (Vehtari et al. 2015-2024) fits a generalized Pareto
distribution to the largest importance ratios ``p(θ, y) / q(θ)`` of draws from the
approximation; its shape k-hat tells how heavy their tail is (Yao et al. 2018, "Yes, but
did it work?: evaluating variational inference"):

- k-hat < 0.5: the approximation is close enough for importance sampling to correct it
  cheaply; point estimates from it are reliable;
- 0.5 ≤ k-hat < 0.7: usable with care; PSIS-reweighted estimates are still reliable;
- k-hat ≥ 0.7: the approximation misses important parts of the posterior (typically
  too narrow, or missing correlations); do not trust its means or intervals.

The estimate itself is noisy with few draws, so the default uses several thousand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta._compat import psis_khat_of_log_ratios
from pymc_adadelta._validation import check_draws
from pymc_adadelta.approx.draws import approximation_draws, evaluate_model
from pymc_adadelta.output.inputs import split_input

__all__ = ["KHAT_DRAWS", "MIN_KHAT_DRAWS", "khat_of_log_ratios", "psis_khat"]

#: Default draws for `psis_khat`: enough for a k-hat that moves by about ±0.05 between seeds.
KHAT_DRAWS = 8000
#: Fewest draws with a Pareto tail of at least 5 draws (ArviZ's minimum for the fit).
MIN_KHAT_DRAWS = 25


def psis_khat(
    approx: Any, draws: int = KHAT_DRAWS, *, random_seed: Any = None, model: Any = None
) -> float:
    """Pareto k-hat of the importance ratios p/q of an approximation, with ArviZ's PSIS.

    Parameters
    ----------
    approx : pymc Approximation or FitResult
        A Gaussian (mean-field or full-rank) approximation.
    draws : int, default `KHAT_DRAWS`
        Draws from the approximation; fewer give a noisier k-hat.
    random_seed : int or numpy Generator, optional
        Seed of the draws.
    model : pm.Model, optional
        When given, the approximation must belong to it.

    Returns
    -------
    float
        Below 0.5: good; 0.5-0.7: usable with care; above 0.7: do not trust the
        approximation (see the module docstring for what to do).

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import adadelta, psis_khat
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=3)
    ...     approx = pm.fit(3_000, obj_optimizer=adadelta(), progressbar=False, random_seed=1)
    >>> psis_khat(approx, random_seed=2) < 0.5
    True
    """
    approx, _ = split_input(approx, model)
    check_draws(draws)
    if draws < MIN_KHAT_DRAWS:
        raise ValueError(f"draws must be at least {MIN_KHAT_DRAWS} for a Pareto fit, got {draws}")
    if any("histogram" in g.params_dict for g in approx.groups):
        raise ValueError(
            "approx has an Empirical (particle) group, whose density q is unknown; "
            "psis_khat needs a mean-field or full-rank approximation"
        )
    q = approximation_draws(approx, draws, np.random.default_rng(random_seed))
    lp = evaluate_model(approx.model, q.values).lp
    log_ratios = lp - q.logq
    if not np.isfinite(log_ratios).all():
        raise ValueError(
            f"log p - log q is not finite at {int((~np.isfinite(log_ratios)).sum())} of "
            f"{draws} draws; the approximation puts mass where the model has none"
        )
    return psis_khat_of_log_ratios(log_ratios)


def khat_of_log_ratios(log_ratios: np.ndarray) -> float:
    """Pareto k-hat of ``log p - log q`` values; NaN when some are not finite or too few."""
    if len(log_ratios) < MIN_KHAT_DRAWS or not np.isfinite(log_ratios).all():
        return float("nan")
    return psis_khat_of_log_ratios(log_ratios)
