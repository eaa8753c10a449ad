import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from pymc_adadelta import Adadelta, AdadeltaStep, AdadeltaUpdates, adadelta

from .conftest import regression_model, skip_on_pymc_jax_shape_bug


def test_neither_argument_returns_an_optimizer():
    opt = adadelta(learning_rate=0.5, rho=0.9, epsilon=1e-5)
    assert isinstance(opt, Adadelta)
    assert opt.hyperparameters.describe() == {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-5}


@pytest.mark.parametrize("which", ["loss_or_grads", "params"])
def test_exactly_one_argument_raises_like_pymc(which):
    a = pytensor.shared(1.0)
    kwargs = {"loss_or_grads": a * 2} if which == "loss_or_grads" else {"params": [a]}
    with pytest.raises(ValueError, match="Please provide both"):
        adadelta(**kwargs)
    with pytest.raises(ValueError, match="Please provide both"):
        pm.adadelta(**kwargs)


def test_both_arguments_return_updates_with_state():
    a = pytensor.shared(np.ones(3), name="a")
    updates = adadelta((a**2).sum(), [a])
    assert isinstance(updates, AdadeltaUpdates) and isinstance(updates, dict)
    assert updates.state.names == ("a",)
    assert a in updates and updates.state.buffers[0] in updates


def test_scalar_loss_and_gradient_list_give_the_same_step():
    a = pytensor.shared(np.array([1.0, -2.0]), name="a")
    loss = (a**2).sum()
    f_loss = pytensor.function([], [], updates=adadelta(loss, [a]))
    f_loss()
    from_loss = a.get_value()
    a.set_value(np.array([1.0, -2.0]))
    f_grads = pytensor.function([], [], updates=adadelta([2 * a], [a]))
    f_grads()
    np.testing.assert_array_equal(a.get_value(), from_loss)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rho": 1.0}, ValueError, r"rho must be in \[0, 1\), got 1.0"),
        ({"rho": -0.1}, ValueError, r"rho must be in \[0, 1\), got -0.1"),
        ({"epsilon": 0.0}, ValueError, r"epsilon must be > 0, got 0.0"),
        ({"epsilon": -1e-6}, ValueError, r"epsilon must be > 0"),
        ({"learning_rate": 0.0}, ValueError, r"learning_rate must be > 0, got 0.0"),
        ({"learning_rate": float("nan")}, ValueError, r"learning_rate must be > 0"),
        ({"learning_rate": "fast"}, TypeError, r"learning_rate must be a number"),
        ({"rho": pytensor.shared(1.5)}, ValueError, r"rho must be in \[0, 1\).*1.5"),
        ({"epsilon": pt.vector()}, ValueError, r"epsilon must be a scalar"),
        ({"rho": np.array(1.5)}, ValueError, r"rho must be in \[0, 1\), got 1.5"),
        ({"epsilon": np.array([1e-6])}, TypeError, r"epsilon must be a number"),
        ({"learning_rate": pytensor.shared(np.inf)}, ValueError, r"learning_rate must be > 0"),
    ],
)
def test_bad_hyperparameters_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        adadelta(**kwargs)


def test_params_that_are_not_shared_variables():
    x = pt.vector("x")
    with pytest.raises(TypeError, match=r"params\[0\] must be a shared variable.*x"):
        adadelta((x**2).sum(), [x])


def test_gradients_of_wrong_number_or_shape():
    a = pytensor.shared(np.ones(3), name="a")
    b = pytensor.shared(np.ones((2, 2)), name="b")
    with pytest.raises(ValueError, match="holds 1 gradient expressions for 2 parameters"):
        adadelta([a * 2], [a, b])
    with pytest.raises(ValueError, match=r"loss_or_grads\[1\] has 1 dimensions but params\[1\]"):
        adadelta([a * 2, a * 2], [a, b])
    with pytest.raises(ValueError, match=r"loss_or_grads\[0\] has shape \(4,\)"):
        adadelta([pt.zeros(4)], [a])
    with pytest.raises(ValueError, match="scalar loss or a list of gradients"):
        adadelta(a * 2, [a])


def _fit_params(model, method, optimizer, n=500, mode=None):
    with model:
        approx = pm.fit(
            n, method=method, obj_optimizer=optimizer, random_seed=7, progressbar=False,
            compile_kwargs={"mode": mode} if mode else None,
        )  # fmt: skip
    return {p.name: p.get_value() for p in approx.params}


