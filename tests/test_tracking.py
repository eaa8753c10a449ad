import numpy as np
import pymc as pm
import pytest
import xarray as xr

from pymc_adadelta import AccumulatorTracker, Adadelta
from pymc_adadelta.callbacks import tracking

from .conftest import regression_model


def fit_tracked(model, method="advi", n=30, every=1, **kwargs):
    optimizer = Adadelta()
    tracker = AccumulatorTracker(optimizer, every=every)
    with model:
        approx = pm.fit(
            n, method=method, obj_optimizer=optimizer, callbacks=[tracker], progressbar=False,
            random_seed=5, **kwargs,
        )  # fmt: skip
    return optimizer, tracker, approx


def expected_last_row(optimizer, approx, param, var):
    accs = optimizer.accumulators(approx)[param][var]
    eps = 1e-6
    g, u = np.nanmean(accs["sq_grad"]), np.nanmean(accs["sq_delta"])
    return np.sqrt(g), np.sqrt(u), np.sqrt(u + eps) / np.sqrt(g + eps)


@pytest.mark.parametrize("block_columns", [0, 10_000])  # the per-step and per-block paths
@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_history_matches_the_optimizer_state(model, method, block_columns, monkeypatch):
    monkeypatch.setattr(tracking, "BLOCK_COLUMNS", block_columns)
    monkeypatch.setattr(tracking, "BLOCK", 4)
    optimizer, tracker, approx = fit_tracked(model, method=method, n=30, every=3)
    history = tracker.history
    assert isinstance(history, xr.Dataset)
    assert list(history["iteration"].values) == list(range(3, 31, 3))
    assert history["grad_rms"].dims == ("iteration", "param", "variable")
    assert list(history["variable"].values) == ["beta", "sigma_log__"]
    np.testing.assert_allclose(history["loss"].values, approx.hist[2::3])
    for param in history["param"].values:
        for var in ("beta", "sigma_log__"):
            grad, delta, step = expected_last_row(optimizer, approx, str(param), var)
            last = history.sel(param=param, variable=var).isel(iteration=-1)
            np.testing.assert_allclose(last["grad_rms"], grad, rtol=1e-12)
            np.testing.assert_allclose(last["delta_rms"], delta, rtol=1e-12)
            np.testing.assert_allclose(last["step_size"], step, rtol=1e-12)


def test_storage_grows_past_its_capacity(model):
    optimizer = Adadelta()
    tracker = AccumulatorTracker(optimizer, capacity=4)
    with model:
        pm.fit(150, obj_optimizer=optimizer, callbacks=[tracker], progressbar=False)
    assert tracker.history.sizes["iteration"] == 150
    assert np.all(np.isfinite(tracker.history["grad_rms"].values))


def test_svgd_particles_are_tracked_per_variable():
    _, tracker, _ = fit_tracked(
        regression_model(), method="svgd", n=6, inf_kwargs={"n_particles": 4}
    )
    history = tracker.history
    assert list(history["param"].values) == ["histogram"]
    assert np.all(history["grad_rms"].values > 0)


def test_tracker_is_a_callback_and_rejects_bad_arguments():
    tracker = AccumulatorTracker(Adadelta())
    assert callable(tracker) and len(tracker) == 0
    with pytest.raises(ValueError, match="recorded nothing"):
        _ = tracker.history
    with pytest.raises(TypeError, match="optimizer must be a pymc_adadelta.Adadelta"):
        AccumulatorTracker(pm.adadelta())
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        AccumulatorTracker(Adadelta(), every=0)
    with pytest.raises(ValueError, match="recorded nothing yet"):
        AccumulatorTracker(Adadelta()).history  # noqa: B018


def test_tracker_refuses_an_approximation_the_optimizer_does_not_update(model):
    optimizer, _, _ = fit_tracked(model, n=2)
    with regression_model(seed=1):
        other = pm.ADVI().approx
    fresh = AccumulatorTracker(optimizer)
    with pytest.raises(ValueError, match="does not update parameter 'mu'"):
        fresh(other, np.ones(1), 1)
