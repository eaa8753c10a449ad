"""The full-data fit of minibatch models: its trust region and its checks of the data."""

import itertools
import warnings
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pymc_adadelta as pa
from pymc_adadelta.approx.full_data import full_data
from pymc_adadelta.approx.full_data_fit import _converged
from pymc_adadelta.approx.sources import chunk_bounds
from pymc_adadelta.approx.subsample import SUBSAMPLE_BYTES, subsample_rows, subsample_size
from pymc_adadelta.approx.trust_region import (
    FIRST_RADIUS,
    LOSS_SLACK,
    MIN_RADIUS,
    Region,
    at_edge,
    box_units,
    scaled_minimize,
)


def test_the_region_keeps_the_best_point_and_shrinks_after_the_loss_rose():
    region = Region(np.zeros(4))
    first, second = np.ones(4), 2 * np.ones(4)
    assert region.judge(first, 100.0, np.full(4, 0.5)) is first
    assert region.judge(second, 99.0, np.full(4, 0.25)) is second  # it fell: step from it
    assert region.radius == FIRST_RADIUS and not region.failed
    rose = region.judge(3 * np.ones(4), 99.0 + 2 * LOSS_SLACK, np.zeros(4))
    assert rose is second and region.radius == FIRST_RADIUS / 4  # back to the best
    np.testing.assert_array_equal(region.full_grad, 0.25)  # the best point's gradient
    assert region.judge(second, np.nan, np.zeros(4)) is second and not region.failed
    while region.radius >= MIN_RADIUS:
        region.judge(second, np.inf, np.zeros(4))
    assert region.failed and region.best_loss == 99.0


def test_a_first_point_whose_loss_is_not_finite_fails_at_once():
    region = Region(np.zeros(2))
    region.judge(np.ones(2), np.inf, np.zeros(2))
    assert region.failed and region.best_phi is None


@pytest.mark.parametrize("radius", [0.5, 3.0])
def test_a_step_on_an_unbounded_objective_stops_at_the_radius(radius):
    # phi = (mu, rho): a linear objective is unbounded; the box is radius sds of mu
    # (sd = softplus(rho)) and radius units of rho
    phi = np.array([1.0, -2.0, 0.5, 0.0])
    direction = np.array([1.0, -1.0, 0.0, 1.0])
    new, _ = scaled_minimize(lambda p: (float(direction @ p), direction), phi, radius=radius)
    sd = np.logaddexp(0.0, phi[2:])
    moved = np.abs(new - phi) / np.concatenate([sd, np.ones(2)])
    np.testing.assert_allclose(moved, [radius, radius, 0.0, radius], atol=1e-9)


def test_a_step_on_the_edge_of_the_region_is_said_to_be_there():
    phi = np.array([1.0, -2.0, 0.5, 0.0])
    new, _ = scaled_minimize(lambda p: (float(p[1]), np.array([0.0, 1.0, 0.0, 0.0])), phi,
                             radius=0.5)  # fmt: skip
    assert at_edge(phi, new, 0.5) and not at_edge(phi, phi + 0.1 * box_units(phi), 0.5)


@pytest.mark.parametrize(
    ("steps", "edges", "expected"),
    [
        ([0.005], [False], True),  # moved less than tol
        ([0.005], [True], False),  # cut short by a radius below tol: stuck, not converged
        ([0.5, 0.02, 0.004], [False, False, False], True),
        ([0.08, 0.02], [False, False], True),  # r = 0.25: 0.0067 left
        ([0.08, 0.02], [True, False], False),  # the previous step's length was the radius
        ([0.03, 0.02], [False, False], False),  # r = 0.67: not a fast contraction
    ],
)
def test_only_steps_inside_the_region_tell_that_the_fit_converged(steps, edges, expected):
    assert _converged(steps, edges, tol=0.01) is expected


