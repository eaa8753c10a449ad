import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest

from pymc_adadelta.approx.draws import gaussian_moments
from pymc_adadelta.approx.warmstart import fixed_draws, warm_start

from .conftest import ar1_scan_model


def normal_means(n=40):
    """Normal means with known noise: the posterior is exactly mean-field Gaussian."""
    y = np.random.default_rng(0).normal([1.0, -2.0], 1.0, size=(n, 2))
    with pm.Model() as model:
        pm.Normal("mu", 0.0, 10.0, shape=2)
        pm.Normal("y", model["mu"], 1.0, observed=y)
    precision = n + 1 / 100
    return model, y.sum(0) / precision, np.full(2, precision**-0.5)


def test_fixed_draws_are_antithetic_and_standardized():
    z = fixed_draws(30, 4, np.random.default_rng(1))
    assert z.shape == (30, 4)
    np.testing.assert_allclose(z[:15], -z[15:])
    np.testing.assert_allclose((z**2).mean(0), 1.0)


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_lands_on_the_exact_optimum_of_a_gaussian_posterior(method):
    model, post_mean, post_sd = normal_means()
    with model:
        inference = pm.ADVI(random_seed=1) if method == "advi" else pm.FullRankADVI(random_seed=1)
    result = warm_start(inference.approx, random_seed=2)
    assert result.applied and result.reason == "ok" and result.iterations > 0
    moments = gaussian_moments(inference.approx.groups[0])
    np.testing.assert_allclose(moments.mean, post_mean, atol=1e-4 * post_sd[0])
    np.testing.assert_allclose(moments.sd, post_sd, rtol=1e-4)


def test_minibatch_models_are_left_alone():
    data = np.random.default_rng(0).normal(size=(200, 1))
    with pm.Model():
        batch = pm.Minibatch(data, batch_size=20)
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Normal("y", mu, 1.0, observed=batch, total_size=200)
        approx = pm.ADVI(random_seed=1).approx
    before = approx.params[0].get_value().copy()
    result = warm_start(approx)
    assert not result.applied and result.reason == "minibatch"
    np.testing.assert_array_equal(approx.params[0].get_value(), before)


def test_an_undefined_density_leaves_the_start_as_it_was():
    with pm.Model():
        x = pm.Normal("x", 0.0, 1.0)
        pm.Potential("impossible", pt.log(-1.0 - x**2))
        approx = pm.ADVI(random_seed=1).approx
    result = warm_start(approx)
    assert not result.applied and np.isnan(result.elbo)
    assert approx.params[0].get_value()[0] == 0.0


def test_particles_are_not_gaussian():
    model, _, _ = normal_means()
    with model:
        approx = pm.SVGD(n_particles=3, random_seed=1).approx
    assert warm_start(approx).reason == "not gaussian"


def test_a_scan_model_is_warm_started_draw_by_draw():
    with ar1_scan_model():
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=1)
    assert started.applied and started.reason == "ok" and started.mode == "loop"
    assert started.covariance_reason == "ok" and started.covariance.shape == (2, 2)
    assert 0.3 < np.tanh(gaussian_moments(approx.groups[0]).mean[0] / 2) < 0.9


def test_a_scan_model_fits():
    from pymc_adadelta import fit

    result = fit(300, model=ar1_scan_model(), convergence=None, progressbar=False,
                 random_seed=1)  # fmt: skip
    assert result.warm_start.applied and result.n_steps == 300


def test_a_vectorization_failure_falls_back_to_the_loop(monkeypatch):
    from pymc_adadelta.approx import fixed_draw

    def broken(*args):
        raise NotImplementedError("grad is not implemented for Composite")

    monkeypatch.setattr(fixed_draw, "_vectorized", broken)
    model, post_mean, post_sd = normal_means()
    with model:
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=2)
    assert started.applied and started.mode == "loop"
    np.testing.assert_allclose(gaussian_moments(approx.groups[0]).mean, post_mean, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(started.covariance)), post_sd, rtol=1e-3)


def test_a_failure_is_reported_and_the_fit_goes_on(monkeypatch):
    from pymc_adadelta import fit
    from pymc_adadelta.approx import warmstart

    def broken(*args, **kwargs):
        raise RuntimeError("compilation failed")

    monkeypatch.setattr(warmstart, "FixedDrawObjective", broken)
    model, _, _ = normal_means()
    with model:
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx)
    assert not started.applied and started.reason == "error: RuntimeError: compilation failed"
    result = fit(200, model=model, convergence=None, progressbar=False, random_seed=1)
    assert not result.warm_start.applied and result.n_steps == 200


def test_a_failed_parameter_check_is_outside_the_support(model):
    """A line search that overflows an sd makes PyMC raise ``sigma > 0``: the objective
    must return inf there (it did raise, and the warm start of sblrc's full rank failed).
    """
    from pymc_adadelta.approx.fixed_draw import FixedDrawObjective

    approx = pm.ADVI(model=model, random_seed=1).approx
    objective = FixedDrawObjective(approx, fixed_draws(4, approx.ndim, np.random.default_rng(0)))
    eta = np.zeros(2 * approx.ndim)
    eta[-1] = 800.0  # log-sd of sigma_log__: exp(800) overflows, sigma = exp(-inf) = 0
    value, grad = objective.value_and_grad(eta)
    assert value == np.inf and not grad.any()
    assert np.isfinite(objective.value_and_grad(np.zeros(2 * approx.ndim))[0])


def test_a_start_whose_draws_overflow_is_shrunk_until_finite():
    """PyMC's starting sds can put fixed draws where log p is -inf (low_dim_gauss_mix's
    full rank): the warm start shrinks them instead of giving up."""
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Potential("wall", -pt.exp(pt.exp(5.0 * x)))
        approx = pm.ADVI(random_seed=1).approx
    started = warm_start(approx, random_seed=1)
    assert started.applied and started.reason == "ok"
    assert np.isfinite(started.elbo) and started.covariance_reason == "ok"
    del model


def test_the_repr_shows_the_covariance_as_its_shape(model):
    approx = pm.ADVI(model=model, random_seed=1).approx
    text = repr(warm_start(approx, random_seed=1))
    assert (
        "covariance=<DataArray covariance (4, 4)>" in text and "mean=<DataArray mean (4,)>" in text
    )
    assert text.startswith("WarmStart(applied=True, reason='ok'") and len(text) < 600
