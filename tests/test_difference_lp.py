"""The subsampled full-data log density of minibatch models (difference estimator)."""

import functools
import itertools
import shutil
import warnings

import numpy as np
import pymc as pm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import pymc_adadelta as pa
import pymc_adadelta.approx.difference_lp as dl
from pymc_adadelta.approx.full_data import FullData, full_data
from pymc_adadelta.output.diagnostics import evaluate_in_chunks

N = 30_000
RNG = np.random.default_rng(5)
X = RNG.normal(size=(N, 3))
BETA = np.array([1.0, -0.5, 0.25])
Y = X @ BETA + 0.7 * RNG.normal(size=N)


def regression(rows: int = N) -> pm.Model:
    """Normal regression on ``pm.Minibatch`` data: three slopes and a log-transformed sd.

    ``b`` has dims, so its value variable has no static shape.
    """
    with pm.Model(coords={"slope": ["x0", "x1", "x2"]}) as model:
        xs, ys = pm.Minibatch(X[:rows], Y[:rows], batch_size=100)
        b = pm.Normal("b", 0, 3, dims="slope")
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", pm.math.dot(xs, b), sigma, observed=ys, total_size=rows)
    return model


def numpy_logp(b: np.ndarray, log_sigma: np.ndarray, rows: int) -> np.ndarray:
    """The reference: full-data log p per draw, on the unconstrained scale (Jacobian in)."""
    sigma = np.exp(log_sigma)
    loglik = stats.norm.logpdf(Y[:rows], (X[:rows] @ b.T).T, sigma[:, None]).sum(axis=1)
    prior = stats.norm.logpdf(b, 0, 3).sum(axis=1) + stats.halfnorm.logpdf(sigma, scale=2)
    return loglik + prior + log_sigma


def posterior_draws(rows: int, draws: int, rng: np.random.Generator, spread: float = 1.0):
    """Draws around the least-squares answer, ``spread`` times its sds wide."""
    b_hat, *_ = np.linalg.lstsq(X[:rows], Y[:rows], rcond=None)
    sd_b = 0.7 / np.sqrt(rows)
    b = b_hat + spread * sd_b * rng.standard_t(30, size=(draws, 3))
    log_sigma = np.log(0.7) + spread * rng.normal(size=draws) / np.sqrt(2 * rows)
    return {"b": b, "sigma_log__": log_sigma}