def minibatch_regression(total_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=30_000)
    y = 1.5 * x + rng.normal(size=30_000)
    with pm.Model() as model:
        xb, yb = pm.Minibatch(x, y, batch_size=500)
        slope = pm.Normal("slope", 0, 5)
        pm.Normal("y", slope * xb, 1.0, observed=yb, total_size=total_size)
    return model


@pytest.mark.parametrize("total_size", [3_000, 300_000])
def test_a_total_size_that_is_not_the_rows_is_an_error_before_compiling(total_size, monkeypatch):
    import pymc_adadelta.approx.full_data_fit as fdf

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before the check")

    monkeypatch.setattr(fdf, "_Objective", no_compiling)
    message = f"total_size={total_size} of the observed variable 'y', but its minibatch data have"
    with pytest.raises(ValueError, match=message):
        pa.fit(model=minibatch_regression(total_size), progressbar=False)


def noncentred_hierarchy(groups=30, rows=60_000):
    rng = np.random.default_rng(0)
    g = rng.integers(groups, size=rows).astype("int32")
    x = rng.normal(size=rows)
    alpha = 0.5 + 0.4 * rng.normal(size=groups)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(alpha[g] + 0.8 * x)))).astype("float64")
    with pm.Model() as model:
        gb, xb, yb = pm.Minibatch(g, x, y, batch_size=1000)
        mu = pm.Normal("mu", 0, 2)
        sigma = pm.HalfNormal("sigma", 1)
        z = pm.Normal("z", 0, 1, shape=groups)
        beta = pm.Normal("beta", 0, 2)
        pm.Bernoulli("y", logit_p=mu + sigma * z[gb] + beta * xb, observed=yb, total_size=rows)
    return model


