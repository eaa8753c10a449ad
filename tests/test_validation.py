"""Arguments are checked before any work starts, with messages naming the argument."""

import re

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, fit
from pymc_adadelta._validation import check_callbacks, check_positive_int, check_threshold

from .conftest import regression_model


class Spy:
    def __init__(self):
        self.calls = 0

    def __call__(self, approx, losses, i):
        self.calls += 1


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ([42], r"callbacks\[0\] is not callable"),
        ([Spy], r"callbacks\[0\] is a class"),
        ([lambda a: None], r"callbacks\[0\].*cannot be called"),
        (print, "must be a list"),
    ],
)
def test_bad_callbacks_are_refused_before_the_warm_start(monkeypatch, callbacks, message):
    import pymc_adadelta.inference.single_fit as single_fit

    monkeypatch.setattr(single_fit, "run_warm_start", lambda *a, **k: pytest.fail("warm start"))
    with pytest.raises(TypeError, match=message):
        fit(30, model=regression_model(), callbacks=callbacks, progressbar=False)


def test_good_callbacks_pass():
    spy = Spy()
    assert check_callbacks((spy, print)) == [spy, print]


def test_the_optimizer_class_is_refused_with_what_to_write():
    with regression_model(), pytest.raises(TypeError, match=r"Adadelta\(\)"):
        pm.fit(30, obj_optimizer=Adadelta, progressbar=False)
    with pytest.raises(TypeError, match="optimizer must be a pymc_adadelta.Adadelta"):
        fit(30, model=regression_model(), optimizer=Adadelta, progressbar=False)


def test_pm_fit_keywords():
    model = regression_model()
    start = {name: value + 0.5 for name, value in model.initial_point().items()}
    result = fit(
        30, model=model, start=start, warm_start=False, convergence=None, progressbar=False
    )
    assert result.n_steps == 30
    with pytest.raises(TypeError, match="optimizer=Adadelta"):
        fit(30, model=model, obj_optimizer=Adadelta(), progressbar=False)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['stepsize'\]"):
        fit(30, model=model, stepsize=3, progressbar=False)


def test_numpy_integers_are_positive_integers_everywhere(tmp_path):
    check_positive_int("every", np.int64(3))
    result = fit(
        20,
        model=regression_model(),
        checkpoint=tmp_path / "f.npz",
        checkpoint_every=np.int64(10),
        convergence=None,
        warm_start=False,
        progressbar=False,
    )
    assert result.n_steps == 20
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(
            ValueError, match=f"checkpoint_every must be a positive integer, got {bad!r}"
        ):
            fit(20, model=regression_model(), checkpoint_every=bad, progressbar=False)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), "1", True])
def test_thresholds(value):
    with pytest.raises(ValueError, match="mcse_threshold must be a number > 0"):
        check_threshold("mcse_threshold", value, above=0.0)


@pytest.mark.parametrize("seed", ["x", -1, 1.5, {"a": 1}])
def test_a_bad_random_seed_is_named_before_any_work(model, seed, monkeypatch):
    from pymc_adadelta.inference import single_fit

    monkeypatch.setattr(single_fit, "run_warm_start", lambda *a, **k: pytest.fail("warm start"))
    with pytest.raises(TypeError, match="random_seed must be None"):
        fit(model=model, random_seed=seed, progressbar=False)


def test_resample_always_without_log_weights_is_refused(model):
    from pymc_adadelta import to_arviz

    approx = pm.ADVI(model=model, random_seed=1).approx
    with pytest.raises(ValueError, match="needs the importance weights"):
        to_arviz(approx, resample="always", log_weights=False)


FLAGS = ("average", "warm_start", "progressbar")


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, 1.0, [True]])
def test_a_flag_that_is_not_true_or_false_is_named_before_any_work(model, monkeypatch, flag, value):
    # "no" is truthy: taken as a flag, fit(warm_start="no") ran the warm start
    from pymc_adadelta.inference import fitting

    monkeypatch.setattr(fitting, "fit_single", lambda *a, **k: pytest.fail("fit started"))
    monkeypatch.setattr(fitting, "fit_chains", lambda *a, **k: pytest.fail("fit started"))
    kwargs = {"progressbar": False, flag: value}
    message = f"^{flag} must be True or False, got {re.escape(repr(value))}$"
    with pytest.raises(TypeError, match=message):
        fit(model=model, **kwargs)
    with pytest.raises(TypeError, match=f"^{flag} must be True or False"):
        fit(model=model, chains=2, cores=1, **kwargs)


def test_numpy_booleans_are_flags(model):
    result = fit(20, model=model, average=np.True_, warm_start=np.False_,
                 progressbar=np.False_, convergence=None, random_seed=1)  # fmt: skip
    assert result.n_steps == 20 and result.warm_start is None


@pytest.mark.parametrize("value", ["no", 1, 0.0])
def test_score_must_be_none_true_or_false(model, value):
    message = f"^score must be True or False, got {re.escape(repr(value))}$"
    with pytest.raises(TypeError, match=message):
        fit(20, model=model, score=value, progressbar=False)
    result = fit(20, model=model, score=False, warm_start=False, convergence=None,
                 progressbar=False)  # fmt: skip
    assert result.n_steps == 20


@pytest.mark.parametrize("seed", [True, False, np.True_])
def test_a_boolean_is_not_a_random_seed(model, seed):
    with pytest.raises(TypeError, match=r"random_seed must be None.*a boolean is not a seed"):
        fit(model=model, random_seed=seed, progressbar=False)


def streamed_model(rows):
    with pm.Model() as streamed:
        data = pm.Data("rows", rows[:50])
        mu = pm.Normal("mu")
        pm.Normal("y", mu + data[:, 0], 1.0, observed=data[:, 1], total_size=len(rows))
    return streamed


@pytest.mark.parametrize("seed", ["x", 1.5, -1, True, {"a": 1}, [1, "x"]])
def test_streaming_batches_name_a_bad_random_seed(seed):
    from pymc_adadelta import StreamingBatches

    rows = np.random.default_rng(0).normal(size=(500, 2))
    with pytest.raises(TypeError, match=f"^random_seed must be None.*got {re.escape(repr(seed))}"):
        StreamingBatches(rows, "rows", batch_size=50, model=streamed_model(rows),
                         random_seed=seed)  # fmt: skip


@pytest.mark.parametrize(
    "seed", [None, 3, np.int64(3), [1, 2], np.random.SeedSequence(3), np.random.default_rng(3)]
)
def test_streaming_batches_take_the_seeds_fit_takes(seed):
    from pymc_adadelta import StreamingBatches

    rows = np.random.default_rng(0).normal(size=(500, 2))
    with StreamingBatches(rows, "rows", batch_size=50, model=streamed_model(rows),
                          random_seed=seed) as stream:  # fmt: skip
        stream(None, None, 0)
    assert stream.batches_fed == 2
