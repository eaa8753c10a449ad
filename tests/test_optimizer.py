import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr

from pymc_adadelta import Adadelta, adadelta

from .conftest import numpy_adadelta, regression_model, skip_on_pymc_jax_shape_bug


def fit(model, optimizer, n=50, method="advi", mode=None, **kwargs):
    with model:
        return pm.fit(
            n, method=method, obj_optimizer=optimizer, random_seed=3, progressbar=False,
            compile_kwargs={"mode": mode} if mode else None, **kwargs,
        )  # fmt: skip


METHODS = [("advi", {}), ("fullrank_advi", {}), ("svgd", {"inf_kwargs": {"n_particles": 5}}),
           ("asvgd", {})]  # fmt: skip


@pytest.mark.parametrize(("method", "kwargs"), METHODS)
def test_every_pm_fit_method_runs_on_every_backend(method, kwargs, backend_mode, model):
    optimizer = adadelta()
    with skip_on_pymc_jax_shape_bug(backend_mode):
        approx = fit(model, optimizer, n=20, method=method, mode=backend_mode, **kwargs)
    assert optimizer.state.n_steps == 20
    sq_grads = {n: a["sq_grad"] for n, a in optimizer.accumulators().items()}
    assert all(np.all(np.isfinite(v)) and np.any(v > 0) for v in sq_grads.values())
    assert all(np.all(np.isfinite(p.get_value())) for p in approx.params)


def test_step_count_and_accumulators_match_a_numpy_replay():
    a = pytensor.shared(np.array([1.0, -3.0, 0.5]), name="a")
    target = np.array([0.2, 0.1, -0.4])
    opt = Adadelta(learning_rate=0.7, rho=0.9, epsilon=1e-5)
    f = pytensor.function([], [], updates=opt(((a - target) ** 2).sum(), [a]))
    x, s, u = a.get_value(), [np.zeros(3)], [np.zeros(3)]
    for _ in range(25):
        f()
        (x,) = numpy_adadelta([2 * (x - target)], [x], s, u, 0.7, 0.9, 1e-5)
    np.testing.assert_allclose(a.get_value(), x, rtol=1e-13)
    np.testing.assert_allclose(opt.accumulators()["a"]["sq_grad"], s[0], rtol=1e-13)
    np.testing.assert_allclose(opt.accumulators()["a"]["sq_delta"], u[0], rtol=1e-13)
    assert opt.state.n_steps == 25


def test_shared_hyperparameters_change_without_recompiling():
    lr = pytensor.shared(1.0, name="lr")
    a = pytensor.shared(np.ones(2), name="a")
    f = pytensor.function([], [], updates=adadelta((a**2).sum(), [a], learning_rate=lr))
    lr.set_value(1e-300)
    f()
    np.testing.assert_allclose(a.get_value(), np.ones(2), rtol=1e-12)
    lr.set_value(1.0)
    f()
    assert np.all(a.get_value() < 1.0)


def test_learning_rate_schedule_sees_the_step_count():
    a = pytensor.shared(np.array([2.0]), name="a")
    opt = Adadelta(learning_rate=lambda t: 1.0 / (1.0 + pt.cast(t, "float64")))
    f = pytensor.function([], [], updates=opt((a**2).sum(), [a]))
    x, s, u = a.get_value(), [np.zeros(1)], [np.zeros(1)]
    for t in range(6):
        f()
        (x,) = numpy_adadelta([2 * x], [x], s, u, 1.0 / (1.0 + t), 0.95, 1e-6)
    np.testing.assert_allclose(a.get_value(), x, rtol=1e-13)
    assert opt.state_dict()["hyperparameters"]["learning_rate"].startswith("schedule:")


def test_groups_give_the_means_their_own_learning_rate(model):
    grouped = Adadelta(groups={"rho": {"learning_rate": 1e-300}})
    mu_start, rho_start = (p.get_value() for p in fit(model, adadelta(), n=0).params)
    mu, rho = (p.get_value() for p in fit(model, grouped, n=30).params)
    np.testing.assert_allclose(rho, rho_start, rtol=1e-12, atol=1e-250)
    assert np.abs(mu - mu_start).min() > 1e-3


