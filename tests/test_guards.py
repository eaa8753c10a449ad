import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, DivergenceGuard

from .conftest import regression_model


def fitted(n=2):
    optimizer = Adadelta()
    with regression_model():
        approx = pm.fit(n, obj_optimizer=optimizer, progressbar=False, random_seed=1)
    return optimizer, approx


def test_nan_in_a_parameter_stops_names_the_variable_and_restores(model):
    optimizer = Adadelta()
    guard = DivergenceGuard(optimizer, every=1)
    seen = {}

    def poison(approx, losses, i):
        mu = approx.params[0]
        seen[i] = (mu.get_value().copy(), optimizer.state.buffers[0].get_value().copy())
        if i == 25:
            value = mu.get_value()
            value[-1] = np.nan  # sigma_log__ is the last entry of mu
            mu.set_value(value)

    with model:
        approx = pm.fit(100, obj_optimizer=optimizer, callbacks=[poison, guard],
                        progressbar=False, random_seed=2)  # fmt: skip
    assert guard.stop_reason == "non-finite" and guard.stopped_at == 25
    assert guard.affected == ["sigma_log__"]
    np.testing.assert_array_equal(approx.params[0].get_value(), seen[24][0])
    np.testing.assert_array_equal(optimizer.state.buffers[0].get_value(), seen[24][1])
    assert len(approx.hist) == 24  # PyMC drops the step that raised StopIteration


def test_rising_loss_stops_and_flat_noisy_loss_does_not():
    _, approx = fitted()
    rng = np.random.default_rng(0)
    flat = 100 + rng.normal(size=6000)
    guard = DivergenceGuard(every=1, window=1000)
    for i in range(1, len(flat) + 1):
        guard(approx, flat[:i], i)
    assert guard.stop_reason is None
    rising = flat + np.linspace(0, 30, len(flat))
    guard = DivergenceGuard(every=1, window=1000)
    with pytest.raises(StopIteration, match="kept rising"):
        for i in range(1, len(rising) + 1):
            guard(approx, rising[:i], i)
    assert guard.stop_reason == "rising-loss" and guard.stopped_at < 2000


def test_restore_after_pymc_raises_on_a_nan_loss(model):
    optimizer = Adadelta()
    guard = DivergenceGuard(optimizer, every=1)
    with model:
        inference = pm.ADVI(random_seed=3)
        inference.fit(20, obj_optimizer=optimizer, callbacks=[guard], progressbar=False)
    good = inference.approx.params[0].get_value().copy()
    inference.approx.params[1].set_value(np.full(4, np.nan))
    with pytest.raises(FloatingPointError):
        inference.refine(5, progressbar=False)
    guard.restore()
    np.testing.assert_array_equal(inference.approx.params[0].get_value(), good)
    assert np.isfinite(inference.approx.params[1].get_value()).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "adadelta"}, TypeError, "optimizer must be an Adadelta or None"),
        ({"every": 0}, ValueError, "every must be an integer >= 1, got 0"),
        ({"window": 5}, ValueError, "window must be 0 .off. or at least 20 steps, got 5"),
        ({"threshold": -1.0}, ValueError, "threshold must be a number > 0"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DivergenceGuard(**kwargs)
