import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import IterateAveraging, adadelta


def record_params(history):
    def callback(approx, losses, i):
        history[i] = [p.get_value().copy() for p in approx.params]

    return callback


@pytest.mark.parametrize("keep_last", [False, True])
def test_average_equals_the_mean_of_the_iterates(model, keep_last):
    history = {}
    averaging = IterateAveraging(start=11, n=30, keep_last=keep_last)
    with model:
        approx = pm.fit(30, obj_optimizer=adadelta(), callbacks=[record_params(history), averaging],
                        progressbar=False, random_seed=4)  # fmt: skip
    assert averaging.count == 20
    for k, name in enumerate(["mu", "rho"]):
        expected = np.mean([history[i][k] for i in range(11, 31)], axis=0)
        np.testing.assert_allclose(averaging.average[name], expected, rtol=1e-12)
        np.testing.assert_array_equal(averaging.last_iterate[name], history[30][k])
        in_approx = approx.params[k].get_value()
        np.testing.assert_allclose(in_approx, history[30][k] if keep_last else expected, rtol=1e-12)


def test_fractional_start_and_manual_apply(model):
    averaging = IterateAveraging(start=0.75, n=40)
    assert averaging.start == 30
    manual = IterateAveraging(start=5)
    with model:
        approx = pm.fit(12, obj_optimizer=adadelta(), callbacks=[manual], progressbar=False)
    assert manual.count == 8
    manual.apply()
    np.testing.assert_array_equal(approx.params[0].get_value(), manual.average["mu"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start": 0.5}, ValueError, r"start=0.5 is a fraction of n: pass n"),
        ({"start": 1.5, "n": 10}, ValueError, r"fractional start must be in \(0, 1\)"),
        ({"start": 0}, ValueError, "start must be >= 1"),
        ({"start": "half"}, TypeError, "start must be a step number"),
        ({"n": 0}, ValueError, "n must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        IterateAveraging(**kwargs)


def test_apply_before_anything_was_averaged():
    with pytest.raises(ValueError, match="nothing was averaged"):
        IterateAveraging(start=10).apply()
