"""`to_arviz` and `psis_khat` on minibatch models: dims on the full data, unreadable data,
and arguments checked (and named) before any work."""

import shutil
import warnings

import numpy as np
import pymc as pm
import pytest

import pymc_adadelta as pa
from pymc_adadelta._compat import arviz_group

N, BATCH = 3_000, 100
RNG = np.random.default_rng(21)
X = RNG.normal(size=N)
Y = 1.0 + 2.0 * X + 0.8 * RNG.normal(size=N)


def quiet_fit(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pa.fit(2_000, progressbar=False, random_seed=1, **kwargs)


@pytest.fixture(scope="module")
def minibatch_with_dims():
    """A ``pm.Minibatch`` regression whose observed variable has dims of the batch length."""
    coords = {"obs": np.arange(BATCH), "coef": ["intercept", "slope"]}
    with pm.Model(coords=coords):
        xb, yb = pm.Minibatch(pm.Data("x", X), pm.Data("y_all", Y), batch_size=BATCH)
        b = pm.Normal("b", 0, 5, dims="coef")
        pm.Normal("y", b[0] + b[1] * xb, 0.8, observed=yb, total_size=N, dims="obs")
        return quiet_fit()


def test_a_minibatch_model_with_dims_exports_its_full_data_indexed_by_row(minibatch_with_dims):
    data = pa.to_arviz(minibatch_with_dims, draws=50, random_seed=1, khat_draws=100)
    observed = arviz_group(data, "observed_data")
    assert observed["y"].dims == ("obs",)
    np.testing.assert_array_equal(observed["y"], Y)  # the full rows, not one batch
    np.testing.assert_array_equal(observed["obs"], np.arange(N))  # not the batch's labels
    assert list(arviz_group(data, "posterior")["coef"].values) == ["intercept", "slope"]
    assert np.isfinite(data.attrs["psis_khat"])


def test_data_whose_length_matches_its_coords_keep_the_coordinate_values():
    with pm.Model(coords={"obs": ["a", "b", "c", "d"]}):
        mu = pm.Normal("mu")
        pm.Normal("y", mu, 1.0, observed=[0.1, -0.3, 0.2, 0.5], dims="obs")
        result = quiet_fit()
    data = pa.to_arviz(result, draws=50, random_seed=1, khat_draws=100)
    assert list(arviz_group(data, "observed_data")["obs"].values) == ["a", "b", "c", "d"]


def streamed_fit(path, rows):
    """A regression whose rows ``(x, y)`` are streamed from a zarr store at ``path``."""
    zarr = pytest.importorskip("zarr")
    draw = np.random.default_rng(6)
    x = draw.normal(size=rows)
    store = zarr.create_array(path, shape=(rows, 2), chunks=(5_000, 2), dtype="f8")
    store[:] = np.column_stack([x, 0.5 + 2.0 * x + draw.normal(size=rows)])
    source = zarr.open_array(path, mode="r")
    with pm.Model():
        data = pm.Data("rows", source[:BATCH])
        b = pm.Normal("b", 0, 5, shape=2)
        pm.Normal("y", b[0] + b[1] * data[:, 0], 1.0, observed=data[:, 1], total_size=rows)
        with pa.StreamingBatches(source, "rows", batch_size=BATCH, random_seed=0) as stream:
            return quiet_fit(callbacks=[stream])


@pytest.fixture(scope="module")
def store_deleted(tmp_path_factory):
    """A fit on 24,000 streamed rows (the subsampled log p applies), its store then deleted."""
    path = tmp_path_factory.mktemp("gone") / "rows.zarr"
    result = streamed_fit(path, 24_000)
    before = pa.to_arviz(result, draws=100, random_seed=1, khat_draws=500)
    shutil.rmtree(path)
    return result, before


@pytest.mark.parametrize("exact_lp", [False, True])
def test_unreadable_data_are_named_and_the_approximation_is_not_blamed(store_deleted, exact_lp):
    result, before = store_deleted
    assert before.attrs["psis_khat_flag"] == "ok"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = pa.to_arviz(result, draws=100, random_seed=1, khat_draws=500, exact_lp=exact_lp)
    assert not [w for w in caught if issubclass(w.category, pa.ApproximationWarning)]
    assert any("could not be read" in str(w.message) and "is gone" in str(w.message)
               for w in caught)  # fmt: skip
    assert np.isnan(data.attrs["psis_khat"])
    assert data.attrs["psis_khat_flag"].startswith("k-hat not computed: log p is NaN")
    assert "not because of the approximation" in data.attrs["psis_khat_flag"]
    assert np.isnan(arviz_group(data, "sample_stats")["lp"]).all()


@pytest.mark.parametrize("exact_lp", [False, True])
def test_psis_khat_on_unreadable_data_raises_about_the_data(store_deleted, exact_lp):
    result, _ = store_deleted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="could not be read") as raised:
            pa.psis_khat(result, 500, random_seed=1, exact_lp=exact_lp)
    assert "puts mass where the model has none" not in str(raised.value)
    assert not [w for w in caught if issubclass(w.category, pa.ApproximationWarning)]


@pytest.mark.parametrize("seed", ["x", 1.5, -1])
def test_a_bad_random_seed_is_named_by_to_arviz_and_psis_khat(minibatch_with_dims, seed):
    with pytest.raises(TypeError, match="random_seed must be None, a non-negative integer"):
        pa.to_arviz(minibatch_with_dims, 100, random_seed=seed)
    with pytest.raises(TypeError, match="random_seed must be None, a non-negative integer"):
        pa.psis_khat(minibatch_with_dims, random_seed=seed)


@pytest.mark.parametrize("khat_draws", ["8k", 0, 2.5, None])
def test_a_bad_khat_draws_is_named_before_any_draw(minibatch_with_dims, khat_draws):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is evaluated, so nothing warns
        with pytest.raises(ValueError, match="khat_draws must be a positive integer"):
            pa.to_arviz(minibatch_with_dims, 100, khat_draws=khat_draws)


def test_good_seeds_of_every_accepted_kind_still_export(minibatch_with_dims):
    for seed in (None, 3, [1, 2], np.random.SeedSequence(4), np.random.default_rng(5)):
        data = pa.to_arviz(minibatch_with_dims, 30, random_seed=seed, khat_draws=30)
        assert arviz_group(data, "posterior")["b"].shape == (1, 30, 2)
