"""Scale-free refinement: parameter scales, standardized accumulators, whitened warm start."""

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, fit
from pymc_adadelta.approx.draws import gaussian_moments
from pymc_adadelta.approx.scales import parameter_scales
from pymc_adadelta.approx.warmstart import warm_start
from pymc_adadelta.inference.options import STANDARDIZED_EPSILON


def gaussian_regression(scales, seed=0, n=200):
    """Linear regression whose coefficient i has posterior sd ~ scales[i] / sqrt(n).

    Returns the model and the exact posterior mean and covariance of ``beta``.
    """
    scales = np.asarray(scales, dtype=float)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, scales.size))
    y = X @ rng.normal(size=scales.size) + rng.normal(size=n)
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 10.0 * scales)
        pm.Normal("y", pm.math.dot(X, beta / scales), 1.0, observed=y)
    design = X / scales
    precision = design.T @ design + np.diag(1.0 / (100.0 * scales**2))
    cov = np.linalg.inv(precision)
    return model, cov @ design.T @ y, cov


def test_parameter_scales_follow_the_ELBO_curvature():
    """mu: the sd; rho: (1/sqrt 2) d rho / d log sd, against finite differences."""
    model, _, _ = gaussian_regression([1e-3, 1.0, 1e3])
    approx = pm.ADVI(model=model, random_seed=1).approx
    rho = np.array([-8.0, 0.3, 40.0])
    approx.params[1].set_value(rho)
    (mu_param, mu_scale), (rho_param, rho_scale) = parameter_scales(approx)
    assert mu_param is approx.params[0] and rho_param is approx.params[1]
    np.testing.assert_allclose(mu_scale, np.logaddexp(0.0, rho))
    h = 1e-6
    dlogsd = (np.log(np.logaddexp(0.0, rho + h)) - np.log(np.logaddexp(0.0, rho - h))) / (2 * h)
    np.testing.assert_allclose(rho_scale, 1.0 / (np.sqrt(2.0) * dlogsd), rtol=1e-6)


def test_full_rank_means_scale_with_the_conditional_sd_and_the_factor_stays():
    """Full rank: mu by 1/sqrt(diag(precision)), not the marginal sd; no scale for L."""
    model, _, _ = gaussian_regression([1e-2, 1.0])
    approx = pm.FullRankADVI(model=model, random_seed=1).approx
    group = approx.groups[0]
    chol = np.array([[2.0, 0.0], [1.8, 0.5]])
    packed = chol[np.tril_indices(2)].copy()
    packed[[0, 2]] = np.log(np.expm1(packed[[0, 2]]))  # PyMC's softplus diagonal
    group.params_dict["L_tril"].set_value(packed)
    pairs = {id(p): s for p, s in parameter_scales(approx)}
    precision = np.linalg.inv(chol @ chol.T)
    np.testing.assert_allclose(pairs[id(group.params_dict["mu"])], 1 / np.sqrt(np.diag(precision)))
    assert id(group.params_dict["L_tril"]) not in pairs


def test_a_full_rank_refinement_keeps_the_linear_response_factor():
    model, mean, cov = gaussian_regression([1e-3, 1.0, 1e2])
    result = fit(model=model, method="fullrank_advi", random_seed=1, progressbar=False)
    sd = np.sqrt(np.diag(cov))
    assert result.stop_reason == "converged"
    scaled = result.approx.groups[0].cov.eval() / np.outer(sd, sd)
    np.testing.assert_allclose(scaled, cov / np.outer(sd, sd), atol=1e-3)
    fitted = gaussian_moments(result.approx.groups[0]).mean
    assert (np.abs(fitted - mean) / sd).max() < 0.1


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e3])
def test_refinement_is_scale_free(scale):
    """Posterior sds ~ 7 scale: the refined mean stays within 0.1 sd of the exact one."""
    model, mean, cov = gaussian_regression([scale] * 3)
    result = fit(model=model, random_seed=1, progressbar=False)
    sd = np.sqrt(np.diag(cov))
    fitted = gaussian_moments(result.approx.groups[0]).mean
    assert result.stop_reason == "converged"
    assert (np.abs(fitted - mean) / sd).max() < 0.1
    assert result.optimizer.hyperparameters.describe()["epsilon"] == STANDARDIZED_EPSILON


def test_unstandardized_adadelta_is_what_failed_at_small_scales():
    """The same fit with Adadelta's absolute epsilon = 1e-6 leaves the posterior (sd 7e-6)."""
    model, mean, cov = gaussian_regression([1e-4] * 3)
    result = fit(model=model, random_seed=1, progressbar=False,
                 optimizer=Adadelta(learning_rate=0.3))  # fmt: skip
    fitted = gaussian_moments(result.approx.groups[0]).mean
    assert (np.abs(fitted - mean) / np.sqrt(np.diag(cov))).max() > 10


def test_warm_start_reaches_the_optimum_across_seven_orders_of_magnitude():
    """sds from 7e-6 to 70 in one posterior: exact mean and linear-response covariance."""
    model, mean, cov = gaussian_regression([1e-4, 1e-2, 1.0, 1e3])
    approx = pm.ADVI(model=model, random_seed=1).approx
    started = warm_start(approx, random_seed=1)
    sd = np.sqrt(np.diag(cov))
    assert started.applied and started.covariance_reason == "ok"
    assert (np.abs(np.asarray(started.mean) - mean) / sd).max() < 1e-3
    np.testing.assert_allclose(np.sqrt(np.diag(np.asarray(started.covariance))), sd, rtol=1e-3)
