"""Minibatch models: the full-data log density, and fit() landing on the full-data answer."""

import re
import warnings

import numpy as np
import pymc as pm
import pytest

import pymc_adadelta as pa
from pymc_adadelta.approx.draws import evaluate_model
from pymc_adadelta.approx.full_data import full_data

N = 4000
RNG = np.random.default_rng(3)
X = RNG.normal(size=(N, 3))
Y = X @ np.array([1.0, -0.5, 0.25]) + RNG.normal(size=N)


def build(minibatch: bool) -> pm.Model:
    with pm.Model() as model:
        xs, ys = pm.Minibatch(X, Y, batch_size=100) if minibatch else (X, Y)
        b = pm.Normal("b", 0, 3, shape=3)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", pm.math.dot(xs, b), sigma, observed=ys, total_size=N if minibatch else None)
    return model


def test_a_full_data_model_has_no_full_data_object():
    assert full_data(build(False)) is None


@pytest.mark.parametrize("rows", [N, 1234, 500])
def test_the_minibatch_log_density_is_the_full_data_one_whatever_the_chunks(rows):
    values = {"b": RNG.normal(size=(5, 3)), "sigma_log__": RNG.normal(size=5)}
    full = build(False).compile_logp()
    expected = [full({k: v[i] for k, v in values.items()}) for i in range(5)]
    np.testing.assert_allclose(full_data(build(True)).logp(values, rows=rows), expected)


def observed_with(kind: str) -> pm.Model:
    """`build(True)` with the observed variable's length fixed to the batch's."""
    with pm.Model(coords={"obs": np.arange(100)}) as model:
        xs, ys = pm.Minibatch(X, Y, batch_size=100)
        b = pm.Normal("b", 0, 3, shape=3)
        sigma = pm.HalfNormal("sigma", 2)
        fixed = {"dims": "obs"} if kind == "dims" else {"shape": (100,)}
        pm.Normal("y", pm.math.dot(xs, b), sigma, observed=ys, total_size=N, **fixed)
    return model


@pytest.mark.parametrize("kind", ["dims", "shape"])
def test_dims_or_shape_of_the_observed_variable_do_not_fix_the_rows_of_a_pass(kind):
    # PyMC 5 broadcast the log density of all rows to the dims' batch length (the fit
    # converged hundreds of sds off); shape= failed a shape check on every pass
    from pymc_adadelta.approx.row_taylor import row_functions

    values = {"b": RNG.normal(size=(4, 3)), "sigma_log__": RNG.normal(size=4)}
    whole = full_data(observed_with(kind))
    functions = row_functions(whole, {"b": (3,), "sigma_log__": ()})
    theta = functions.flatten(values)
    total, gradient, _ = functions.evaluate(theta, functions.weights(N), 1.0, *whole.read(0, N))
    full = build(False)
    logp, dlogp = full.compile_logp(), full.compile_dlogp()
    points = [{k: v[i] for k, v in values.items()} for i in range(4)]
    np.testing.assert_allclose(total, [logp(p) for p in points], rtol=1e-10)
    np.testing.assert_allclose(gradient, [dlogp(p) for p in points], rtol=1e-8, atol=1e-8)


def test_evaluate_model_uses_the_full_data_on_a_minibatch_model_and_is_repeatable():
    values = {"b": RNG.normal(size=(4, 3)), "sigma_log__": RNG.normal(size=4)}
    model = build(True)
    first, second = evaluate_model(model, values).lp, evaluate_model(model, values).lp
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, evaluate_model(build(False), values).lp)


@pytest.mark.slow  # two fits with compilation: about 60 s
def test_fit_on_a_minibatch_model_stops_by_itself_on_the_full_data_answer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with build(False):
            reference = pa.fit(progressbar=False, random_seed=1)
        with build(True):
            result = pa.fit(progressbar=False, random_seed=1)
    assert result.stop_reason == "converged" and result.converged
    passes = result.history.attrs["passes"]
    assert passes > 0  # small data: the subsample is the data, so L-BFGS steps count as passes
    sd = reference.approx.std.eval()
    error = np.abs(result.approx.mean.eval() - reference.approx.mean.eval()) / sd
    assert error.max() < 0.2
    np.testing.assert_allclose(result.approx.std.eval() / sd, 1.0, atol=0.15)
    assert pa.psis_khat(result, draws=500, random_seed=1) < 0.7


