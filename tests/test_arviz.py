import json

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from pymc_adadelta import Convergence, adadelta, fit, plot_history, to_arviz
from pymc_adadelta._compat import ARVIZ_MAJOR, arviz_group, load_arviz
from pymc_adadelta.output.diagnostics import KHAT_DRAWS

from .conftest import arviz_posterior_plot, normal_mean_model

GROUPS = {"posterior", "sample_stats", "observed_data", "constant_data", "vi_parameters",
          "optimization"}  # fmt: skip


def data_model() -> pm.Model:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    with pm.Model(coords={"coef": ["intercept", "slope"], "obs": np.arange(30)}) as model:
        x_data = pm.Data("x", x, dims="obs")
        beta = pm.Normal("beta", 0.0, 1.0, dims="coef")
        sigma = pm.HalfNormal("sigma", 1.0)
        mean = pm.Deterministic("mean", beta[0] + beta[1] * x_data, dims="obs")
        pm.Normal("y", mean, sigma, observed=1.0 + 0.5 * x + rng.normal(size=30), dims="obs")
    return model


@pytest.fixture(scope="module", params=["advi", "fullrank_advi"])
def result(request):
    return fit(400, model=data_model(), method=request.param, convergence=None,
               progressbar=False, random_seed=1)  # fmt: skip


def group(data, name):
    dataset = arviz_group(data, name)
    assert dataset is not None, f"missing group {name}"
    return dataset


def test_groups_dims_and_native_type(result):
    data = to_arviz(result, draws=50, random_seed=1)
    assert type(data).__name__ == ("InferenceData" if ARVIZ_MAJOR == 0 else "DataTree")
    assert all(arviz_group(data, name) is not None for name in GROUPS)
    posterior = group(data, "posterior")
    assert posterior["beta"].dims == ("chain", "draw", "coef")
    assert list(posterior["coef"].values) == ["intercept", "slope"]
    assert posterior["mean"].shape == (1, 50, 30) and posterior["sigma"].min() > 0
    np.testing.assert_allclose(group(data, "constant_data")["x"], data_model()["x"].get_value())
    assert group(data, "observed_data")["y"].dims == ("obs",)


def test_sample_stats_weights_are_lp_minus_logq(result):
    stats = group(to_arviz(result, draws=50, random_seed=1), "sample_stats")
    np.testing.assert_allclose(stats["log_weight"], stats["lp"] - stats["logq"])
    assert np.isfinite(stats["lp"]).all()


def test_vi_parameters_are_the_fitted_ones(result):
    params = group(to_arviz(result, draws=10, random_seed=1), "vi_parameters")
    mu = result.approx.groups[0].params_dict["mu"].get_value()
    np.testing.assert_allclose(params["beta"].sel(vi_stat="mean"), mu[:2])
    np.testing.assert_allclose(params["sigma_log__"].sel(vi_stat="mean"), mu[2])
    sd = params["beta"].sel(vi_stat="sd").to_numpy()
    if "L_tril" in result.approx.groups[0].params_dict:
        cov = params["cov"]
        assert cov.dims == ("latent", "latent_bis")
        assert list(cov["latent"].values) == ["beta[0]", "beta[1]", "sigma_log__"]
        np.testing.assert_allclose(cov.to_numpy(), cov.to_numpy().T)
        np.testing.assert_allclose(np.sqrt(np.diag(cov)[:2]), sd)
    else:
        assert "cov" not in params
        np.testing.assert_allclose(
            sd, np.logaddexp(0, result.approx.groups[0].params_dict["rho"].get_value()[:2])
        )


def test_optimization_history_and_attrs(result):
    data = to_arviz(result, draws=100, random_seed=1)
    history = group(data, "optimization")
    assert history.sizes["iteration"] == 400 and np.isfinite(history["loss"]).all()
    assert history["step_size"].dims == ("tracked_iteration", "param", "variable")
    attrs = data.attrs
    assert attrs["n_steps"] == 400 and attrs["stop_reason"] == "max_steps"
    assert attrs["converged"] == 0 and attrs["optimizer"] == "Adadelta"
    assert attrs["warm_start"] == "ok"
    assert json.loads(attrs["optimizer_hyperparameters"])["rho"] == 0.95
    assert attrs["method"] in ("advi", "fullrank_advi") and "pymc_version" in attrs
    assert np.isfinite(attrs["psis_khat"]) and attrs["psis_khat_draws"] == KHAT_DRAWS


def test_seed_makes_draws_reproducible(result):
    first, second = (group(to_arviz(result, 20, random_seed=5), "posterior") for _ in range(2))
    xr.testing.assert_equal(first, second)
    other = group(to_arviz(result, 20, random_seed=6), "posterior")
    assert not np.allclose(first["beta"], other["beta"])


def test_arviz_functions_accept_the_export(result):
    import arviz as az

    data = to_arviz(result, draws=200, random_seed=1)
    summary = az.summary(data, var_names=["beta", "sigma"])
    assert len(summary) == 3
    means = group(data, "posterior")["beta"].mean(("chain", "draw")).to_numpy()
    fitted = result.approx.groups[0].params_dict["mu"].get_value()[:2]
    assert np.allclose(means, fitted, atol=0.2)
    import matplotlib.pyplot as plt

    plt.close("all")
    arviz_posterior_plot(data, var_names=["sigma"])
    assert any(ax.has_data() for ax in plt.gcf().axes)  # something was drawn
    plt.close("all")


def test_round_trip_through_netcdf(result, tmp_path):
    data = to_arviz(result, draws=30, random_seed=1)
    path = tmp_path / "fit.nc"
    data.to_netcdf(path)
    loaded = load_arviz(path)
    for name in GROUPS:
        xr.testing.assert_allclose(group(loaded, name), group(data, name))
    assert loaded.attrs["stop_reason"] == "max_steps"
    assert len(plot_history(loaded).axes) == 4


