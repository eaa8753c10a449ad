"""Structured (multi-group) approximations: every part keys parameters by group."""

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import AccumulatorTracker, Adadelta, Checkpoint, IterateAveraging, fit, to_arviz
from pymc_adadelta.approx.params import param_entries, read_params, write_params


def grouped_model():
    rng = np.random.default_rng(0)
    with pm.Model() as model:
        a = pm.Normal("a", 0.0, 10.0)
        b = pm.Normal("b", 0.0, 10.0)
        s = pm.HalfNormal("s", 2.0)
        x = rng.normal(size=50)
        pm.Normal("y", a + b * x, s, observed=1.0 + 2.0 * x + rng.normal(0, 0.5, 50))
    return model, a, b


def grouped_approx():
    model, a, b = grouped_model()
    with model:
        approx = pm.Approximation([pm.Group([a, b], vfam="fr"), pm.Group(None, vfam="mf")])
    approx.rng = np.random.RandomState(1)  # PyMC's multi-group Approximation lacks .rng
    return approx


def test_labels_name_the_group_when_there_are_several():
    approx = grouped_approx()
    assert [e.label for e in param_entries(approx)] == ["0/mu", "0/L_tril", "1/mu", "1/rho"]
    with pm.Model():
        pm.Normal("x", 0.0, 1.0)
        single = pm.MeanField()
    assert [e.label for e in param_entries(single)] == ["mu", "rho"]


def test_write_params_checks_every_value_before_writing():
    approx = grouped_approx()
    before = read_params(approx)
    bad = dict(before, **{"1/mu": np.zeros(5)})
    with pytest.raises(ValueError, match="1/mu"):
        write_params(approx, bad)
    after = read_params(approx)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_fit_averages_each_group_into_its_own_parameters():
    approx = grouped_approx()
    with approx.model:
        result = fit(method=pm.KLqp(approx), progressbar=False, random_seed=1)
    assert result.converged
    average = result.convergence.average
    assert sorted(average) == ["0/L_tril", "0/mu", "1/mu", "1/rho"]
    for e in param_entries(result.approx):
        np.testing.assert_allclose(e.param.get_value(), average[e.label])
    posterior = to_arviz(result, 500, random_seed=1)["posterior"]
    assert abs(float(posterior["a"].mean()) - 1.0) < 0.3
    assert abs(float(posterior["b"].mean()) - 2.0) < 0.3


def test_accumulators_of_each_variable_come_from_its_own_group():
    approx = grouped_approx()
    optimizer = Adadelta()
    tracker = AccumulatorTracker(optimizer)
    averaging = IterateAveraging(start=50)
    with approx.model:
        pm.KLqp(approx).fit(
            100,
            obj_optimizer=optimizer,
            callbacks=[tracker, averaging],
            progressbar=False,
        )
    slot = next(s for s in optimizer.state.slots if s.param is approx.groups[1].params_dict["mu"])
    own = optimizer.state.accumulator(slot.name, "sq_grad")
    by_variable = optimizer.accumulators(approx)
    np.testing.assert_array_equal(by_variable["mu"]["s_log__"]["sq_grad"], own)
    assert set(by_variable["mu"]) == {"a", "b", "s_log__"}
    assert set(tracker.history["param"].values) == {"0/mu", "0/L_tril", "1/mu", "1/rho"}
    assert sorted(averaging.average) == ["0/L_tril", "0/mu", "1/mu", "1/rho"]


def test_checkpoint_of_a_grouped_fit_restores_each_group(tmp_path):
    approx = grouped_approx()
    optimizer = Adadelta()
    save = Checkpoint(tmp_path / "g.npz", every=50, optimizer=optimizer)
    with approx.model:
        pm.KLqp(approx).fit(100, obj_optimizer=optimizer, callbacks=[save], progressbar=False)
    fresh = grouped_approx()
    Checkpoint.load(tmp_path / "g.npz").restore(fresh)
    saved = Checkpoint.load(tmp_path / "g.npz").params
    for e in param_entries(fresh):
        np.testing.assert_array_equal(e.param.get_value(), saved[e.key])