def test_explicit_options_keep_the_stochastic_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with build(True):
            result = pa.fit(200, convergence=None, progressbar=False, random_seed=1)
    assert result.stop_reason == "max_steps" and result.n_steps == 200


def test_the_full_data_fit_on_chunks_of_a_stream_matches_the_fit_on_all_rows():
    """A subsample of whole zarr chunks, then corrections: the optimum of all the rows."""
    zarr = pytest.importorskip("zarr")
    from pymc_adadelta.approx.draws import gaussian_moments
    from pymc_adadelta.approx.full_data_fit import fit_full_data

    rows = zarr.create_array(zarr.storage.MemoryStore(), shape=(N, 4), chunks=(700, 4),
                             dtype="float64")  # fmt: skip
    rows[:] = np.column_stack([X, Y])

    def optimum(model, subsample):
        approx = pm.MeanField(model=model)
        group = approx.groups[0]
        start = np.concatenate([gaussian_moments(group).mean, group.params_dict["rho"].get_value()])
        return fit_full_data(full_data(model), approx, start, rng=np.random.default_rng(0),
                             subsample=subsample)  # fmt: skip

    reference = optimum(build(True), N)  # the subsample is all the rows: no corrections
    with pm.Model() as streamed:
        data = pm.Data("rows", rows[:100])
        b = pm.Normal("b", 0, 3, shape=3)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", pm.math.dot(data[:, :3], b), sigma, observed=data[:, 3], total_size=N)
        pa.StreamingBatches(rows, "rows", batch_size=100, random_seed=0).close()
    done = optimum(streamed, 1000)
    assert reference.converged and done.converged and done.subsample_rows == 1000
    assert done.loss.size >= 1  # outer steps on the full data
    sd = np.sqrt(np.diag(reference.covariance))
    np.testing.assert_allclose((done.mean - reference.mean) / sd, 0.0, atol=0.05)
    np.testing.assert_allclose(np.sqrt(np.diag(done.covariance)) / sd, 1.0, atol=0.15)


