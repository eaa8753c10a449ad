import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import adadelta, psis_khat

SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SD = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def centered_eight_schools() -> pm.Model:
    with pm.Model(coords={"school": list("ABCDEFGH")}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta = pm.Normal("theta", mu, tau, dims="school")
        pm.Normal("y", theta, SCHOOLS_SD, observed=SCHOOLS_Y, dims="school")
    return model


def fit_advi(model: pm.Model, n: int) -> object:
    with model:
        return pm.fit(n, obj_optimizer=adadelta(), progressbar=False, random_seed=1)


def test_khat_flags_mean_field_on_the_centered_eight_schools():
    approx = fit_advi(centered_eight_schools(), 3_000)
    assert psis_khat(approx, random_seed=1) > 0.7


def test_khat_flags_mean_field_on_collinear_predictors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    X = np.column_stack([x, x + 0.01 * rng.normal(size=100), rng.normal(size=100)])
    with pm.Model() as model:
        b = pm.Normal("b", 0.0, 10.0, shape=3)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", X @ b, sigma, observed=X @ [1.0, 1.0, -0.5] + rng.normal(size=100))
    assert psis_khat(fit_advi(model, 5_000), random_seed=1) > 0.7


def test_khat_passes_an_exact_approximation():
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0, shape=2)
        pm.Normal("y", mu, 1.0, observed=np.random.default_rng(0).normal(size=(50, 2)))
    approx = fit_advi(model, 5_000)
    assert psis_khat(approx, random_seed=1) < 0.5
    assert psis_khat(approx, random_seed=1) == psis_khat(approx, random_seed=1)


@pytest.mark.parametrize(("draws", "match"), [(0, "draws must be a positive integer, got 0"),
                                              (2.5, "got 2.5"), (24, "at least 25")])  # fmt: skip
def test_bad_draws(draws, match):
    approx = fit_advi(centered_eight_schools(), 10)
    with pytest.raises(ValueError, match=match):
        psis_khat(approx, draws)


def test_particles_have_no_density():
    with centered_eight_schools():
        approx = pm.fit(5, method="svgd", progressbar=False, random_seed=1,
                        inf_kwargs={"n_particles": 4})  # fmt: skip
    with pytest.raises(ValueError, match="Empirical"):
        psis_khat(approx)


def test_another_models_approximation_is_refused():
    approx = fit_advi(centered_eight_schools(), 10)
    with pytest.raises(ValueError, match="another model"):
        psis_khat(approx, model=centered_eight_schools())