def test_plain_approximation_from_pm_fit():
    with data_model():
        approx = pm.fit(50, obj_optimizer=adadelta(), progressbar=False, random_seed=1)
    data = to_arviz(approx, draws=20)
    assert list(group(data, "optimization").data_vars) == ["loss"]
    assert data.attrs["n_steps"] == 50 and "stop_reason" not in data.attrs


def test_particle_approximation_has_no_density():
    with data_model():
        approx = pm.fit(3, method="svgd", progressbar=False, random_seed=1,
                        inf_kwargs={"n_particles": 5})  # fmt: skip
    data = to_arviz(approx, draws=20, random_seed=1)
    assert np.isnan(group(data, "sample_stats")["logq"]).all()
    assert np.isnan(data.attrs["psis_khat"]) and data.attrs["method"] == "svgd"


def test_markers_of_a_converged_fit_are_exported():
    model, _, _ = normal_mean_model()
    rule = Convergence(check_every=500, min_steps=1000, min_window=500)
    result = fit(model=model, convergence=rule, progressbar=False, random_seed=3)
    attrs = to_arviz(result, draws=10).attrs
    assert attrs["converged"] == 1 and attrs["converged_at"] == result.n_steps
    assert attrs["window_start"] == rule.window_start < attrs["converged_at"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"draws": 0}, ValueError, "draws must be a positive integer, got 0"),
        ({"draws": -3}, ValueError, "got -3"),
        ({"model": "other"}, ValueError, "another model"),
    ],
)
def test_bad_input(result, kwargs, error, match):
    if kwargs.get("model") == "other":
        kwargs["model"] = data_model()
    with pytest.raises(error, match=match):
        to_arviz(result, **kwargs)


def test_not_an_approximation():
    with pytest.raises(TypeError, match="approx_or_result must be a pymc Approximation"):
        to_arviz({"mu": 1.0})


def test_log_weights_can_be_skipped(result):
    data = to_arviz(result, draws=50, random_seed=1, log_weights=False)
    assert arviz_group(data, "sample_stats") is None and np.isnan(data.attrs["psis_khat"])
    assert "psis_resampled" not in data.attrs
    assert group(data, "posterior").sizes["draw"] == 50
    with_weights = to_arviz(result, draws=50, random_seed=1)
    assert with_weights.attrs["psis_resampling"] in ("resampled", "weights change nothing")


def test_export_says_which_covariance(result):
    data = to_arviz(result, draws=2000, random_seed=1, khat_draws=2000)
    assert data.attrs["covariance"] == "linear_response" and "covariance_reason" not in data.attrs
    lr_sd = np.sqrt(np.diag(result.warm_start.covariance.to_numpy()))
    drawn = group(data, "posterior")["beta"].std(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(drawn, lr_sd[:2], rtol=0.1)
    raw = to_arviz(result, draws=50, random_seed=1, covariance="approximation")
    assert raw.attrs["covariance"] == "approximation"
    assert raw.attrs["covariance_reason"] == "requested"
    xr.testing.assert_equal(group(raw, "vi_parameters"), group(data, "vi_parameters"))


def test_plain_approximation_exports_itself():
    with data_model():
        approx = pm.fit(50, obj_optimizer=adadelta(), progressbar=False, random_seed=1)
    data = to_arviz(approx, draws=20)
    assert data.attrs["covariance"] == "approximation"
    assert data.attrs["covariance_reason"] == "not a FitResult"
    with pytest.raises(ValueError, match="there is none"):
        to_arviz(approx, draws=20, covariance="linear_response")


def test_exported_khat_is_psis_khat(result):
    from pymc_adadelta import psis_khat

    data = to_arviz(result, draws=100, random_seed=4)
    assert data.attrs["psis_khat_draws"] == KHAT_DRAWS
    assert data.attrs["psis_khat"] == pytest.approx(psis_khat(result, random_seed=4), abs=1e-9)


def test_the_warm_start_optimum_is_exported_unless_the_refinement_moved_the_mean(result):
    """A refined mean within 0.1 sd of the optimum is Monte Carlo error: the optimum is kept."""
    from dataclasses import replace

    from pymc_adadelta.approx.corrected import MEAN_NOISE_SDS, choose_covariance
    from pymc_adadelta.approx.draws import gaussian_moments

    fitted = np.concatenate([gaussian_moments(g).mean for g in result.approx.groups])
    sd = np.sqrt(np.diag(result.warm_start.covariance))
    near = fitted + 0.5 * MEAN_NOISE_SDS * sd
    close = replace(result, warm_start=result.warm_start._replace(mean=near))
    kept = choose_covariance(result.approx, close)
    assert kept.label == "linear_response" and kept.mean_label == "warm_start"
    np.testing.assert_allclose(kept.mean, near)
    moved = replace(result, warm_start=result.warm_start._replace(mean=fitted + 2 * sd))
    chosen = choose_covariance(result.approx, moved)
    assert chosen.mean_label == "fit"
    np.testing.assert_allclose(chosen.mean, fitted)
    data = to_arviz(moved, draws=20, random_seed=1, khat_draws=20)
    assert data.attrs["mean"] == "fit"


def test_a_list_of_fits_is_one_chain_each(result):
    data = to_arviz([result, result], draws=30, random_seed=1, log_weights=False)
    assert group(data, "posterior").sizes["chain"] == 2
    assert group(data, "posterior").sizes["draw"] == 30
    default = to_arviz([result, result], random_seed=1, log_weights=False)
    assert group(default, "posterior").sizes["draw"] == 2000  # 4,000 in all
    with pytest.raises(ValueError, match="empty list"):
        to_arviz([])
