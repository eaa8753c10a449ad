import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, Checkpoint, Convergence, FitResult, fit
from pymc_adadelta.inference.options import WARM_LEARNING_RATE

from .conftest import normal_mean_model


def test_fit_stops_by_itself_and_returns_the_average():
    model, post_mean, post_sd = normal_mean_model()
    with model:
        rule = Convergence(check_every=500, min_steps=1000, min_window=500)
        result = fit(progressbar=False, random_seed=3, convergence=rule)
    assert isinstance(result, FitResult)
    assert result.converged and result.stop_reason == "converged"
    assert result.n_steps < 50_000 and result.n_steps == result.convergence.converged_at
    mu = result.approx.params[0].get_value()
    np.testing.assert_allclose(mu, result.convergence.average["mu"])
    assert not np.allclose(mu, result.last_iterate["mu"])
    assert abs(mu[0] - post_mean) < 0.1 * post_sd
    assert result.history.attrs["stop_reason"] == "converged"
    assert result.history.sizes["iteration"] == result.n_steps // 10


def test_fit_without_a_rule_runs_every_step(model):
    result = fit(300, model=model, convergence=None, progressbar=False, random_seed=1)
    assert result.stop_reason == "max_steps" and result.n_steps == 300
    assert not result.converged and result.last_iterate == {}
    assert result.approx.hist.shape == (300,) and np.isfinite(result.approx.hist).all()


def test_fit_with_the_stan_rule_and_full_rank():
    model, _, _ = normal_mean_model()
    result = fit(20_000, model=model, method="fullrank_advi", convergence="stan",
                 progressbar=False, random_seed=2)  # fmt: skip
    assert result.converged and result.convergence.rule == "stan"
    assert result.last_iterate == {}  # the Stan rule does not average


def test_fit_restores_the_last_finite_state_on_nan(model):
    def poison(approx, losses, i):
        if i == 40:
            approx.params[1].set_value(np.full(4, np.nan))

    result = fit(200, model=model, callbacks=[poison], progressbar=False, random_seed=1)
    assert result.stop_reason == "non-finite"
    assert all(np.isfinite(p.get_value()).all() for p in result.approx.params)
    assert result.n_steps < 200


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be a positive number of steps, got 0"),
        ({"method": "nuts"}, ValueError, "method must be one of"),
        ({"optimizer": pm.adadelta()}, TypeError, "optimizer must be a pymc_adadelta.Adadelta"),
        ({"convergence": "soon"}, ValueError, "convergence must be"),
        ({"checkpoint_every": 0}, ValueError, "checkpoint_every must be a positive integer, got 0"),
        ({"resume": True}, ValueError, "resume=True resumes from the checkpoint file"),
        ({"resume": "missing.npz"}, FileNotFoundError, "no checkpoint at 'missing.npz'"),
    ],
)
def test_bad_arguments(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(model=model, progressbar=False, **kwargs)


def test_user_optimizer_keeps_its_state(model):
    optimizer = Adadelta(learning_rate=0.5)
    result = fit(100, model=model, optimizer=optimizer, convergence=None, progressbar=False)
    assert result.optimizer is optimizer and optimizer.state.n_steps == 100


def test_keyboard_interrupt_inside_a_step_returns_the_result(model, tmp_path):
    """A Ctrl-C that could not wait for the end of the step (a second one, say)."""

    def ctrl_c(approx, losses, i):
        if i == 30:
            raise KeyboardInterrupt

    path = tmp_path / "fit.npz"
    result = fit(
        100,
        model=model,
        callbacks=[ctrl_c],
        checkpoint=path,
        checkpoint_every=20,
        convergence=None,
        progressbar=False,
    )
    assert (result.stop_reason, result.n_steps) == ("interrupted", 30)
    assert result.history.sizes["iteration"] == 3
    assert Checkpoint.load(path).step == 20  # the state mid-step is not saved


def test_a_callback_stopping_the_fit_is_reported_as_interrupted(model):
    def stop(approx, losses, i):
        if i == 50:
            raise StopIteration

    result = fit(100, model=model, callbacks=[stop], convergence=None, progressbar=False)
    assert (result.stop_reason, result.n_steps) == ("interrupted", 50)


def test_default_fit_warm_starts_then_averages_briefly():
    model, post_mean, post_sd = normal_mean_model()
    result = fit(model=model, progressbar=False, random_seed=4)
    assert result.warm_start.applied and result.convergence.rule == "mcse"
    assert result.optimizer.hyperparameters.learning_rate == WARM_LEARNING_RATE
    assert result.converged and result.n_steps <= 5_000
    assert abs(result.approx.params[0].get_value()[0] - post_mean) < 0.1 * post_sd


def test_without_warm_start_the_rhat_rule_is_used(model):
    result = fit(300, model=model, warm_start=False, progressbar=False, random_seed=1)
    assert result.warm_start is None and result.convergence.rule == "rhat"
    assert result.optimizer.hyperparameters.learning_rate == 1.0