def fit_saying(model, phrase):
    """`fit` on ``model``, and the messages of its warnings that hold ``phrase``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pa.fit(model=model, random_seed=1, progressbar=False)
    return result, [str(w.message) for w in caught if phrase in str(w.message)]


def test_a_noncentred_hierarchy_does_not_collapse_into_a_converged_funnel():
    # the surrogate objective is unbounded along sigma -> 0: the optimum of the outer step
    # ran off to log sigma = -360 and the fit said "converged" with the loss up 23-fold
    result, said = fit_saying(noncentred_hierarchy(), "did not converge")
    assert bool(said) == (not result.converged), said  # a stop short of it is said
    assert not said or "non-centred hierarchy" in said[0]
    loss = result.history["loss"].values
    assert np.all(np.diff(loss) <= LOSS_SLACK)  # the full-data loss never rose
    mean = dict(zip(["mu", "sigma_log__"], result.approx.mean.eval()[:2], strict=True))
    assert -3 < mean["sigma_log__"] < 1, mean  # sigma 0.4 generated the data


def small_noncentred_hierarchy(rows=15_000, groups=30):
    """Normal groups, few enough rows to be fitted whole (no outer steps)."""
    rng = np.random.default_rng(8)
    g = rng.integers(0, groups, size=rows).astype("int32")
    y = 0.5 + rng.normal(size=groups)[g] + rng.normal(size=rows)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfNormal("tau", 2)
        theta = mu + tau * pm.Normal("z", 0, 1, shape=groups)
        gb, yb = pm.Minibatch(g, y, batch_size=1000)
        pm.Normal("y", theta[gb], 1.0, observed=yb, total_size=rows)
    return model


def test_a_fit_whose_hessian_is_not_positive_definite_is_not_said_to_converge():
    # it stopped where the mean-field sds of mu and tau were 30x too small and said
    # "converged" without a word; only to_arviz's k-hat flagged it
    result, said = fit_saying(small_noncentred_hierarchy(), "not positive definite")
    assert result.warm_start.covariance is None  # the data's optimum is no optimum
    assert not result.converged and result.stop_reason == "not-positive-definite"
    assert result.history.attrs["stop_reason"] == "not-positive-definite"
    assert len(said) == 1 and "non-centred hierarchy" in said[0]


def test_minibatch_data_of_different_lengths_say_why_the_full_data_fit_is_not_run():
    rng = np.random.default_rng(4)
    x, x2 = rng.normal(size=4_000), rng.normal(size=3_000)
    with pm.Model():
        xb, yb = pm.Minibatch(x, 1.0 + 2.0 * x + rng.normal(size=4_000), batch_size=200)
        x2b, y2b = pm.Minibatch(x2, x2 + rng.normal(size=3_000), batch_size=100)
        b = pm.Normal("b", 0, 5, shape=2)
        pm.Normal("y", b[0] + b[1] * xb, 1.0, observed=yb, total_size=4_000)
        pm.Normal("y2", b[1] * x2b, 1.0, observed=y2b, total_size=3_000)
        with pytest.warns(UserWarning, match="cannot run its full-data fit.*different lengths"):
            result = pa.fit(300, progressbar=False, random_seed=1)
    assert result.stop_reason == "max_steps" and "passes" not in result.history.attrs


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=30),
    rows=st.integers(1, 120),
)
def test_reads_are_whole_chunks_of_at_most_rows_rows_or_one_chunk(sizes, rows):
    source = SimpleNamespace(chunks=(tuple(sizes),))  # dask and Parquet style sizes
    own = np.concatenate([[0], np.cumsum(sizes)])
    bounds = chunk_bounds(source, int(own[-1]), rows)
    assert bounds[0] == 0 and bounds[-1] == own[-1] and set(bounds) <= set(own)
    for lo, hi in itertools.pairwise(bounds.tolist()):
        one_chunk = np.searchsorted(own, hi) - np.searchsorted(own, lo) == 1
        assert hi - lo <= rows or one_chunk
    for lo, end in zip(bounds[:-2].tolist(), bounds[1:-1].tolist(), strict=True):
        following = own[np.searchsorted(own, end) + 1]  # greedy: the next chunk did not fit
        assert following - lo > rows


def zarr_model(rows, columns, chunk):
    """A regression streamed from an unwritten zarr array of ``rows`` x ``columns``."""
    zarr = pytest.importorskip("zarr")
    source = zarr.create_array(zarr.storage.MemoryStore(), shape=(rows, columns),
                               chunks=(chunk, columns), dtype="float64")  # fmt: skip
    with pm.Model() as model:
        data = pm.Data("rows", np.zeros((100, columns)))
        b = pm.Normal("b", 0, 1, shape=columns - 1)
        pm.Normal("y", data[:, :-1] @ b, 1.0, observed=data[:, -1], total_size=rows)
        pa.StreamingBatches(source, "rows", batch_size=100, random_seed=0)
    return model, source


def test_the_subsample_holds_a_twentieth_of_the_rows_up_to_subsample_bytes():
    model, _ = zarr_model(10**7, 40, 65_536)  # 3.2 GB of rows, none written
    whole = full_data(model)
    assert whole.row_bytes() == 40 * 8
    assert subsample_size(whole) == SUBSAMPLE_BYTES // 320 < 10**7 // 20
    small, _ = zarr_model(10**6, 2, 65_536)
    assert subsample_size(full_data(small)) == 10**6 // 20
    few, _ = zarr_model(5_000, 2, 700)
    assert subsample_size(full_data(few)) == 10_000  # the fit then takes all 5,000


def test_a_chunked_subsample_is_whole_random_chunks_each_row_once():
    model, source = zarr_model(7_000, 2, 700)
    source[:] = np.column_stack([np.arange(7_000.0), np.zeros(7_000)])
    (rows,) = subsample_rows(full_data(model), 2_500, np.random.default_rng(0))
    first = rows[:, 0]  # the row numbers
    starts = first[::700]  # three whole chunks and the first 400 rows of a fourth
    assert len(first) == 2_500 and len(np.unique(first)) == 2_500
    assert np.all(starts % 700 == 0) and len(np.unique(starts // 700)) == 4
    np.testing.assert_array_equal(np.diff(first.reshape(-1, 100), axis=1), 1.0)