def fit_params_or_skip(model, method, optimizer, mode):
    with skip_on_pymc_jax_shape_bug(mode):
        return _fit_params(model, method, optimizer, mode=mode)


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_same_numbers_as_pm_adadelta_float64(method, backend_mode):
    model = regression_model()
    theirs = fit_params_or_skip(model, method, pm.adadelta(), backend_mode)
    ours = fit_params_or_skip(model, method, adadelta(), backend_mode)
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_same_numbers_as_pm_adadelta_float32_without_float64(method):
    with pytensor.config.change_flags(floatX="float32"):
        model = regression_model()
        theirs = _fit_params(model, method, pm.adadelta())
        opt = adadelta()
        ours = _fit_params(model, method, opt)
        ours_graph, theirs_graph = (
            step_graph(model, method, o) for o in (adadelta(), pm.adadelta())
        )
    for name, value in theirs.items():
        assert ours[name].dtype == np.float32
        np.testing.assert_allclose(ours[name], value, rtol=2e-4, atol=2e-4)
    assert opt.state.buffers[0].dtype == "float32"
    (node,) = [n for n in ours_graph.apply_nodes if isinstance(n.op, AdadeltaStep)]
    assert {v.dtype for v in node.inputs + node.outputs} == {"float32"}
    # PyMC 6 keeps a few float64 scalars of its own; ours must add none.
    assert count_float64(ours_graph) <= count_float64(theirs_graph)


def step_graph(model, method, optimizer):
    with model:
        inference = pm.ADVI() if method == "advi" else pm.FullRankADVI()
        return inference.objective.step_function(obj_optimizer=optimizer).maker.fgraph


def count_float64(fgraph):
    return sum(getattr(v, "dtype", None) == "float64" for v in fgraph.variables)


@pytest.mark.parametrize("value", [np.array(0.9), np.float32(0.9), np.array(0.9, dtype="float32")])
def test_zero_dimensional_arrays_are_accepted_like_pm_adadelta(value):
    a = pytensor.shared(np.array([1.0, -2.0]), name="a")
    theirs = pytensor.function([], [], updates=pm.adadelta((a**2).sum(), [a], rho=value))
    theirs()
    expected = a.get_value()
    a.set_value(np.array([1.0, -2.0]))
    updates = adadelta((a**2).sum(), [a], rho=value, epsilon=np.array(1e-6))
    pytensor.function([], [], updates=updates)()
    np.testing.assert_allclose(a.get_value(), expected, rtol=1e-6)
    assert adadelta(rho=value).hyperparameters.rho == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        (lambda t: -0.1, ValueError, r"learning_rate \(from the schedule <lambda>\) .*got -0.1"),
        (lambda t: 0.0, ValueError, r"learning_rate .*must be > 0, got 0.0"),
        (lambda t: np.nan, ValueError, r"learning_rate .*must be > 0, got nan"),
        (lambda t: 0.1 * pt.cast(t, "float64") - 0.05, ValueError, r"got -0.05 at step 0"),
        (lambda t: pt.ones(2), ValueError, r"learning_rate .*must return a scalar"),
        (lambda t: "fast", TypeError, r"learning_rate .*must return a pytensor scalar"),
    ],
)  # fmt: skip
def test_constant_schedule_values_are_checked_when_the_graph_is_built(schedule, error, match):
    a = pytensor.shared(np.ones(2), name="a")
    with pytest.raises(error, match=match):
        adadelta((a**2).sum(), [a], learning_rate=schedule)


def _steps_until_error(mode, updates, n=10):
    step = pytensor.function([], [], updates=updates, mode=mode)
    for i in range(n):
        try:
            step()
        except ValueError as error:
            return i, str(error)
    return n, None


def test_schedule_crossing_zero_stops_at_that_step(backend_mode):
    a = pytensor.shared(np.ones(2), name="a")
    updates = adadelta((a**2).sum(), [a], learning_rate=lambda t: 0.5 - 0.1 * t)
    if backend_mode == "JAX":  # compiled JAX cannot raise: the parameters become NaN
        pytensor.function([], [], updates=updates, mode=backend_mode).__call__()
        return
    taken, message = _steps_until_error(backend_mode, updates)
    assert taken == 5  # t = 5 gives 0: refused before anything changes
    assert message is not None and message.startswith("learning_rate must be > 0")
    if backend_mode != "NUMBA":
        assert "on step 6 (step count 5" in message
    assert updates.state.n_steps == 5 and np.isfinite(a.get_value()).all()


@pytest.mark.parametrize(
    ("name", "value"), [("rho", 1.0), ("rho", np.nan), ("epsilon", 0.0), ("learning_rate", -1.0)]
)
def test_shared_hyperparameter_set_invalid_between_steps(backend_mode, name, value):
    if backend_mode == "JAX":
        pytest.skip("compiled JAX cannot raise; its kernel makes the parameters NaN")
    a = pytensor.shared(np.ones(2), name="a")
    shared = {"rho": 0.9, "epsilon": 1e-6, "learning_rate": 0.5}
    shared = {k: pytensor.shared(np.asarray(v), name=k) for k, v in shared.items()}
    updates = adadelta((a**2).sum(), [a], **shared)
    step = pytensor.function([], [], updates=updates, mode=backend_mode)
    step()
    before = a.get_value().copy()
    shared[name].set_value(np.asarray(value))
    with pytest.raises(ValueError, match=f"^{name} must be"):
        step()
    np.testing.assert_array_equal(a.get_value(), before)
    assert updates.state.n_steps == 1
