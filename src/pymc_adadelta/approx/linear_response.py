"""Linear-response covariance at the optimum of the fixed-draw objective.

Mean-field VI gets the posterior means nearly right and the covariances wrong: it has no
off-diagonal terms, and its sds shrink on correlated posteriors. Linear response
(Giordano, Broderick and Jordan 2018, "Covariances, robustness, and variational Bayes";
with fixed draws, Giordano, Ingram and Broderick 2024, "Black box variational inference
with a deterministic objective", DADVI) recovers them from how the optimum moves when the
log density is tilted by ``t·θ``: with ``η = (μ, ω)`` the optimum of the fixed-draw
negative ELBO ``F`` and ``H`` its Hessian there,

    Cov_LR(θ) = d E_q[θ] / dt = (H⁻¹)_μμ,

the mean-mean block of the inverse Hessian. It is exact for Gaussian posteriors (whose
mean-field optimum has the right means and the wrong sds) and, like a Laplace
approximation, only as good as the posterior is close to Gaussian elsewhere.

The block is computed from the dense Hessian (``2·dim`` Hessian-vector products) up to
`DENSE_MAX_DIM` latent coordinates, and column by column with conjugate gradients (one
solve per coordinate) beyond, up to `CG_MAX_DIM`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import xarray as xr
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg

from pymc_adadelta.approx.layout import latent_labels

__all__ = ["CG_MAX_DIM", "DENSE_MAX_DIM", "LinearResponse", "covariance_dataarray",
           "linear_response", "mean_dataarray", "newton_refine"]  # fmt: skip

#: Largest latent dimension whose covariance uses the dense Hessian.
DENSE_MAX_DIM = 400
#: Largest latent dimension for which linear response runs at all (conjugate gradients).
CG_MAX_DIM = 2000


class LinearResponse(NamedTuple):
    """The linear-response covariance, or why there is none.

    Attributes
    ----------
    covariance : ndarray or None
        ``(dim, dim)`` on the unconstrained scale, in the approximation's latent order.
    method : str
        ``"dense"``, ``"cg"``, or ``""`` when there is no covariance.
    reason : str
        ``"ok"``, or why there is no covariance (``"dim 5000 > 2000"``, ``"hessian not
        positive definite"``, ...).
    """

    covariance: np.ndarray | None
    method: str
    reason: str


def newton_refine(objective: Any, eta: np.ndarray, *, maxiter: int = 100) -> Any:
    """Polish ``η`` with a trust-region Newton-CG (``scipy`` "trust-ncg", ``hessp``).

    L-BFGS stalls on ill-conditioned objectives (collinear predictors); second-order steps
    reach the optimum, which the linear-response covariance needs.
    """
    return minimize(objective.value_and_grad, eta, jac=True, hessp=objective.hessp,
                    method="trust-ncg", options={"maxiter": maxiter, "gtol": 1e-6})  # fmt: skip


def linear_response(objective: Any, eta: np.ndarray) -> LinearResponse:
    """``(H⁻¹)_μμ`` at ``η`` (see the module docstring); never raises."""
    n = objective.dim
    try:
        if n <= DENSE_MAX_DIM:
            return _dense(objective, eta)
        if n <= CG_MAX_DIM:
            return _conjugate_gradients(objective, eta)
        return LinearResponse(None, "", f"dim {n} > {CG_MAX_DIM}")
    except Exception as exc:
        return LinearResponse(None, "", f"{type(exc).__name__}: {exc}"[:300])


def _dense(objective: Any, eta: np.ndarray) -> LinearResponse:
    n = objective.dim
    hessian = objective.hessian(eta)
    if not np.isfinite(hessian).all():
        return LinearResponse(None, "", "hessian not finite")
    try:
        factor = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return LinearResponse(None, "", "hessian not positive definite")
    # (H^-1)_μμ = X X^T with X = L^-T restricted to the first n rows: solve L^T X = E_μ
    inverse_rows = np.linalg.solve(factor.T, np.linalg.solve(factor, np.eye(2 * n)[:, :n]))
    covariance = inverse_rows[:n]
    return _checked(0.5 * (covariance + covariance.T), "dense")


def _conjugate_gradients(objective: Any, eta: np.ndarray) -> LinearResponse:
    n = objective.dim
    operator = LinearOperator((2 * n, 2 * n), matvec=lambda v: objective.hessp(eta, v))
    columns = []
    for i in range(n):
        rhs = np.zeros(2 * n)
        rhs[i] = 1.0
        column, info = cg(operator, rhs, rtol=1e-8, maxiter=20 * n)
        if info != 0:
            return LinearResponse(None, "", f"conjugate gradients did not converge ({info})")
        columns.append(column[:n])
    covariance = np.stack(columns, axis=1)
    return _checked(0.5 * (covariance + covariance.T), "cg")


def _checked(covariance: np.ndarray, method: str) -> LinearResponse:
    if not np.isfinite(covariance).all() or (np.diag(covariance) <= 0).any():
        return LinearResponse(None, "", "covariance not positive")
    try:
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return LinearResponse(None, "", "covariance not positive definite")
    return LinearResponse(covariance, method, "ok")


def covariance_dataarray(approx: Any, covariance: np.ndarray) -> xr.DataArray:
    """The covariance labelled by latent coordinate: dims ``latent``, ``latent_bis``."""
    labels = latent_labels(approx)
    return xr.DataArray(covariance, dims=("latent", "latent_bis"),
                        coords={"latent": labels, "latent_bis": labels},
                        name="linear_response_covariance")  # fmt: skip


def mean_dataarray(approx: Any, mean: np.ndarray) -> xr.DataArray:
    """A flat latent mean labelled by coordinate: dim ``latent``."""
    return xr.DataArray(mean, dims=("latent",), coords={"latent": latent_labels(approx)},
                        name="warm_start_mean")  # fmt: skip
