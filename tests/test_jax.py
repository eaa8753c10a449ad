import numpy as np
import pytest

from pymc_adadelta import fit, to_arviz
from pymc_adadelta.approx.static_shapes import give_static_shapes

from .conftest import normal_mean_model, regression_model

pytest.importorskip("jax")


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_fit_on_jax_leaves_numpy_values_that_pymc_can_sample(method):
    result = fit(200, model=regression_model(), method=method, backend="jax",
                 convergence=None, progressbar=False, random_seed=1)  # fmt: skip
    assert result.stop_reason == "max_steps" and result.n_steps == 200
    values = [p.get_value(borrow=True) for p in result.approx.params]
    values += [b.get_value(borrow=True) for b in result.optimizer.state.buffers]
    assert all(type(v) is np.ndarray for v in values)  # pymc#8360
    draws = result.approx.sample(20, random_seed=1)
    assert draws.posterior["beta"].shape[:2] == (1, 20)
    assert np.isfinite(draws.posterior["beta"].values).all()
    exported = to_arviz(result, draws=30, random_seed=1)
    assert exported["posterior"]["beta"].sizes["draw"] == 30


def test_fit_on_jax_converges_to_the_posterior():
    model, post_mean, post_sd = normal_mean_model()
    result = fit(model=model, backend="jax", progressbar=False, random_seed=2)
    assert result.converged
    assert abs(result.approx.params[0].get_value()[0] - post_mean) < 0.1 * post_sd


def test_static_shapes_keep_the_values():
    with regression_model():
        import pymc as pm

        approx = pm.FullRankADVI(random_seed=1).approx
    before = {name: p.get_value() for name, p in approx.groups[0].shared_params.items()}
    give_static_shapes(approx)
    for name, param in approx.groups[0].shared_params.items():
        assert param.type.shape == before[name].shape
        np.testing.assert_array_equal(param.get_value(), before[name])
    assert any(p is approx.groups[0].shared_params["mu"] for p in approx.params)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        fit(10, model=regression_model(), backend="tpu", progressbar=False)


def test_resume_on_jax_restores_the_state_and_carries_on(tmp_path):
    def stop_at_60(approx, losses, i):
        if i == 60:
            raise KeyboardInterrupt

    kwargs = {"backend": "jax", "convergence": None, "progressbar": False, "random_seed": 3}
    path = tmp_path / "fit.npz"
    first = fit(120, model=regression_model(), checkpoint=path, checkpoint_every=50,
                callbacks=[stop_at_60], **kwargs)  # fmt: skip
    assert first.stop_reason == "interrupted"
    rest = fit(120, model=regression_model(), resume=path, **kwargs)
    assert rest.resumed_from == 50 and rest.n_steps == 120
    assert np.isfinite(rest.approx.hist).all() and len(rest.approx.hist) == 120
