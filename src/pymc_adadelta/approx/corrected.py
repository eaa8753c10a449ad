"""Draws from the variance-corrected approximation: linear-response covariance, best mean.

A mean-field fit's means are close to the posterior's, its sds are not (they shrink on
correlated posteriors, and it has no correlations). The warm start's linear-response
covariance (`pymc_adadelta.approx.linear_response`) corrects them. `export_draws` is what
`to_arviz` and `psis_khat` draw from when a fit result carries that covariance: a
multivariate Student-t with `PROPOSAL_DOF` degrees of freedom, that covariance and the
warm start's optimum as its mean (the fit's averaged mean where the refinement moved
it by more than `MEAN_NOISE_SDS`), its base points a scrambled Sobol sequence; the
approximation itself otherwise.

Why a Student-t and not the Gaussian: these draws are also the proposal of the importance
weights ``p/q`` that `to_arviz` uses for the PSIS k-hat and its importance resampling.
A Gaussian proposal has lighter tails than almost any posterior, so its ratios are
unbounded and k-hat reads their tail: on kidiq (a near-Gaussian regression whose
log-ratios have an sd of 0.07) it read 0.59-0.81 over three seeds, and -0.31 to -0.35
with the t (30). Heavier tails bound the ratios wherever the posterior is close to
Gaussian; the effective sample size fell by 0.5 % there. This is the standard choice of
importance-sampling proposals built from a mode and a curvature (Geweke 1989,
"Bayesian inference in econometric models using Monte Carlo integration").

Why Sobol points: the mean of ``n`` randomized quasi-Monte Carlo draws errs by about
``1/n`` of an sd instead of ``1/sqrt(n)`` for smooth functions (Owen 1997), so 1,000
exported draws reproduce the approximation's means and sds to about 0.01 sd instead of
0.03 (max over 26 coordinates: 0.10). The draws are returned in random order, so that
ArviZ's ESS, which assumes a Markov chain, sees no structure along ``draw``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats
from scipy.special import gammaln

from pymc_adadelta.approx.draws import ApproxDraws, approximation_draws, gaussian_moments
from pymc_adadelta.approx.layout import ordering

__all__ = ["COVARIANCES", "MEAN_NOISE_SDS", "PROPOSAL_DOF", "ChosenCovariance",
           "choose_covariance", "export_draws", "student_t_draws"]  # fmt: skip

#: Accepted values of ``covariance=`` in `to_arviz` / `psis_khat`.
COVARIANCES = ("auto", "linear_response", "approximation")
#: With linear response, the warm start's optimum is used as the mean unless the fit's
#: averaged mean lies further than this many linear-response sds from it in some
#: coordinate. The refinement stops once the Monte Carlo error of its average is below
#: 0.1 sd (`Convergence`'s ``mcse_threshold``), so a smaller shift is indistinguishable
#: from that error, and the optimum has none (it is exact on a Gaussian posterior).
#: Measured with ``benchmarks/refinement.py``: on Gaussian posteriors the refined means
#: were 0.03-0.05 sd off, the optimum's 0.000; on diamonds 0.061 against 0.026.
MEAN_NOISE_SDS = 0.1
#: Degrees of freedom of the exported Student-t (see the module docstring).
PROPOSAL_DOF = 30.0
#: Most dimensions scipy's Sobol sequence has; beyond, pseudo-random base points.
_SOBOL_MAX_DIM = 21_000


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
        ``"fit"`` or ``"warm_start"`` (see `MEAN_NOISE_SDS`).
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
            shift = np.abs(fit_mean - optimum) / np.sqrt(np.diag(matrix))
            if optimum.shape == fit_mean.shape and shift.max() <= MEAN_NOISE_SDS:
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


def student_t_draws(
    approx: Any,
    covariance: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    mean: np.ndarray | None = None,
    dof: float = PROPOSAL_DOF,
) -> ApproxDraws:
    """Draws from the multivariate Student-t with that mean and covariance (``dof > 2``).

    Its scale matrix is ``covariance * (dof - 2) / dof``, so that its covariance is
    ``covariance``. Base points: scrambled Sobol (``dim + 1`` coordinates: the normal
    part and the chi-square), in random order. ``logq`` is the exact t log density.
    """
    if mean is None:
        mean = np.concatenate([gaussian_moments(g).mean for g in approx.groups])
    dim = mean.size
    chol = np.linalg.cholesky(covariance * ((dof - 2.0) / dof))
    uniform = _base_points(draws, dim + 1, rng)
    z = stats.norm.ppf(uniform[:, :dim])
    mixing = stats.chi2.ppf(uniform[:, dim], dof) / dof
    flat = mean + (z / np.sqrt(mixing)[:, None]) @ chol.T
    mahalanobis = np.einsum("ij,ij->i", z, z) / mixing
    logq = (
        gammaln((dof + dim) / 2) - gammaln(dof / 2) - 0.5 * dim * np.log(dof * np.pi)
        - np.log(np.diag(chol)).sum() - 0.5 * (dof + dim) * np.log1p(mahalanobis / dof)
    )  # fmt: skip
    return ApproxDraws(_split_latent(approx, flat), logq)


def _base_points(draws: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, dim)`` points in the open unit cube: scrambled Sobol, shuffled."""
    if dim > _SOBOL_MAX_DIM:
        points = rng.random((draws, dim))
    else:
        sobol = stats.qmc.Sobol(dim, scramble=True, seed=rng)
        points = sobol.random_base2(max(int(np.ceil(np.log2(draws))), 0))[:draws]
    tiny = np.finfo(np.float64).eps
    return np.clip(points[rng.permutation(draws)], tiny, 1.0 - tiny)


def _split_latent(approx: Any, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Flat latent draws ``(draws, dim)`` as value-variable arrays, in their dtypes."""
    values: dict[str, np.ndarray] = {}
    offset = 0
    for group in approx.groups:
        for name, slc, shape in ordering(group):
            dtype = group.ordering[name][3]
            part = flat[:, offset + slc.start : offset + slc.stop]
            values[name] = part.reshape(len(flat), *shape).astype(dtype, copy=False)
        offset += group.ddim
    return values


def export_draws(
    approx: Any, chosen: ChosenCovariance, draws: int, rng: np.random.Generator
) -> ApproxDraws:
    """``draws`` draws from the chosen distribution (see `choose_covariance`).

    With linear response, the Student-t of `student_t_draws`; else the approximation's.
    """
    if chosen.matrix is None:
        return approximation_draws(approx, draws, rng)
    return student_t_draws(approx, chosen.matrix, draws, rng, chosen.mean)
