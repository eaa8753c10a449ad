import functools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pymc_adadelta import AdadeltaStep
from pymc_adadelta._compat import BACKEND_MODES
from pymc_adadelta.optim.step_counter import COUNTER_BASE, counter_value, split_count

from .conftest import BACKENDS, numpy_adadelta

NDIMS = (0, 1, 2)
TOLERANCE = {"float64": 1e-12, "float32": 2e-5}


@functools.cache
def compiled_step(backend: str, dtype: str):
    accum = pt.matrix("accum", dtype=dtype)
    hyper = pt.matrix("hyper", dtype=dtype)
    params = [pt.tensor(f"p{i}", dtype=dtype, shape=(None,) * nd) for i, nd in enumerate(NDIMS)]
    grads = [pt.tensor(f"g{i}", dtype=dtype, shape=(None,) * nd) for i, nd in enumerate(NDIMS)]
    outputs = AdadeltaStep(len(NDIMS))(accum, hyper, *params, *grads)
    mode = "FAST_COMPILE" if backend == "py" else BACKEND_MODES[backend]
    return pytensor.function([accum, hyper, *params, *grads], outputs, mode=mode)


def shapes_for_ndims():
    side = st.integers(0, 4)
    return st.tuples(st.just(()), st.tuples(side), st.tuples(side, side))


@pytest.mark.parametrize("backend", [*BACKENDS, "py"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=25, deadline=None)
@given(
    shapes=shapes_for_ndims(),
    rho=st.floats(0.0, 0.99),
    eps=st.floats(1e-8, 1e-2),
    lr=st.floats(1e-3, 2.0),
    steps_before=st.integers(0, 2 * COUNTER_BASE),
    data=st.data(),
)
def test_op_matches_numpy_reference(backend, dtype, shapes, rho, eps, lr, steps_before, data):
    if backend == "jax":
        pytest.importorskip("jax")
    values = st.floats(-100, 100, width=32)
    params = [data.draw(hnp.arrays(dtype, s, elements=values)) for s in shapes]
    grads = [data.draw(hnp.arrays(dtype, s, elements=values)) for s in shapes]
    sizes = [p.size for p in params]
    accum = np.abs(data.draw(hnp.arrays(dtype, (2, sum(sizes) + 1), elements=values)))
    accum[:, -1] = split_count(steps_before)
    hyper = np.array([[rho, 1 - rho, eps, lr]] * len(shapes), dtype=dtype)
    bounds = np.cumsum([0, *sizes])
    pieces = list(zip(bounds[:-1], bounds[1:], shapes, strict=True))
    sq_grads = [accum[0, a:b].reshape(s) for a, b, s in pieces]
    sq_deltas = [accum[1, a:b].reshape(s) for a, b, s in pieces]
    sq_grads, sq_deltas = (
        [a.astype(np.float64) for a in sq_grads],
        [a.astype(np.float64) for a in sq_deltas],
    )

    new_accum, *new_params = compiled_step(backend, dtype)(accum, hyper, *params, *grads)

    expected = numpy_adadelta(
        [g.astype(np.float64) for g in grads], [p.astype(np.float64) for p in params],
        sq_grads, sq_deltas, float(hyper[0, 3]), float(hyper[0, 0]), float(hyper[0, 2]),
    )  # fmt: skip
    tol = TOLERANCE[dtype]
    for got, want in zip(new_params, expected, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        new_accum[0, :-1], np.concatenate([a.ravel() for a in sq_grads]), rtol=tol, atol=tol
    )
    np.testing.assert_allclose(
        new_accum[1, :-1], np.concatenate([a.ravel() for a in sq_deltas]), rtol=tol, atol=tol
    )
    assert counter_value(*new_accum[:, -1]) == steps_before + 1


@pytest.mark.parametrize("backend", [*BACKENDS, "py"])
def test_op_rejects_gradient_of_wrong_size(backend):
    f = compiled_step(backend, "float64")
    accum, hyper = np.zeros((2, 1 + 2 + 4 + 1)), np.array([[0.9, 0.1, 1e-6, 1.0]] * 3)
    params = [np.zeros(()), np.zeros(2), np.zeros((2, 2))]
    grads = [np.zeros(()), np.zeros(3), np.zeros((2, 2))]
    with pytest.raises(ValueError) as raised:
        f(accum, hyper, *params, *grads)
    # each backend words it its own way, but it must point at gradient 1 or its sizes
    text = str(raised.value)
    names_it = "gradient 1" in text or ("3" in text and "2" in text) or "shape" in text.lower()
    assert names_it, text


@pytest.mark.parametrize("backend", [*BACKENDS, "py"])
def test_op_rejects_accumulators_of_wrong_size(backend):
    f = compiled_step(backend, "float64")
    accum, hyper = np.zeros((2, 5)), np.array([[0.9, 0.1, 1e-6, 1.0]] * 3)
    params = [np.zeros(()), np.zeros(2), np.zeros((2, 2))]
    with pytest.raises(ValueError, match="accumulators|differ|match"):
        f(accum, hyper, *params, *params)


def test_op_props_and_validation():
    assert AdadeltaStep(2) == AdadeltaStep(2)
    assert AdadeltaStep(2) != AdadeltaStep(2, inplace=True)
    assert AdadeltaStep(2, inplace=True).destroy_map == {0: [0], 1: [2], 2: [3]}
    with pytest.raises(ValueError, match="n_params"):
        AdadeltaStep(0)
    with pytest.raises(ValueError, match="expected 1 parameters and 1 gradients"):
        AdadeltaStep(1)(pt.matrix(), pt.matrix(), pt.vector())


@pytest.mark.parametrize("backend", [*BACKENDS, "py"])
@pytest.mark.parametrize(
    ("column", "value", "name"),
    [(0, 1.0, "rho"), (0, -0.5, "rho"), (2, 0.0, "epsilon"), (3, np.nan, "learning_rate"),
     (3, np.inf, "learning_rate")],
)  # fmt: skip
def test_op_checks_hyperparameters_before_changing_anything(backend, column, value, name):
    f = compiled_step(backend, "float64")
    accum = np.ones((2, 1 + 2 + 4 + 1))
    accum[:, -1] = split_count(41)
    hyper = np.array([[0.9, 0.1, 1e-6, 1.0]] * 3)
    hyper[1, column] = value
    params = [np.ones(()), np.ones(2), np.ones((2, 2))]
    if backend == "jax":  # compiled JAX cannot raise: that parameter becomes NaN
        pytest.importorskip("jax")
        _, *new_params = f(accum, hyper, *params, *params)
        assert np.isnan(new_params[1]).all() and np.isfinite(new_params[0]).all()
        return
    with pytest.raises(ValueError, match=f"^{name} must be") as caught:
        f(accum, hyper, *params, *params)
    if backend != "numba":  # numba's message cannot hold runtime values
        assert "on step 42 (step count 41" in str(caught.value)
    assert counter_value(*accum[:, -1]) == 41 and (accum[:, :-1] == 1).all()
