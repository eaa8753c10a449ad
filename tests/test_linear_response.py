import numpy as np
import pymc as pm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymc_adadelta.approx import linear_response as lr
from pymc_adadelta.approx.draws import gaussian_moments
from pymc_adadelta.approx.warmstart import warm_start


class Quadratic:
    """A fake objective with Hessian ``h`` everywhere."""

    def __init__(self, h):
        self.h, self.dim = h, h.shape[0] // 2

    def hessp(self, eta, v):
        return self.h @ v

    def hessian(self, eta):
        return self.h


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_dense_and_cg_give_the_mean_block_of_the_inverse_hessian(n, seed):
    a = np.random.default_rng(seed).normal(size=(2 * n, 2 * n))
    h = a @ a.T + 2 * n * np.eye(2 * n)
    expected = np.linalg.inv(h)[:n, :n]
    dense = lr._dense(Quadratic(h), np.zeros(2 * n))
    cg = lr._conjugate_gradients(Quadratic(h), np.zeros(2 * n))
    assert dense.method == "dense" and cg.method == "cg"
    np.testing.assert_allclose(dense.covariance, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cg.covariance, expected, rtol=1e-5, atol=1e-8)


def test_an_indefinite_hessian_gives_no_covariance():
    h = np.diag([1.0, -1.0, 1.0, 1.0])
    response = lr.linear_response(Quadratic(h), np.zeros(4))
    assert response.covariance is None and "positive definite" in response.reason


def conjugate_regression():
    """Known noise, Gaussian prior: the posterior is exactly Gaussian and correlated."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x[:, 1] = x[:, 0] + 0.3 * x[:, 1]
    y = x @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=40)
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 3.0, shape=3)
        pm.Normal("y", pm.math.dot(x, beta), 1.0, observed=y)
    precision = x.T @ x + np.eye(3) / 9.0
    cov = np.linalg.inv(precision)
    return model, cov @ (x.T @ y), cov


def test_equals_the_exact_posterior_covariance_of_a_conjugate_model():
    model, mean, cov = conjugate_regression()
    assert np.abs(cov[0, 1]) / np.sqrt(cov[0, 0] * cov[1, 1]) > 0.9  # strongly correlated
    with model:
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=3)
    assert started.applied and started.covariance_reason == "ok"
    got = started.covariance
    assert got.dims == ("latent", "latent_bis")
    assert list(got["latent"].values) == ["beta[0]", "beta[1]", "beta[2]"]
    np.testing.assert_allclose(got.to_numpy(), cov, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(gaussian_moments(approx.groups[0]).mean, mean, atol=1e-6)
    # mean field alone shrinks the sds; linear response gets them back
    assert (gaussian_moments(approx.groups[0]).sd[:2] < 0.7 * np.sqrt(np.diag(cov))[:2]).all()


def test_mean_field_gets_the_full_covariance_back_from_a_correlated_gaussian():
    sigma = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, -0.5], [0.0, -0.5, 2.0]])
    with pm.Model():
        pm.MvNormal("x", mu=np.array([1.0, 2.0, 3.0]), cov=sigma)
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=1)
    np.testing.assert_allclose(started.covariance.to_numpy(), sigma, rtol=1e-6, atol=1e-9)


def test_conjugate_gradients_agree_with_the_dense_hessian(monkeypatch):
    model, _, cov = conjugate_regression()
    monkeypatch.setattr(lr, "DENSE_MAX_DIM", 0)
    with model:
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=3)
    np.testing.assert_allclose(started.covariance.to_numpy(), cov, rtol=1e-5)


def test_full_rank_starts_at_the_linear_response_factor():
    model, mean, cov = conjugate_regression()
    with model:
        approx = pm.FullRankADVI(random_seed=1).approx
    warm_start(approx, random_seed=3)
    moments = gaussian_moments(approx.groups[0])
    np.testing.assert_allclose(moments.chol @ moments.chol.T, cov, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(moments.mean, mean, atol=1e-6)


def test_covariance_can_be_turned_off():
    model, _, _ = conjugate_regression()
    with model:
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=3, covariance=False)
    assert started.applied and started.covariance is None and started.covariance_reason == "off"


@pytest.mark.parametrize("dim", [lr.CG_MAX_DIM + 1])
def test_too_large_dims_are_reported(dim):
    response = lr.linear_response(Quadratic(np.eye(2 * dim)), np.zeros(2 * dim))
    assert response.covariance is None and response.reason == f"dim {dim} > {lr.CG_MAX_DIM}"


def test_the_result_exposes_the_labelled_covariance(model):
    from pymc_adadelta import fit

    result = fit(model=model, random_seed=1, progressbar=False)
    cov = result.covariance
    assert cov is result.warm_start.covariance and cov.dims == ("latent", "latent_bis")
    assert list(cov.latent.values) == ["beta[0]", "beta[1]", "beta[2]", "sigma_log__"]
    np.testing.assert_allclose(cov.values, cov.values.T)
    assert (np.linalg.eigvalsh(cov.values) > 0).all()