def poisson_regression(rows, total_size, features=20):
    """A Poisson regression on ``rows`` rows whose log-likelihood is scaled to ``total_size``."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, features))
    y = rng.poisson(np.exp(x @ rng.normal(0, 0.3, features) - 0.5)).astype("float64")
    with pm.Model() as model:
        xs, ys = pm.Minibatch(x, y, batch_size=100)
        a = pm.Normal("a", 0, 5)
        b = pm.Normal("b", 0, 5, shape=features)
        pm.Poisson("y", mu=pm.math.exp(a + pm.math.dot(xs, b)), observed=ys, total_size=total_size)
    return model


def test_the_warm_start_finds_the_scale_of_every_coordinate_on_a_few_rows():
    """2,000 rows scaled to 1e6: unscaled L-BFGS stopped with sds off by 0.07-2.2x.

    The subsample fit after it then ran 50-90 iterations in those units (Poisson
    regression, 1e6 rows: 11 passes and 9.5 s in all, instead of 6 passes and 5 s).
    """
    from pymc_adadelta.approx import full_data_fit as fdf
    from pymc_adadelta.approx.draws import gaussian_moments
    from pymc_adadelta.approx.trust_region import scaled_minimize
    from pymc_adadelta.approx.warmstart import fixed_draws

    model = poisson_regression(10_000, 1_000_000)
    approx = pm.MeanField(model=model)
    group = approx.groups[0]
    start = np.concatenate([gaussian_moments(group).mean, group.params_dict["rho"].get_value()])
    whole = full_data(model)
    objective = fdf._Objective(whole, approx, fixed_draws(6, 21, np.random.default_rng(0)))
    rows = tuple(np.asarray(leaf.source, dtype="float64") for leaf in whole.leaves)

    def on_all(phi):
        return objective.on_chunks(phi, iter([rows]), 10_000)

    rough, _ = fdf._rough_fit(objective, tuple(a[:2000] for a in rows), start)
    optimum, result = scaled_minimize(on_all, rough)
    assert result.success
    sd = np.logaddexp(0.0, optimum[21:])
    np.testing.assert_allclose(np.logaddexp(0.0, rough[21:]) / sd, 1.0, atol=0.25)
    warm, iterations, success = fdf._warm_start(objective, rows, start, loose=True)
    assert success and iterations < 100
    np.testing.assert_allclose((warm[:21] - optimum[:21]) / sd, 0.0, atol=fdf.WARM_GTOL * 2)
    np.testing.assert_allclose(np.logaddexp(0.0, warm[21:]) / sd, 1.0, atol=0.05)


def nan_model(rows):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(rows, 3))
    y = x @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=rows)
    x[17, :] = np.inf
    x[rows - 1000, 1] = np.nan
    y[1234] = np.nan  # in the second array: named once the first one is clean
    with pm.Model() as model:
        xs, ys = pm.Minibatch(x, y, batch_size=100)
        b = pm.Normal("b", 0, 3, shape=3)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", pm.math.dot(xs, b), sigma, observed=ys, total_size=rows)
    return model


# N rows are fitted whole (NaNs were fitted silently); 50,000 with outer steps (the error
# came after compiling and the warm start, naming "pm.Minibatch array 0" only)
@pytest.mark.parametrize("rows", [N, 50_000])
def test_nan_rows_of_minibatch_data_are_named_before_anything_is_compiled(rows, monkeypatch):
    from pymc_adadelta.approx import full_data_fit
    from pymc_adadelta.approx.full_data import NonFiniteDataError

    def compiled(*args):
        raise AssertionError("the objective was compiled before the data were checked")

    monkeypatch.setattr(full_data_fit, "_Objective", compiled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nan_model(rows), pytest.raises(NonFiniteDataError) as info:
            pa.fit(progressbar=False, random_seed=1)
    assert str(info.value).startswith(
        f"pm.Minibatch argument 1 of 2, data of the observed variable 'y', has NaN or inf in "
        f"2 of rows 0:{rows} (rows 17, {rows - 1000}): "
    )
    assert "drop or impute these rows before building the model" in str(info.value)


def test_nan_rows_of_a_streamed_source_are_named_with_their_observed_variable():
    """Chunked sources are checked as they are read: the subsample, then every full pass."""
    zarr = pytest.importorskip("zarr")
    from pymc_adadelta.approx.full_data import NonFiniteDataError

    rows = zarr.create_array(zarr.storage.MemoryStore(), shape=(N, 4), chunks=(700, 4),
                             dtype="float64")  # fmt: skip
    values = np.column_stack([X, Y])
    values[2900, 3] = np.nan
    rows[:] = values
    with pm.Model():
        data = pm.Data("rows", values[:100])
        b = pm.Normal("b", 0, 3, shape=3)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", pm.math.dot(data[:, :3], b), sigma, observed=data[:, 3], total_size=N)
        stream = pa.StreamingBatches(rows, "rows", batch_size=100, random_seed=0)
        with warnings.catch_warnings(), pytest.raises(NonFiniteDataError) as info:
            warnings.simplefilter("ignore")
            pa.fit(progressbar=False, random_seed=1, callbacks=[stream])
        stream.close()
    message = (
        r"source, data of the observed variable 'y', has NaN or inf in 1 of rows 0:4000 "
        r"\(rows 2900\): .*drop or impute"
    )
    assert re.match(message, str(info.value))


def test_the_full_data_log_density_names_the_nan_rows_of_the_chunk_it_reads():
    from pymc_adadelta.approx.full_data import NonFiniteDataError

    values = {"b": RNG.normal(size=(2, 3)), "sigma_log__": RNG.normal(size=2)}
    whole = full_data(nan_model(N))
    message = (
        r"pm.Minibatch argument 1 of 2, data of the observed variable 'y', has NaN or inf in "
        r"1 of rows 0:1234 \(rows 17\): "
    )
    with pytest.raises(NonFiniteDataError, match=message):
        whole.logp(values, rows=1234)


def test_full_rank_and_several_groups_on_a_minibatch_model_take_the_full_data_fit():
    """Full rank: the Cholesky factor of the linear-response covariance, no stochastic steps."""
    from pymc.variational.approximations import FullRankGroup, MeanFieldGroup
    from pymc.variational.opvi import Approximation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with build(True) as model:
            full_rank = pa.fit(method="fullrank_advi", progressbar=False, random_seed=1)
            mean_field = pa.fit(progressbar=False, random_seed=1)
            several = Approximation([FullRankGroup([model["b"]]), MeanFieldGroup(None)])
            both = pa.fit(method=pm.KLqp(several), progressbar=False, random_seed=1)
    for result in (full_rank, both):
        assert result.stop_reason == "converged" and "passes" in result.history.attrs
    cov = np.asarray(full_rank.warm_start.covariance)
    np.testing.assert_allclose(full_rank.approx.groups[0].cov.eval(), cov, rtol=1e-6)
    np.testing.assert_allclose(full_rank.approx.mean.eval(), mean_field.approx.mean.eval(),
                               atol=1e-3)  # fmt: skip
    block = both.approx.groups[0].cov.eval()
    np.testing.assert_allclose(block, np.asarray(both.warm_start.covariance)[:3, :3], rtol=1e-6)


def test_progress_in_a_log_is_one_line_per_outer_step_and_a_final_line(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with build(True):
            result = pa.fit(progressbar=True, random_seed=1)
    lines = capsys.readouterr().err.strip().splitlines()
    steps = [line for line in lines if line.startswith("minibatch fit: outer step")]
    assert len(steps) == result.n_steps and "\r" not in "".join(lines)
    assert lines[-1].startswith(f"minibatch fit: {result.stop_reason}, ")
    assert "passes" in lines[-1] and lines[-1].endswith(" s")


@pytest.mark.parametrize("fails", [False, True])
def test_the_full_data_fit_runs_on_one_blas_thread_without_cyclic_collection(fails, monkeypatch):
    """Both as they were afterwards, after an error too (why: `_runtime.lean_runtime`)."""
    import gc

    from threadpoolctl import threadpool_info

    from pymc_adadelta.inference import minibatch

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen = []
    real = minibatch.fit_full_data

    def spy(*args, **kwargs):
        seen.append((gc.isenabled(), set(blas_threads())))
        if fails:
            raise RuntimeError("in the fit")
        return real(*args, **kwargs)

    monkeypatch.setattr(minibatch, "fit_full_data", spy)
    before = blas_threads()
    with warnings.catch_warnings(), build(True):
        warnings.simplefilter("ignore")
        if fails:
            with pytest.raises(RuntimeError, match="in the fit"):
                pa.fit(progressbar=False, random_seed=1)
        else:
            assert pa.fit(progressbar=False, random_seed=1).converged
    assert seen == [(False, {1})]
    assert gc.isenabled() and blas_threads() == before


def test_a_collector_paused_by_the_caller_stays_paused():
    import gc

    from pymc_adadelta._runtime import lean_runtime as _lean_runtime

    gc.disable()
    try:
        with _lean_runtime():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("young", "old", "collects"),
    [(200_000, 500_000, True), (200_000, 900_000, False), (90_000, 100_000, False)],
)
def test_a_full_collection_follows_a_fit_that_made_many_objects(young, old, collects, monkeypatch):
    """Over 100,000 new objects and a quarter of the old ones: a first compile in the process."""
    import gc

    from pymc_adadelta._runtime import _collect_if_due

    calls = []
    monkeypatch.setattr(gc, "get_count", lambda: (young, 0, 0))
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: [None] * old)
    monkeypatch.setattr(gc, "collect", lambda generation=2: calls.append(generation) or 0)
    _collect_if_due()
    assert calls == ([2] if collects else [])


def test_a_potential_on_the_minibatch_data_is_named_in_the_error():
    with pm.Model() as model:
        xs, ys = pm.Minibatch(X, Y, batch_size=100)
        b = pm.Normal("b", 0, 3, shape=3)
        pm.Normal("y", pm.math.dot(xs, b), 1.0, observed=ys, total_size=N)
        pm.Potential("penalty", -pm.math.sum((ys - pm.math.dot(xs, b)) ** 2) * 1e-3)
    with pytest.raises(ValueError, match="'penalty': a prior or potential depends on the"):
        pa.fit(model=model, progressbar=False, random_seed=1)
