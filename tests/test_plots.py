import matplotlib

matplotlib.use("Agg")

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Convergence, fit, plot_history, to_arviz

from .conftest import normal_mean_model


@pytest.fixture(scope="module")
def converged():
    model, _, _ = normal_mean_model()
    rule = Convergence(check_every=500, min_steps=1000, min_window=500)
    return fit(model=model, convergence=rule, progressbar=False, random_seed=3)


def line_labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_panels_data_and_markers(converged, tmp_path):
    fig = plot_history(converged, smooth=50)
    loss_ax, *summary_axes = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "grad_rms", "delta_rms", "step_size"]
    raw, smoothed = loss_ax.get_lines()[:2]
    np.testing.assert_array_equal(raw.get_ydata(), converged.approx.hist)
    assert len(smoothed.get_xdata()) == len(converged.approx.hist) - 49
    assert {"averaging starts", "converged"} <= set(line_labels(loss_ax))
    markers = {line.get_label(): line.get_xdata()[0] for line in loss_ax.get_lines()[2:]}
    assert markers["converged"] == converged.n_steps
    assert markers["averaging starts"] == converged.convergence.window_start
    step_size = summary_axes[2]
    assert {"mu: mu", "rho: mu"} <= set(line_labels(step_size))
    assert step_size.get_yscale() == "log"
    loss_line = loss_ax.get_lines()[0]
    np.testing.assert_allclose(loss_line.get_ydata(), converged.approx.hist)


def test_exported_data_plots_the_same(converged):
    from_result = plot_history(converged)
    from_data = plot_history(to_arviz(converged, draws=10))
    for a, b in zip(from_result.axes, from_data.axes, strict=True):
        assert line_labels(a) == line_labels(b)
        np.testing.assert_allclose(a.get_lines()[0].get_ydata(), b.get_lines()[0].get_ydata())


def test_result_method_plots(converged):
    assert len(converged.plot().axes) == 4


def test_a_result_without_history_is_refused(converged):
    import dataclasses

    import xarray as xr

    empty = dataclasses.replace(converged, history=xr.Dataset())
    empty.approx.hist, saved = np.array([]), empty.approx.hist
    try:
        with pytest.raises(ValueError, match="no optimization history"):
            plot_history(empty)
    finally:
        empty.approx.hist = saved


def test_a_trackers_history_from_plain_pm_fit():
    import pymc as pm

    from pymc_adadelta import AccumulatorTracker, Adadelta

    model, _, _ = normal_mean_model()
    optimizer = Adadelta()
    tracker = AccumulatorTracker(optimizer, every=5)
    with model:
        pm.fit(300, obj_optimizer=optimizer, callbacks=[tracker], progressbar=False)
    fig = plot_history(tracker.history)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "grad_rms", "delta_rms", "step_size"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), np.arange(5, 301, 5))


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="result_or_data must be a FitResult"):
        plot_history([1.0, 2.0])


def test_an_export_of_several_fits_draws_one_loss_line_per_fit():
    import matplotlib.pyplot as plt

    with pm.Model():
        pm.Normal("x", 0.0, 1.0, shape=2)
        results = fit(300, chains=2, cores=1, convergence=None, progressbar=False,
                      random_seed=1)  # fmt: skip
    data = results.to_arviz(draws=50, random_seed=1)
    fig = plot_history(data, smooth=10)
    loss_ax = fig.axes[0]
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert {"chain 0", "chain 1"} <= set(labels)
    for chain, result in enumerate(results):
        line = next(ln for ln in loss_ax.get_lines() if ln.get_label() == f"chain {chain}")
        np.testing.assert_allclose(line.get_ydata(), result.approx.hist)
    plt.close(fig)
