"""L-BFGS for the warm start in standardized coordinates (`StandardizedObjective`).

From PyMC's start (sds of 0.69) a posterior whose sds span 1e-5 to 1e2, or whose
predictors are collinear, is too ill-conditioned for L-BFGS in the raw coordinates:
diamonds took 740 iterations and a Newton polish of 60. The first run here is in
coordinates scaled by the starting sds, the later ones in coordinates whitened by the
Hessian's mean block where the last one ended (diamonds: 125 iterations, Newton 2).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize

from pymc_adadelta.approx.fixed_draw import FixedDrawObjective, StandardizedObjective
from pymc_adadelta.approx.linear_response import DENSE_MAX_DIM

__all__ = ["FIRST_PASS_ITERATIONS", "STANDARDIZE_PASSES", "Found", "standardized_lbfgs"]

#: Most L-BFGS runs, each in coordinates standardized by the sds the last one found.
STANDARDIZE_PASSES = 3
#: Most iterations of the first L-BFGS run (in coordinates scaled by the starting sds);
#: the whitened runs after it finish the job in far fewer iterations.
FIRST_PASS_ITERATIONS = 100


class Found(NamedTuple):
    """Where `standardized_lbfgs` ended.

    The objective in the last standardized coordinates, the point there, the loss, the
    L-BFGS iterations, and why it failed ("" when it did not).
    """

    scaled: StandardizedObjective
    xi: np.ndarray
    loss: float
    iterations: int
    failure: str


def standardized_lbfgs(objective: FixedDrawObjective, eta: np.ndarray, maxiter: int) -> Found:
    """L-BFGS in standardized coordinates (`StandardizedObjective`).

    The first run is in coordinates scaled by the starting sds; each later one in
    coordinates whitened by the Hessian's mean block where the last run ended, up to
    `STANDARDIZE_PASSES` runs, while a run still moves some coordinate by a unit. From
    PyMC's start (sds of 0.69) a posterior whose sds span 1e-5 to 1e2, or whose
    predictors are collinear (diamonds: 740 iterations before), is too ill-conditioned
    for L-BFGS in the raw coordinates.
    """
    n, iterations = objective.dim, 0
    eta = _finite_start(objective, eta)
    scaled = _diagonal(objective, eta)
    for attempt in range(STANDARDIZE_PASSES):
        result = _lbfgs(scaled, np.zeros(2 * n), maxiter if attempt else FIRST_PASS_ITERATIONS)
        iterations += int(result.nit)
        if not np.isfinite(result.fun) or not np.isfinite(result.x).all():
            return Found(scaled, result.x, float("nan"), iterations, "non-finite")
        if not result.success and result.nit == 0 and attempt == 0:
            return Found(scaled, result.x, float("nan"), 0, str(result.message))
        eta = scaled.to_eta(result.x)
        scaled = _whitened(objective, eta)
        if attempt and np.max(np.abs(result.x)) < 1.0:
            break
    return Found(scaled, np.zeros(2 * n), float(result.fun), iterations, "")


def _finite_start(objective: FixedDrawObjective, eta: np.ndarray) -> np.ndarray:
    """``eta``, or the first of its sds shrunk 10, 100, 1000 times where F is finite.

    PyMC's full-rank start (sds of 1.3) put draws of low_dim_gauss_mix's ordered means
    where the log density overflows, and the warm start ended before its first step.
    """
    n = objective.dim
    for shrink in (0.0, *np.log([10.0, 100.0, 1000.0])):
        candidate = np.concatenate([eta[:n], eta[n:] - shrink])
        if np.isfinite(objective.value_and_grad(candidate)[0]):
            return candidate
    return eta


def _diagonal(objective: FixedDrawObjective, eta: np.ndarray) -> StandardizedObjective:
    n = objective.dim
    return StandardizedObjective(objective, eta, np.concatenate([np.exp(eta[n:]), np.ones(n)]))


def _whitened(objective: FixedDrawObjective, eta: np.ndarray) -> StandardizedObjective:
    """Means whitened by the Cholesky factor of the Hessian's mean block (n products).

    Falls back to the diagonal scaling beyond `DENSE_MAX_DIM` coordinates or where that
    block is not positive definite.
    """
    n = objective.dim
    diagonal = _diagonal(objective, eta)
    if n > DENSE_MAX_DIM:
        return diagonal
    columns = np.stack([diagonal.hessp(np.zeros(2 * n), e)[:n] for e in np.eye(2 * n)[:n]], 1)
    try:
        factor = np.linalg.cholesky(0.5 * (columns + columns.T))
    except np.linalg.LinAlgError:
        return diagonal
    transform = np.eye(2 * n)
    # xi_diag = L^-T xi_white, so eta_mu = center + D L^-T xi_white
    transform[:n, :n] = diagonal.transform[:n, None] * np.linalg.inv(factor).T
    if not np.isfinite(transform).all():
        return diagonal
    return StandardizedObjective(objective, eta, transform)


def _lbfgs(objective: StandardizedObjective, start: np.ndarray, maxiter: int) -> Any:
    """L-BFGS, restarted (at most 3 runs) while it stops early far from a stationary point.

    From a poor start (an AR model at PyMC's initial point has a loss of 1e25) L-BFGS's
    relative-reduction test can end the run after a couple of iterations.
    """
    result = minimize(objective.value_and_grad, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": maxiter})  # fmt: skip
    iterations = int(result.nit)
    for _ in range(2):
        if iterations >= maxiter or not np.isfinite(result.fun):
            break
        if np.max(np.abs(result.jac)) < 1e-3 * max(1.0, abs(result.fun)) ** 0.5 * 1e-1:
            break
        again = minimize(objective.value_and_grad, result.x, jac=True, method="L-BFGS-B",
                         options={"maxiter": maxiter - iterations})  # fmt: skip
        iterations += int(again.nit)
        if not again.fun < result.fun:
            break
        result = again
    result.nit = iterations
    return result
