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

The estimate itself is noisy with few draws (and biased low: with 1,000 draws the tail
fit sees too few extreme ratios), so the default uses several thousand, and `to_arviz`
computes its k-hat from the same number of draws from the same distribution: with the
same seed, ``psis_khat(result, random_seed=s)`` and ``to_arviz(result,
random_seed=s).attrs["psis_khat"]`` are the same number.

For a `FitResult` whose warm start computed a linear-response covariance, the draws come
from the corrected Gaussian (the fit's mean, that covariance; see
`pymc_adadelta.approx.corrected`), as `to_arviz` exports them. Where k-hat > 0.7 an
`ApproximationWarning` says so, with what to try instead.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pymc_adadelta._compat import psis_khat_of_log_ratios
from pymc_adadelta._validation import check_bool, check_draws, check_random_seed
from pymc_adadelta.approx.corrected import ChosenCovariance, choose_covariance, export_draws
from pymc_adadelta.approx.difference_lp import LogDensityEstimate, subsampled_logp
from pymc_adadelta.approx.draws import evaluate_model
from pymc_adadelta.approx.full_data import full_data
from pymc_adadelta.output.inputs import split_input

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

    from pymc_adadelta.inference import FitResult

__all__ = ["DATA_UNREAD", "KHAT_BAD", "KHAT_DRAWS", "MIN_KHAT_DRAWS", "ApproximationWarning",
           "Evaluated", "khat_of_log_ratios", "evaluate_in_chunks",
           "psis_khat", "warn_if_bad"]  # fmt: skip

#: Default draws for `psis_khat`: enough for a k-hat that moves by about ±0.05 between seeds.
KHAT_DRAWS = 8000
#: Fewest draws with a Pareto tail of at least 5 draws (ArviZ's minimum for the fit).
MIN_KHAT_DRAWS = 25
#: k-hat above which the approximation is flagged.
KHAT_BAD = 0.7
#: Draws per call when only log p is wanted.
_CHUNK = 1000
#: Why ``log p`` is NaN when a minibatch model's full data could not be had.
DATA_UNREAD = (
    "log p is NaN at every draw because the full data of this minibatch model could not "
    "be read (or its full-data log density built; the UserWarning above says why), not "
    "because of the approximation"
)
#: Most numbers per draw (free variables and deterministics) for which `to_arviz` checks
#: on every proposal draw whether importance resampling would change the answer.
RESAMPLING_CHECK_SCALARS = 2000


class ApproximationWarning(UserWarning):
    """The approximation is far from the posterior (PSIS k-hat above `KHAT_BAD`).

    Issued by `to_arviz` and `psis_khat`; the message says which distribution was
    checked, what is likely off and what to try.

    Examples
    --------
    >>> import warnings
    >>> from pymc_adadelta import ApproximationWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", ApproximationWarning)  # flags become errors
    ...     pass
    """