@functools.cache
def small_regression(rows: int) -> pm.Model:
    return regression(rows)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    spread=st.floats(0.1, 20.0),
    rows=st.sampled_from([240, 600]),
)
def test_with_every_row_in_both_samples_the_estimate_is_the_exact_log_density(seed, spread, rows):
    # the three terms are then exact, whatever the draws: only the algebra is checked
    values = posterior_draws(rows, 40, np.random.default_rng(seed), spread)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dl, "HESSIAN_ROWS", rows)
        patch.setattr(dl, "RESIDUAL_ROWS", rows)
        whole = full_data(small_regression(rows))
        estimate = dl.difference_logp(whole, values, np.random.default_rng(seed))
    expected = numpy_logp(values["b"], values["sigma_log__"], rows)
    np.testing.assert_allclose(estimate.lp, expected, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(estimate.error_sd, 0.0)
    assert (estimate.hessian_rows, estimate.residual_rows, estimate.length) == (rows, rows, rows)


def test_the_estimate_is_within_its_stated_error_of_the_exact_log_density():
    values = posterior_draws(N, 400, np.random.default_rng(2), spread=1.5)
    estimate = dl.difference_logp(full_data(regression()), values, np.random.default_rng(3))
    error = estimate.lp - numpy_logp(values["b"], values["sigma_log__"], N)
    assert estimate.residual_rows < N  # estimated, not exact
    assert np.all(estimate.error_sd > 0)
    assert estimate.reached() <= dl.TARGET_ERROR_SD
    assert np.abs(error).max() < 6 * estimate.error_sd.max()
    assert np.mean(np.abs(error) < 3 * estimate.error_sd) > 0.9
    assert abs(error.mean()) < 0.02  # unbiased: the draws share the samples, so a loose bound


def test_the_subsample_grows_until_the_stated_error_reaches_the_target():
    values = posterior_draws(N, 300, np.random.default_rng(4), spread=3.0)
    whole = full_data(regression())
    loose = dl.difference_logp(whole, values, np.random.default_rng(5), target_sd=1.0)
    tight = dl.difference_logp(whole, values, np.random.default_rng(5), target_sd=0.01)
    assert tight.residual_rows > loose.residual_rows or tight.hessian_rows > loose.hessian_rows
    assert tight.reached() < loose.reached()


@pytest.mark.parametrize(
    ("length", "dim", "draws", "expected"),
    [(1_000_000, 21, 8000, True), (10_000, 3, 8000, False), (1_000_000, 500, 8000, False),
     (100_000, 21, 20, False)],
)  # fmt: skip
def test_the_estimator_is_used_only_where_it_costs_much_less(length, dim, draws, expected):
    assert dl.worth_subsampling(length, dim, draws) is expected


def test_a_full_data_model_or_few_rows_are_evaluated_exactly():
    values = posterior_draws(N, 10, np.random.default_rng(6))
    with pm.Model() as plain:
        pm.Normal("b", 0, 3, shape=3)
        pm.HalfNormal("sigma", 2)
    assert dl.subsampled_logp(plain, values, np.random.default_rng(0)) is None
    assert dl.subsampled_logp(regression(2_000), values, np.random.default_rng(0)) is None


def test_unreadable_data_give_nan_with_a_warning(monkeypatch):
    def gone(self, start, stop):
        raise OSError("the store is gone")

    monkeypatch.setattr(FullData, "read", gone)
    values = posterior_draws(N, 2000, np.random.default_rng(7))
    with pytest.warns(UserWarning, match="could not be read .*store is gone"):
        estimate = dl.subsampled_logp(regression(), values, np.random.default_rng(0))
    assert estimate is not None and np.isnan(estimate.lp).all()


def test_an_error_above_twice_the_target_is_said(monkeypatch):
    monkeypatch.setattr(dl, "TARGET_ERROR_SD", 1e-6)
    values = posterior_draws(N, 200, np.random.default_rng(8))
    with pytest.warns(UserWarning, match="error sd of up to .* exact_lp=True"):
        dl.subsampled_logp(regression(), values, np.random.default_rng(0))


@pytest.fixture(scope="module")
def fitted():
    model = regression()
    return model, pa.fit(model=model, random_seed=1, progressbar=False)


def test_to_arviz_states_the_estimate_and_agrees_with_the_exact_export(fitted):
    _, result = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no error-too-large warning
        estimated = pa.to_arviz(result, 500, random_seed=2, khat_draws=3000)
    exact = pa.to_arviz(result, 500, random_seed=2, khat_draws=3000, exact_lp=True)
    attrs = estimated.attrs
    assert attrs["lp_estimator"].startswith("difference")
    assert 0 < attrs["lp_error_sd"] <= dl.TARGET_ERROR_SD
    assert attrs["lp_data_rows"] == N and attrs["lp_residual_rows"] < N
    assert exact.attrs["lp_estimator"] == "exact" and "lp_error_sd" not in exact.attrs
    assert "lp_error_sd" in estimated["sample_stats"] and "lp_error_sd" not in exact["sample_stats"]
    # the same proposal draws (the subsample is drawn after them): lp within the error
    lp, lp_exact = estimated["sample_stats"]["lp"].values, exact["sample_stats"]["lp"].values
    np.testing.assert_allclose(lp, lp_exact, atol=6 * attrs["lp_error_sd"])
    assert abs(attrs["psis_khat"] - exact.attrs["psis_khat"]) < 0.1


def test_the_export_after_a_fit_compiles_nothing(fitted, monkeypatch):
    """The fit compiled the rows' log density and gradient; the export reuses them."""
    from pymc_adadelta.approx import row_taylor

    _, result = fitted

    def compile_again(*args, **kwargs):
        raise AssertionError("the export compiled the rows' function again")

    monkeypatch.setattr(row_taylor, "_compile", compile_again)
    data = pa.to_arviz(result, 200, random_seed=4, khat_draws=2000)
    assert data.attrs["lp_estimator"].startswith("difference")


def test_psis_khat_draws_the_same_subsample_as_to_arviz(fitted):
    _, result = fitted
    data = pa.to_arviz(result, 200, random_seed=9, khat_draws=2000, resample="never")
    khat = pa.psis_khat(result, 2000, random_seed=9, warn=False)
    assert khat == pytest.approx(data.attrs["psis_khat"], abs=1e-12)
    exact = pa.psis_khat(result, 2000, random_seed=9, warn=False, exact_lp=True)
    # near-Gaussian: log weights spread by a few hundredths of a nat, the estimate's error
    # is comparable, and a k-hat far below 0.5 moves by about 0.1 (no decision changes)
    assert max(khat, exact) < 0.3 and abs(exact - khat) < 0.2


def test_a_too_narrow_approximation_is_flagged_with_the_estimate_as_with_exact_lp(fitted):
    model, result = fitted
    approx = result.approx
    rho = approx.groups[0].params_dict["rho"]  # sd = softplus(rho): a third of the fit's
    saved = rho.get_value()
    rho.set_value(np.log(np.expm1(np.logaddexp(0.0, saved) / 3)))
    try:
        kwargs = {"random_seed": 3, "warn": False, "covariance": "approximation"}
        estimated = pa.psis_khat(approx, 2000, model=model, **kwargs)
        exact = pa.psis_khat(approx, 2000, model=model, exact_lp=True, **kwargs)
    finally:
        rho.set_value(saved)
    assert estimated > 0.7 and exact > 0.7
    assert estimated == pytest.approx(exact, abs=0.1)


def streamed_regression(path, chunk_rows):
    """Two slopes and a sd, the rows ``(x0, x1, y)`` streamed from a zarr store at ``path``."""
    zarr = pytest.importorskip("zarr")
    rows = np.column_stack([X[:, :2], Y])
    store = zarr.create_array(path, shape=rows.shape, chunks=(chunk_rows, 3), dtype="float64")
    store[:] = rows
    with pm.Model() as model:
        data = pm.Data("rows", rows[:100])
        b = pm.Normal("b", 0, 3, shape=2)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", data[:, :2] @ b, sigma, observed=data[:, 2], total_size=N)
        stream = pa.StreamingBatches(store, "rows", batch_size=100, random_seed=0)
    return model, stream


def test_a_streamed_zarr_source_is_read_once_and_estimated_within_the_stated_error(tmp_path):
    model, stream = streamed_regression(tmp_path / "rows.zarr", 7_000)
    b_hat, *_ = np.linalg.lstsq(X[:, :2], Y, rcond=None)
    draw = np.random.default_rng(11)
    values = {"b": b_hat + 0.02 * draw.normal(size=(300, 2)),
              "sigma_log__": np.log(0.75) + 0.01 * draw.normal(size=300)}  # fmt: skip
    whole = full_data(model)
    reads = []
    read = whole.read
    whole.read = lambda start, stop: reads.append((start, stop)) or read(start, stop)
    estimate = dl.difference_logp(whole, values, np.random.default_rng(0))
    assert sorted(reads) == reads and reads[0][0] == 0 and reads[-1][1] == N  # one pass
    assert all(a[1] == b[0] for a, b in itertools.pairwise(reads))
    error = estimate.lp - full_data(model).logp(values)
    assert estimate.residual_rows < N and stream.length == N
    assert np.abs(error).max() < 6 * estimate.error_sd.max()


def test_an_exact_evaluation_that_will_take_long_says_so_first(monkeypatch):
    monkeypatch.setattr(dl, "MAX_DIM", 2)  # the model has 4 coordinates
    monkeypatch.setattr(dl, "SLOW_TERMS", 1e5)
    values = posterior_draws(N, 20, np.random.default_rng(12))
    with pytest.warns(UserWarning, match="all 30000 rows at each of 20 draws .*log_weights=False"):
        assert dl.subsampled_logp(regression(), values, np.random.default_rng(0)) is None


@pytest.mark.parametrize("exact_lp", [False, True])
def test_an_export_after_the_zarr_store_is_deleted_gives_nan_lp_and_says_why(tmp_path, exact_lp):
    model, stream = streamed_regression(tmp_path / "gone.zarr", 5_000)
    draw = np.random.default_rng(13)
    values = {"b": draw.normal(size=(2000, 2)), "sigma_log__": draw.normal(size=2000)}
    shutil.rmtree(tmp_path / "gone.zarr")  # zarr would now read zeros for every row
    with pytest.warns(UserWarning, match="could not be read .*StreamedDataError.*is gone"):
        evaluated = evaluate_in_chunks(model, values, 0, rng=np.random.default_rng(0),
                                       exact_lp=exact_lp)  # fmt: skip
    assert np.isnan(evaluated.lp).all() and stream.length == N
    assert evaluated.unavailable  # the data, not the approximation


@pytest.mark.parametrize("flag", ["no", "False", [1], None])
def test_exact_lp_must_be_a_bool_not_a_truthy_string(fitted, flag):
    _, result = fitted
    with pytest.raises(TypeError, match="exact_lp must be True or False, got"):
        pa.to_arviz(result, 10, exact_lp=flag)
    with pytest.raises(TypeError, match="exact_lp must be True or False, got"):
        pa.psis_khat(result, 100, exact_lp=flag)
