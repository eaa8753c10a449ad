"""Arguments are checked before any work starts, with messages naming the argument."""

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