def psis_khat(
    approx: Approximation | FitResult,
    draws: int = KHAT_DRAWS,
    *,
    random_seed: Any = None,
    model: Any = None,
    covariance: str = "auto",
    warn: bool = True,
    exact_lp: bool = False,
) -> float:
    """Pareto k-hat of the importance ratios p/q of an approximation, with ArviZ's PSIS.

    Parameters
    ----------
    approx : pymc Approximation or FitResult
        A Gaussian (mean-field or full-rank) approximation.
    draws : int, default `KHAT_DRAWS`
        Draws from the approximation; fewer give a noisier k-hat.
    random_seed : int or numpy Generator, optional
        Seed of the draws (None, a non-negative integer, a sequence of them, a numpy
        SeedSequence, Generator or RandomState).
    model : pm.Model, optional
        When given, the approximation must belong to it.
    covariance : {"auto", "linear_response", "approximation"}, default "auto"
        Draw from the linear-response-corrected Gaussian when a `FitResult` carries that
        covariance ("auto"), or from the approximation itself.
    warn : bool, default True
        Warn (`ApproximationWarning`) when k-hat > 0.7.
    exact_lp : bool, default False
        Minibatch models with many rows: evaluate every row at every draw (rows ×
        draws likelihood terms) instead of the difference estimator with a stated error
        (`pymc_adadelta.approx.difference_lp`); no effect on other models.

    Returns
    -------
    float
        Below 0.5: good; 0.5-0.7: usable with care; above 0.7: do not trust the
        approximation (see the module docstring for what to do).

    Raises
    ------
    TypeError
        If ``random_seed`` (or ``warn``, ``exact_lp``) has the wrong type.
    ValueError
        If ``draws`` is not an integer >= `MIN_KHAT_DRAWS`; if ``log p - log q`` is not
        finite at some draws; if ``log p`` could not be evaluated because the full data
        of a minibatch model could not be read (the message says so, and a
        ``UserWarning`` before it why; the approximation is not blamed then).

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
    approx, result = split_input(approx, model)
    check_draws(draws)
    check_random_seed(random_seed)
    for name, flag in (("warn", warn), ("exact_lp", exact_lp)):
        check_bool(name, flag)
    if draws < MIN_KHAT_DRAWS:
        raise ValueError(f"draws must be at least {MIN_KHAT_DRAWS} for a Pareto fit, got {draws}")
    if any("histogram" in g.params_dict for g in approx.groups):
        raise ValueError(
            "approx has an Empirical (particle) group, whose density q is unknown; "
            "psis_khat needs a mean-field or full-rank approximation"
        )
    chosen = choose_covariance(approx, result, covariance)
    rng = np.random.default_rng(random_seed)
    q = export_draws(approx, chosen, draws, rng)
    evaluated = evaluate_in_chunks(approx.model, q.values, 0, rng=rng, exact_lp=exact_lp)
    if evaluated.unavailable:
        raise ValueError(f"psis_khat needs log p at the draws: {evaluated.unavailable}")
    log_ratios = evaluated.lp - q.logq
    if not np.isfinite(log_ratios).all():
        raise ValueError(
            f"log p - log q is not finite at {int((~np.isfinite(log_ratios)).sum())} of "
            f"{draws} draws; the approximation puts mass where the model has none"
        )
    khat = psis_khat_of_log_ratios(log_ratios)
    if warn:
        warn_if_bad(khat, draws, chosen)
    return khat


class Evaluated(NamedTuple):
    """``log p`` at every draw, the variables where kept, and how ``log p`` was had.

    ``estimate`` is None where ``log p`` is exact (every row at every draw).
    ``unavailable`` is "" where ``log p`` was evaluated, and says why it is NaN where the
    full data of a minibatch model could not be read (`DATA_UNREAD`): a NaN k-hat then
    says nothing about the approximation.
    """

    lp: np.ndarray
    posterior: dict[str, np.ndarray] | None
    estimate: LogDensityEstimate | None
    unavailable: str = ""


def evaluate_in_chunks(
    model: Any,
    values: dict[str, np.ndarray],
    max_scalars: int = RESAMPLING_CHECK_SCALARS,
    *,
    rng: np.random.Generator | None = None,
    exact_lp: bool = False,
) -> Evaluated:
    """``log p``, and the free variables and deterministics, at every draw, in one pass.

    A thousand draws per call. The variables are kept only while one draw holds at most
    ``max_scalars`` numbers (None otherwise: keeping them for every proposal would cost
    too much memory); the compiled function computes them with ``log p`` anyway. On a
    minibatch model with many rows, ``log p`` is estimated from subsamples of rows with
    a stated error (`pymc_adadelta.approx.difference_lp`, drawing them with ``rng``)
    unless ``exact_lp`` (or no ``rng``) asks for every row at every draw. Where those
    data cannot be read, ``log p`` is NaN, a warning says why and ``unavailable`` says so.
    """
    estimate = None if exact_lp or rng is None else subsampled_logp(model, values, rng)
    unread = estimate is not None and _unread_estimate(estimate)
    total = len(next(iter(values.values()))) if values else 0
    lps, parts = [], []
    for i in range(0, total, _CHUNK):
        chunk = evaluate_model(model, {k: v[i : i + _CHUNK] for k, v in values.items()},
                               with_lp=estimate is None)  # fmt: skip
        lps.append(chunk.lp)
        if estimate is None and not unread and chunk.lp.size and np.isnan(chunk.lp).all():
            unread = _reads_full_data(model)  # the whole chunk NaN: the data, not the draws
        size = len(next(iter(chunk.posterior.values()), ()))
        per_draw = sum(v[0].size for v in chunk.posterior.values()) if size else 0
        if per_draw <= max_scalars:
            parts.append(chunk.posterior)
    lp = estimate.lp if estimate is not None else np.concatenate(lps) if lps else np.empty(0)
    why = DATA_UNREAD if unread else ""
    if not parts or len(parts) < len(lps):
        return Evaluated(lp, None, estimate, why)
    posterior = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    return Evaluated(lp, posterior, estimate, why)


def _unread_estimate(estimate: LogDensityEstimate) -> bool:
    """Whether `subsampled_logp` gave up on unreadable data (NaN, no rows sampled)."""
    no_rows = estimate.hessian_rows == 0 and estimate.residual_rows == 0
    return bool(no_rows and estimate.lp.size and np.isnan(estimate.lp).all())


def _reads_full_data(model: Any) -> bool:
    """Whether ``log p`` of ``model`` comes from its full data (a minibatch model).

    Such a ``log p`` is NaN at every draw only where the data could not be read or the
    full-data density built (`pymc_adadelta.approx.draws.evaluate_model` warns why).
    """
    try:
        return full_data(model) is not None
    except ValueError:  # a minibatch model whose full-data log density cannot be built
        return True


def warn_if_bad(khat: float, draws: int, chosen: ChosenCovariance, resampled: bool = False) -> str:
    """Warn when k-hat > 0.7 or is not finite; return the message ("" when fine).

    ``resampled`` says that the exported draws were importance-resampled.
    """
    if np.isfinite(khat) and khat <= KHAT_BAD:
        return ""
    source = (
        "the Student-t with the fit's mean and the linear-response covariance"
        if chosen.label == "linear_response"
        else f"the approximation itself (no linear-response covariance: {chosen.reason})"
    )
    correction = (
        "The exported draws were resampled by their PSIS weights, which moves them towards "
        "the posterior, but at this k-hat that correction is not reliable either. "
        if resampled
        else ""
    )
    what = (
        f"PSIS k-hat is {khat:.2f} > {KHAT_BAD} ({draws} draws from {source})"
        if np.isfinite(khat)
        else f"PSIS k-hat could not be computed ({draws} draws from {source}): log p - log q "
        "is not finite at some draws"
    )
    message = (
        f"{what}: the posterior is not close to this approximation (heavy tails, a funnel, "
        f"skew, bounds or several modes), so its means, sds and intervals may be off. "
        f"{correction}Try NUTS (pm.sample) or nutpie; for strong correlations without "
        "linear response, fit(method='fullrank_advi'); or reparameterize (non-centred "
        "hierarchies)."
    )
    warnings.warn(message, ApproximationWarning, stacklevel=_user_level())
    return message


def _user_level() -> int:
    """``stacklevel`` (for a warn in the caller) of the first frame outside this package."""
    frame, level = sys._getframe(1), 1  # the caller of this function: stacklevel 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "pymc_adadelta"
    ):
        frame, level = frame.f_back, level + 1
    return level


def khat_of_log_ratios(log_ratios: np.ndarray) -> float:
    """Pareto k-hat of ``log p - log q`` values; NaN when some are not finite or too few."""
    if len(log_ratios) < MIN_KHAT_DRAWS or not np.isfinite(log_ratios).all():
        return float("nan")
    return psis_khat_of_log_ratios(log_ratios)
