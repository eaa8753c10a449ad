import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, DivergenceGuard, fit, psis_khat, to_arviz

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


def nan_after(step, flag):
    def callback(approx, losses, i):
        if i == step:
            flag.set_value(1.0)

    return callback


def model_that_breaks():
    """The gradient of ``a`` is NaN once ``flag`` is set; the loss is inf once ``blow`` is."""
    import pytensor.tensor as pt

    with pm.Model() as model:
        flag = pm.Data("flag", 0.0)
        blow = pm.Data("blow", 0.0)
        a = pm.Normal("a", 0.0, 1.0)
        pm.Normal("b", 0.0, 1.0, shape=2)
        pm.Potential("p", pt.switch(flag > 0, pt.sqrt(-1.0 - a**2), 0.0))
        pm.Potential("q", pt.switch(blow > 0, -np.inf, 0.0))
    return model, flag, blow


@pytest.mark.parametrize("step", [1, 3, 25])
def test_divergence_at_any_step_restores_a_finite_state_and_says_where(step):
    model, flag, _ = model_that_breaks()
    result = fit(1000, model=model, warm_start=False, convergence=None,
                 callbacks=[nan_after(step, flag)], progressbar=False, random_seed=1)  # fmt: skip
    assert result.stop_reason == "non-finite"
    assert result.affected == ("a",)
    assert all(np.isfinite(p.get_value()).all() for p in result.approx.params)
    assert result.n_steps == result.optimizer.state.n_steps <= step
    assert len(result.approx.hist) == result.n_steps
    assert np.isfinite(result.approx.hist).all()


def test_an_infinite_loss_stops_at_once():
    model, _, blow = model_that_breaks()
    seen = []

    def blow_at_7(approx, losses, i):
        seen.append(i)
        if i == 7:
            blow.set_value(1.0)

    result = fit(1000, model=model, warm_start=False, convergence=None, callbacks=[blow_at_7],
                 progressbar=False, random_seed=1)  # fmt: skip
    assert result.stop_reason == "non-finite" and max(seen) == 7
    assert all(np.isfinite(p.get_value()).all() for p in result.approx.params)


def test_the_warm_start_solution_is_kept_when_the_first_step_diverges():
    model, flag, _ = model_that_breaks()
    flag.set_value(0.0)
    result = fit(1000, model=model, convergence=None, callbacks=[nan_after(1, flag)],
                 progressbar=False, random_seed=1)  # fmt: skip
    assert result.warm_start.applied and result.stop_reason == "non-finite"
    mu = result.approx.params[0].get_value()
    np.testing.assert_allclose(mu, 0.0, atol=0.1)  # the warm start's optimum: N(0, 1) priors


def test_export_refuses_non_finite_parameters():
    with pm.Model():
        pm.Normal("x", 0.0, 1.0)
        approx = pm.fit(5, progressbar=False)
    approx.params[0].set_value(np.array([np.nan]))
    with pytest.raises(ValueError, match="hold NaN or inf"):
        to_arviz(approx, 10)
    with pytest.raises(ValueError, match="hold NaN or inf"):
        psis_khat(approx, 100)


def test_a_second_ctrl_c_just_after_an_interrupted_fit_is_the_same_double_tap():
    """After a deferral that saw Ctrl-C, another within DOUBLE_TAP_SECONDS is ignored, and
    Python's own handler is back after that (a later Ctrl-C raises as usual)."""
    import os
    import signal
    import time

    from pymc_adadelta.inference.loop import DOUBLE_TAP_SECONDS, deferred_interrupt

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's own handler here")
    with deferred_interrupt() as pressed:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert pressed()
    os.kill(os.getpid(), signal.SIGINT)  # the second tap, right after: ignored
    time.sleep(0.01)
    time.sleep(DOUBLE_TAP_SECONDS)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with deferred_interrupt() as pressed:  # a deferral with no Ctrl-C leaves Python's own
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not pressed()