def test_groups_errors():
    with pytest.raises(ValueError, match=r"groups\['mu'\] has unknown hyperparameters \['lr'\]"):
        Adadelta(groups={"mu": {"lr": 0.1}})
    with pytest.raises(ValueError, match="rho must be in"):
        Adadelta(groups={"mu": {"rho": 2.0}})
    a = pytensor.shared(np.ones(2), name="a")
    with pytest.raises(ValueError, match=r"groups refers to parameters \['nope'\].*\['a'\]"):
        Adadelta(groups={"nope": {"rho": 0.5}})((a**2).sum(), [a])


def test_state_before_any_graph_is_a_clear_error():
    with pytest.raises(RuntimeError, match="has not built any updates yet"):
        Adadelta().state  # noqa: B018


def test_state_dict_round_trip_is_exact(model):
    opt = adadelta()
    fit(model, opt, n=40)
    saved = opt.state_dict()
    assert saved["step"] == 40 and saved["layout"][0] == {
        "name": "mu",
        "shape": (4,),
        "dtype": "float64",
    }
    fit(model, opt, n=0)  # builds a fresh, zeroed state for the same layout
    assert opt.state.n_steps == 0
    opt.load_state_dict(saved)
    again = opt.state_dict()
    assert again["step"] == 40
    for name, accs in saved["accumulators"].items():
        for which, value in accs.items():
            np.testing.assert_array_equal(again["accumulators"][name][which], value)


def test_load_state_dict_rejects_other_layouts_and_hyperparameters(model):
    opt = adadelta()
    fit(model, opt, n=5)
    other = adadelta()
    fit(regression_model(n=10), other, n=5, method="fullrank_advi")
    with pytest.raises(ValueError, match="another parameter layout.*L_tril"):
        opt.load_state_dict(other.state_dict())
    newer = {**opt.state_dict(), "format_version": 99}
    with pytest.raises(ValueError, match="format_version 99"):
        opt.load_state_dict(newer)
    changed = opt.state_dict()
    changed["hyperparameters"] = {**changed["hyperparameters"], "rho": 0.5}
    with pytest.raises(ValueError, match="saved with rho=0.5"):
        opt.load_state_dict(changed)
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict({"step": 1})


def test_accumulators_by_model_variable_mean_field(model):
    opt = adadelta()
    approx = fit(model, opt, n=20)
    per_var = opt.accumulators(approx)
    assert set(per_var) == {"mu", "rho"}
    assert per_var["mu"]["beta"]["sq_grad"].shape == (3,)
    assert per_var["mu"]["sigma_log__"]["sq_delta"].shape == ()
    flat = opt.accumulators()["mu"]["sq_grad"]
    np.testing.assert_array_equal(per_var["mu"]["beta"]["sq_grad"], flat[:3])
    ds = opt.accumulators(approx, as_dataset=True)
    assert isinstance(ds, xr.Dataset)
    assert ds["beta"].dims == ("param", "accumulator", "coef")
    assert list(ds["coef"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(ds["beta"].sel(param="mu", accumulator="sq_grad"), flat[:3])


def test_accumulators_by_model_variable_full_rank(model):
    opt = adadelta()
    approx = fit(model, opt, n=20, method="fullrank_advi")
    per_var = opt.accumulators(approx)
    rows = per_var["L_tril"]["beta"]["sq_grad"]
    assert rows.shape == (3, 4)
    flat = opt.accumulators()["L_tril"]["sq_grad"]
    np.testing.assert_array_equal(rows[0, 0], flat[0])
    np.testing.assert_array_equal(rows[1, :2], flat[1:3])
    assert np.isnan(rows[0, 1])
    ds = opt.accumulators(approx, as_dataset=True)
    assert ds["beta_L_tril"].dims == ("accumulator", "coef", "latent")
    assert list(ds["latent"].values) == ["beta[0]", "beta[1]", "beta[2]", "sigma_log__"]


def test_as_dataset_needs_the_approximation():
    opt = adadelta()
    a = pytensor.shared(np.ones(2), name="a")
    opt((a**2).sum(), [a])
    with pytest.raises(ValueError, match="needs the approximation"):
        opt.accumulators(as_dataset=True)
