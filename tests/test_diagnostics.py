import warnings

import pymc as pm
import pytest

from pymc_adadelta import adadelta, psis_khat
from pymc_adadelta.output.diagnostics import ApproximationWarning

from .conftest import centered_schools, collinear_regression, gaussian_means


def fit_advi(model: pm.Model, n: int) -> object:
    with model:
        return pm.fit(n, obj_optimizer=adadelta(), progressbar=False, random_seed=1)


def test_khat_flags_mean_field_on_the_centered_schools():
    approx = fit_advi(centered_schools(), 3_000)
    with pytest.warns(ApproximationWarning, match="try NUTS|Try NUTS") as caught:
        assert psis_khat(approx, random_seed=1) > 0.7
    assert caught[0].filename == __file__  # points at the caller's line
    assert "no linear-response covariance: not a FitResult" in str(caught[0].message)


def test_khat_flags_mean_field_on_collinear_predictors():
    with pytest.warns(ApproximationWarning):
        assert psis_khat(fit_advi(collinear_regression(), 5_000), random_seed=1) > 0.7


def test_khat_passes_an_exact_approximation():
    approx = fit_advi(gaussian_means(), 5_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximationWarning)
        assert psis_khat(approx, random_seed=1) < 0.5
    assert psis_khat(approx, random_seed=1) == psis_khat(approx, random_seed=1)


@pytest.mark.parametrize(("draws", "match"), [(0, "draws must be a positive integer, got 0"),
                                              (2.5, "got 2.5"), (24, "at least 25")])  # fmt: skip
def test_bad_draws(draws, match):
    approx = fit_advi(centered_schools(), 10)
    with pytest.raises(ValueError, match=match):
        psis_khat(approx, draws)


def test_particles_have_no_density():
    with centered_schools():
        approx = pm.fit(5, method="svgd", progressbar=False, random_seed=1,
                        inf_kwargs={"n_particles": 4})  # fmt: skip
    with pytest.raises(ValueError, match="Empirical"):
        psis_khat(approx)


def test_another_models_approximation_is_refused():
    approx = fit_advi(centered_schools(), 10)
    with pytest.raises(ValueError, match="another model"):
        psis_khat(approx, model=centered_schools())
