import numpy as np
import pymc as pm
import pytest
from scipy import stats

from pymc_adadelta import adadelta
from pymc_adadelta.approx.draws import approximation_draws, evaluate_model, gaussian_moments

from .conftest import ar1_scan_model


@pytest.fixture(scope="module", params=["advi", "fullrank_advi"])
def fitted(request):
    with pm.Model() as model:
        a = pm.Normal("a", 0.0, 1.0, shape=2)
        s = pm.HalfNormal("s", 1.0)
        pm.Deterministic("a_sum", a.sum())
        pm.Normal("y", a.sum(), s, observed=[0.3, -0.2, 0.5])
        approx = pm.fit(300, method=request.param, obj_optimizer=adadelta(),
                        progressbar=False, random_seed=1)  # fmt: skip
    return model, approx


def test_moments_follow_pymcs_parameterization(fitted):
    _, approx = fitted
    (group,) = approx.groups
    moments = gaussian_moments(group)
    np.testing.assert_allclose(moments.mean, group.mean.eval())
    np.testing.assert_allclose(moments.sd, group.std.eval(), rtol=1e-10)
    if moments.chol is not None:
        np.testing.assert_allclose(moments.chol, group.L.eval(), rtol=1e-10)


def test_logq_is_the_gaussian_density_of_the_draws(fitted):
    _, approx = fitted
    draws = approximation_draws(approx, 50, np.random.default_rng(0))
    flat = np.column_stack([draws.values["a"], draws.values["s_log__"]])
    (group,) = approx.groups
    density = stats.multivariate_normal(group.mean.eval(), group.cov.eval())
    np.testing.assert_allclose(draws.logq, density.logpdf(flat), rtol=1e-10)


def test_draws_have_the_approximations_mean_and_sd(fitted):
    _, approx = fitted
    n = 20_000
    draws = approximation_draws(approx, n, np.random.default_rng(1))
    moments = gaussian_moments(approx.groups[0])
    flat = np.column_stack([draws.values["a"], draws.values["s_log__"]])
    np.testing.assert_allclose(flat.mean(0), moments.mean, atol=5 * moments.sd.max() / n**0.5)
    np.testing.assert_allclose(flat.std(0), moments.sd, rtol=0.03)


def test_model_values_and_log_density_match_pymc(fitted):
    model, approx = fitted
    draws = approximation_draws(approx, 5, np.random.default_rng(2))
    evaluated = evaluate_model(model, draws.values)
    logp = model.compile_logp()
    for k in range(5):
        point = {name: value[k] for name, value in draws.values.items()}
        assert evaluated.lp[k] == pytest.approx(logp(point), rel=1e-10)
    np.testing.assert_allclose(evaluated.posterior["s"], np.exp(draws.values["s_log__"]))
    np.testing.assert_allclose(evaluated.posterior["a_sum"], draws.values["a"].sum(1))
    assert set(evaluated.posterior) == {"a", "s", "a_sum"}


def test_a_scan_model_is_evaluated_draw_by_draw_with_the_same_values():
    """Scan graphs are compiled at one point and looped (5x faster than vectorized)."""
    model = ar1_scan_model()
    rng = np.random.default_rng(3)
    values = {"phi_interval__": rng.normal(size=7), "sigma_log__": rng.normal(size=7)}
    out = evaluate_model(model, values)
    logp = model.compile_logp()
    expected = [logp({k: v[i] for k, v in values.items()}) for i in range(7)]
    np.testing.assert_allclose(out.lp, expected, rtol=1e-10)
    np.testing.assert_allclose(out.posterior["sigma"], np.exp(values["sigma_log__"]))
    assert out.posterior["phi"].shape == (7,)
