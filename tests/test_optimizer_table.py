"""The optimizer table: test problems × dtypes × backends against a NumPy reference.

Parabola and Rosenbrock (deterministic gradients, the classic optimizer tests) and a real
PyMC model: the compiled Adadelta steps must match `conftest.numpy_adadelta` step for
step, and the update graph must use the in-place form of `AdadeltaStep`.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pymc_adadelta import adadelta
from pymc_adadelta._compat import BACKEND_MODES
from pymc_adadelta.optim.op import AdadeltaStep

from .conftest import BACKENDS, numpy_adadelta, regression_model


def parabola(x):
    return pt.sum((x - 3.0) ** 2)


def parabola_grad(x):
    return 2.0 * (x - 3.0)


def rosenbrock(x):
    return pt.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


PROBLEMS = {"parabola": (parabola, parabola_grad), "rosenbrock": (rosenbrock, rosenbrock_grad)}
TOLERANCE = {"float64": 1e-12, "float32": 2e-5}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_steps_match_numpy(problem, dtype, backend):
    loss, grad = PROBLEMS[problem]
    start = np.array([-1.2, 1.0, 0.5, 2.0], dtype=dtype)
    x = pytensor.shared(start.copy(), name="x")
    updates = adadelta(loss(x), [x], learning_rate=0.5, rho=0.9, epsilon=1e-6)
    step = pytensor.function([], loss(x), updates=updates, mode=BACKEND_MODES[backend])
    reference, sq_g, sq_d = start.astype(np.float64), [np.zeros(4)], [np.zeros(4)]
    for _ in range(50):
        step()
        (reference,) = numpy_adadelta([grad(reference)], [reference], sq_g, sq_d, 0.5, 0.9, 1e-6)
    value = x.get_value()
    assert value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, reference, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    assert updates.state.n_steps == 50


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_model_steps_match_numpy(backend):
    model = regression_model()
    with model:
        logp = model.logp()
        values = model.value_vars
        start = model.initial_point()
    shared = [pytensor.shared(np.asarray(start[v.name]), name=v.name) for v in values]
    loss = pytensor.graph.clone_replace(-logp, dict(zip(values, shared, strict=True)))
    grads = pytensor.function([], pt.grad(loss, shared))
    updates = adadelta(loss, shared)
    step = pytensor.function([], [], updates=updates, mode=BACKEND_MODES[backend])
    reference = [np.asarray(start[v.name], dtype=np.float64) for v in values]
    sq_g = [np.zeros_like(r) for r in reference]
    sq_d = [np.zeros_like(r) for r in reference]
    for _ in range(20):
        for s, r in zip(shared, reference, strict=True):
            s.set_value(r.copy())
        g = grads()
        step()
        reference = numpy_adadelta(g, reference, sq_g, sq_d, 1.0, 0.95, 1e-6)
    for s, r in zip(shared, reference, strict=True):
        np.testing.assert_allclose(s.get_value(), r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "jax"])  # JAX is functional
def test_the_in_place_rewrite_fires(backend):
    x = pytensor.shared(np.zeros(3), name="x")
    updates = adadelta(parabola(x), [x])
    step = pytensor.function([], [], updates=updates, mode=BACKEND_MODES[backend])
    ops = [node.op for node in step.maker.fgraph.toposort() if isinstance(node.op, AdadeltaStep)]
    assert ops and all(op.inplace for op in ops), ops
    assert all(op.destroy_map for op in ops)
