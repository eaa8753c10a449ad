import contextlib
import json
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pymc as pm
import pytest
import zarr

from pymc_adadelta import StreamingBatches, adadelta, fit
from pymc_adadelta.approx.sources import own_chunk_bounds
from pymc_adadelta.streaming import ParquetColumns

TRUE_COEFS = np.array([1.0, -2.0])


def regression_rows(n, seed=0):
    """Rows ``(x1, x2, y)`` of a linear regression with intercept 0.3 and noise sd 1.5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return np.column_stack([x, 0.3 + x @ TRUE_COEFS + 1.5 * rng.normal(size=n)])


def regression_model(rows, total_size=None):
    """Columns 0-1 of the container ``rows`` are covariates, column 2 the outcome."""
    with pm.Model() as model:
        data = pm.Data("rows", rows)
        coef = pm.Normal("coef", 0.0, 5.0, shape=2)
        intercept = pm.Normal("intercept", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", intercept + data[:, :2] @ coef, sigma, observed=data[:, 2],
                  total_size=total_size)  # fmt: skip
    return model


def xy_model(n=10, total_size=100, x_dtype="float64"):
    """Two containers: ``x`` (n, 2) covariates and ``y`` (n,) outcomes."""
    with pm.Model() as model:
        x = pm.Data("x", np.zeros((n, 2), dtype=x_dtype))
        y = pm.Data("y", np.zeros(n))
        coef = pm.Normal("coef", 0.0, 1.0, shape=2)
        pm.Normal("obs", x @ coef, 1.0, observed=y, total_size=total_size)
    return model


def moments(approx):
    return approx.mean.eval(), approx.std.eval()


def fed_rows(stream, calls):
    """The ids (column 0) of the rows in the first batch and ``calls`` more."""
    seen = [stream.containers[0].get_value()[:, 0].copy()]
    for i in range(1, calls + 1):
        stream(None, None, i)
        seen.append(stream.containers[0].get_value()[:, 0].copy())
    return np.stack(seen).astype(int)


def id_model(n_rows, batch):
    """A model with one container ``ids`` whose column 0 holds row ids."""
    with pm.Model() as model:
        ids = pm.Data("ids", np.zeros((batch, 1)))
        mu = pm.Normal("mu")
        pm.Normal("obs", mu, 1.0, observed=ids[:, 0], total_size=n_rows)
    return model


@pytest.fixture
def store(tmp_path):
    """A zarr array of 20,000 regression rows in chunks of 1,000 rows."""
    rows = regression_rows(20_000)
    array = zarr.create_array(tmp_path / "rows.zarr", shape=rows.shape, chunks=(1_000, 3),
                              dtype="float64")  # fmt: skip
    array[:] = rows
    return array


def test_streamed_fit_matches_the_fit_on_the_data_in_memory(store):
    rows = store[:]
    with regression_model(rows):
        reference = fit(progressbar=False, random_seed=0)
    with regression_model(rows[:200], total_size=len(rows)):
        stream = StreamingBatches(store, "rows", batch_size=200, random_seed=1)
        streamed = fit(20_000, callbacks=[stream], progressbar=False, random_seed=1)
    assert reference.converged and streamed.converged
    assert streamed.warm_start.applied  # on the first batch, scaled by total_size
    (mean, sd), (ref_mean, ref_sd) = moments(streamed.approx), moments(reference.approx)
    assert np.all(np.abs(mean - ref_mean) < 0.25 * ref_sd), (mean - ref_mean) / ref_sd
    assert np.all(np.abs(np.log(sd / ref_sd)) < np.log(1.35)), sd / ref_sd
    assert stream.batches_fed >= streamed.n_steps  # one per step (the last may stop first)


def test_the_callback_works_in_pm_fit():
    rows = regression_rows(2_000)
    with regression_model(rows[:100], total_size=len(rows)):
        stream = StreamingBatches(rows, "rows", batch_size=100, random_seed=0)
        approx = pm.fit(300, obj_optimizer=adadelta(), callbacks=[stream], progressbar=False,
                        random_seed=0)  # fmt: skip
    assert stream.batches_fed == 301 and np.isfinite(approx.hist).all()


def test_the_first_batch_is_in_the_containers_after_construction():
    rows = regression_rows(1_000)
    with regression_model(np.zeros((3, 3)), total_size=len(rows)):
        stream = StreamingBatches(rows, "rows", batch_size=50, random_seed=0)
    first = stream.containers[0].get_value()
    assert first.shape == (50, 3) and stream.batches_fed == 1
    assert all((rows == row).all(axis=1).any() for row in first)
    assert stream.length == 1_000 and stream.batch_size == 50


def zarr_ids(n_rows, chunk, tmp_path):
    ids = zarr.create_array(zarr.storage.MemoryStore(), shape=(n_rows, 1), chunks=(chunk, 1),
                            dtype="float64")  # fmt: skip
    ids[:] = np.arange(n_rows)[:, None]
    return ids


def dask_ids(n_rows, chunk, tmp_path):  # chunks of uneven sizes
    da = pytest.importorskip("dask.array")
    starts = sorted({*range(0, n_rows, chunk), *range(chunk // 3, n_rows, chunk)})
    sizes = tuple(int(size) for size in np.diff([*starts, n_rows]))
    return da.from_array(np.arange(n_rows, dtype=float)[:, None], chunks=(sizes, 1))


def h5py_ids(n_rows, chunk, tmp_path):
    h5py = pytest.importorskip("h5py")
    file = h5py.File(tmp_path / "ids.h5", "w")
    return file.create_dataset("ids", data=np.arange(n_rows, dtype=float)[:, None],
                               chunks=(chunk, 1))  # fmt: skip


def parquet_ids(n_rows, chunk, tmp_path):  # row groups of `chunk` rows
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": np.arange(n_rows, dtype=float)}), path, row_group_size=chunk)
    return ParquetColumns(path, ["id"])


def numpy_ids(n_rows, chunk, tmp_path):
    return np.arange(n_rows, dtype="int32")[:, None]  # cast to the container's float64


@pytest.mark.parametrize("make", [zarr_ids, dask_ids, h5py_ids, parquet_ids, numpy_ids])
@pytest.mark.parametrize(("n_rows", "batch", "chunk"), [(1_000, 100, 100), (1_000, 300, 64)])
def test_every_row_is_fed_once_per_epoch_in_a_random_order(make, n_rows, batch, chunk, tmp_path):
    ids = make(n_rows, chunk, tmp_path)
    epochs = 3
    calls = epochs * n_rows // batch - 1
    with id_model(n_rows, batch):
        seen = fed_rows(StreamingBatches(ids, "ids", batch_size=batch, random_seed=0), calls)
    np.testing.assert_array_equal(np.bincount(seen.ravel(), minlength=n_rows), epochs)
    assert not (np.diff(seen.ravel()) == 1).all()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (zarr_ids, [0, 64, 128, 192, 250]),
        (dask_ids, [0, 21, 64, 85, 128, 149, 192, 213, 250]),
        (h5py_ids, [0, 64, 128, 192, 250]),
        (parquet_ids, [0, 64, 128, 192, 250]),
        (numpy_ids, [0, 100, 200, 250]),
    ],
)
def test_chunk_bounds_follow_the_chunks_of_the_source(make, expected, tmp_path):
    np.testing.assert_array_equal(own_chunk_bounds(make(250, 64, tmp_path), 250, 100), expected)


def test_a_batch_mixes_rows_of_several_chunks():
    ids = zarr.create_array(zarr.storage.MemoryStore(), shape=(2_000, 1), chunks=(100, 1),
                            dtype="float64")  # fmt: skip
    ids[:] = np.arange(2_000)[:, None]
    with id_model(2_000, 100):
        seen = fed_rows(StreamingBatches(ids, "ids", batch_size=100, random_seed=0), 9)
    chunks_per_batch = [len(np.unique(batch // 100)) for batch in seen]
    assert min(chunks_per_batch) >= 3, chunks_per_batch


def test_the_order_follows_the_seed():
    ids = np.arange(500.0)[:, None]

    def first_batches(seed):
        with id_model(500, 50):
            return fed_rows(StreamingBatches(ids, "ids", batch_size=50, random_seed=seed), 4)

    np.testing.assert_array_equal(first_batches(3), first_batches(3))
    assert not np.array_equal(first_batches(3), first_batches(4))


def test_sources_as_a_mapping_or_a_sequence_of_arrays():
    x, y = np.ones((100, 2)), np.arange(100.0)
    model = xy_model()
    with model:
        by_name = StreamingBatches({"x": x, "y": y}, batch_size=10, random_seed=0)
        by_variable = StreamingBatches((x, y), (model["x"], model["y"]), batch_size=10)
    assert by_name.containers == by_variable.containers == (model["x"], model["y"])
    assert model["x"].get_value().shape == (10, 2) and model["y"].get_value().shape == (10,)


def test_a_source_of_a_narrower_dtype_is_cast_to_the_container_dtype():
    with xy_model(x_dtype="float64"):
        stream = StreamingBatches({"x": np.ones((100, 2), dtype="int32"),
                                   "y": np.zeros(100, dtype="float32")}, batch_size=10)  # fmt: skip
    assert [c.get_value().dtype for c in stream.containers] == [np.float64, np.float64]


X, Y = np.zeros((100, 2)), np.zeros(100)


@pytest.mark.parametrize(
    ("model_kwargs", "args", "kwargs", "error", "match"),
    [
        ({}, ((X, Y), ("x", "y")), {"batch_size": 101}, ValueError,
         r"batch_size must be at most the length of the source \(100\), got 101"),
        ({}, ((X, Y), ("x", "y")), {"batch_size": 0}, ValueError,
         "batch_size must be a positive integer, got 0"),
        ({}, ((X, Y), ("x", "y")), {"batch_size": 10, "prefetch": 0}, ValueError,
         "prefetch must be a positive integer, got 0"),
        ({}, ((X, Y), ("x", "y")), {"batch_size": 10, "chunks_per_read": 1.5}, ValueError,
         "chunks_per_read must be a positive integer, got 1.5"),
        ({}, ((np.zeros((100, 3)), Y), ("x", "y")), {"batch_size": 10}, ValueError,
         r"source\[0\] must have rows of shape \(2,\) like data 'x', got shape \(100, 3\)"),
        ({}, ((X, np.zeros((100, 1))), ("x", "y")), {"batch_size": 10}, ValueError,
         r"source\[1\] must have rows of shape \(\) like data 'y', got shape \(100, 1\)"),
        ({}, ((X, Y.astype("complex128")), ("x", "y")), {"batch_size": 10}, ValueError,
         r"source\[1\] has dtype complex128, which data 'y' \(float64\) cannot hold"),
        ({}, ((X, np.zeros(99)), ("x", "y")), {"batch_size": 10}, ValueError,
         r"source arrays must have the same length, got lengths \{'source\[0\]': 100, "
         r"'source\[1\]': 99\}"),
        ({}, ((X, Y), ("x",)), {"batch_size": 10}, ValueError,
         r"data must be a sequence of 2 data containers, one per source array, got \('x',\)"),
        ({}, ((X, Y), ("x", "z")), {"batch_size": 10}, ValueError,
         "data must name data containers of the model, got 'z'"),
        ({}, ((X, Y), ("x", "coef")), {"batch_size": 10}, TypeError,
         "data 'coef' must be a data container made with pm.Data"),
        ({}, ({"x": X, "y": Y}, "x"), {"batch_size": 10}, ValueError,
         "data must be None when source is a mapping"),
        ({}, ((X, [0.0] * 100), ("x", "y")), {"batch_size": 10}, TypeError,
         r"source\[1\] must be an array \(zarr, ParquetColumns, dask, h5py or NumPy\), got list"),
        ({}, ((), ()), {"batch_size": 10}, ValueError, r"source holds no arrays: \(\)"),
        ({"total_size": None}, ((X, Y), ("x", "y")), {"batch_size": 10}, ValueError,
         "observed variable 'obs' has no total_size, but the streamed source has 100 rows: "
         "pass total_size=100"),
        ({"total_size": 1000}, ((X, Y), ("x", "y")), {"batch_size": 10}, ValueError,
         "observed variable 'obs' has total_size=1000, but the streamed source has 100 rows"),
    ],
)  # fmt: skip
def test_bad_input_is_named_in_the_error(model_kwargs, args, kwargs, error, match):
    with xy_model(**model_kwargs), pytest.raises(error, match=match):
        StreamingBatches(*args, **kwargs)


def test_a_container_of_fixed_length_needs_that_batch_size():
    with pm.Model():
        x = pm.Data("x", np.zeros(10), shape=(10,))
        pm.Normal("obs", pm.Normal("mu"), 1.0, observed=x, total_size=100)
        with pytest.raises(
            ValueError, match="batch_size must be 10, the fixed length of data 'x', got 5"
        ):
            StreamingBatches(np.zeros(100), "x", batch_size=5)


def test_data_that_no_observed_variable_depends_on_is_refused():
    with pm.Model():
        pm.Data("unused", np.zeros(10))
        pm.Normal("obs", pm.Normal("mu"), 1.0, observed=np.zeros(3))
        with pytest.raises(
            ValueError, match=r"no observed variable of the model depends on the data \['unused'\]"
        ):
            StreamingBatches(np.zeros(100), "unused", batch_size=5)


class FailingArray:
    """A NumPy array whose reads fail from the ``fail_at``-th read on."""

    def __init__(self, array, fail_at):
        self.array, self.fail_at, self.reads = array, fail_at, 0
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key):
        self.reads += 1
        if self.reads >= self.fail_at:
            raise OSError(f"disk gone at read {self.reads}")
        return self.array[key]


@contextlib.contextmanager
def deadline(seconds):
    """Fail the test instead of hanging, should the reader's error be lost."""

    def expire(signum, frame):
        raise TimeoutError(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_reader_error_is_raised_in_the_fit():
    rows = regression_rows(2_000)
    with regression_model(rows[:100], total_size=len(rows)):
        stream = StreamingBatches(FailingArray(rows, fail_at=6), "rows", batch_size=100,
                                  chunks_per_read=1)  # fmt: skip
        with deadline(120), pytest.raises(OSError, match="disk gone at read 6") as raised:
            fit(1_000, callbacks=[stream], warm_start=False, progressbar=False)
    assert "raised by StreamingBatches' reader, reading for batch 5" in raised.value.__notes__[0]
    assert stream.batches_fed == 5
    with pytest.raises(RuntimeError, match="the stream is closed"):
        stream(None, None, 6)


def test_a_reader_error_on_the_first_batch_is_raised_at_construction():
    with id_model(100, 10), pytest.raises(OSError, match="disk gone at read 1"):
        StreamingBatches(FailingArray(np.zeros((100, 1)), fail_at=1), "ids", batch_size=10)


def test_close_stops_the_reader_thread():
    before = set(threading.enumerate())
    with id_model(100, 10), StreamingBatches(np.zeros((100, 1)), "ids", batch_size=10) as stream:
        [reader] = [t for t in set(threading.enumerate()) - before
                    if t.name.startswith("pymc_adadelta-stream")]  # fmt: skip
        assert reader.is_alive()
    reader.join(timeout=5)
    assert not reader.is_alive()
    with pytest.raises(RuntimeError, match="the stream is closed"):
        stream(None, None, 1)


# A process that may map at most LIMIT bytes, streaming from a store larger than that.
# Measured peak address space (VmPeak) of this child with no limit, import + compile +
# 3,000 steps + reader thread: 1.10 GB (PyMC 5.28) and 1.07 GB (PyMC 6.4) with a warm
# pytensor cache, 1.07 and 1.19 GB with a cold one. 1.5 GiB leaves room above both.
LIMIT = 3 << 29  # 1.5 GiB
DATA_BYTES = LIMIT + (1 << 27)  # 1.625 GiB on disk
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
import pymc as pm, zarr
from pymc_adadelta import StreamingBatches, fit
source = zarr.open_array(sys.argv[1], mode="r")
with pm.Model():
    rows = pm.Data("rows", source[:1000])
    a, b, s = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5), pm.HalfNormal("s", 5)
    pm.Normal("y", a + b * rows[:, 0], s, observed=rows[:, 1], total_size=source.shape[0])
    with StreamingBatches(source, "rows", batch_size=1000, random_seed=0) as stream:
        result = fit(3000, callbacks=[stream], progressbar=False, random_seed=0)
mean = result.approx.groups[0].params_dict["mu"].get_value()  # compiles nothing (no numba)
status = {k: int(v.split()[0]) * 1024 for k, v in
          (line.split(":") for line in open("/proc/self/status")) if k in ("VmPeak", "VmHWM")}
try:
    source[:]
    load = "loaded"
except MemoryError:
    load = "MemoryError"
print(json.dumps(dict(a=float(mean[0]), b=float(mean[1]), load=load, **status)))
"""


@pytest.fixture
def large_store(tmp_path):
    """Regression rows ``(x, 0.5 + 2x + e)`` filling DATA_BYTES, deleted afterwards.

    Each 4 MiB chunk holds random shifts of two blocks of normal draws (x and e): three
    times quicker to write than fresh draws, and as good for a regression.
    """
    chunk = 1 << 18
    n = DATA_BYTES // 16 // chunk * chunk
    array = zarr.create_array(tmp_path / "large.zarr", shape=(n, 2), chunks=(chunk, 2),
                              dtype="float64", compressors=None)  # fmt: skip
    rng = np.random.default_rng(0)
    x, e = rng.normal(size=(2, chunk))
    block = np.empty((chunk, 2))
    for start in range(0, n, chunk):
        block[:, 0] = np.roll(x, rng.integers(chunk))
        block[:, 1] = 0.5 + 2.0 * block[:, 0] + np.roll(e, rng.integers(chunk))
        array[start : start + chunk] = block
    yield tmp_path / "large.zarr"
    shutil.rmtree(tmp_path / "large.zarr")


@pytest.mark.slow  # writes 1.7 GB (about 3 s) and fits in a child process (about 10 s)
def test_a_fit_streams_data_larger_than_the_process_may_map(large_store):
    nbytes = zarr.open_array(large_store, mode="r").nbytes
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(large_store), str(LIMIT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["load"] == "MemoryError"  # the limit is real: the data do not fit
    assert report["VmPeak"] < LIMIT < nbytes
    assert abs(report["a"] - 0.5) < 0.05 and abs(report["b"] - 2.0) < 0.05, report


def slope_model(first_rows):
    """``y ~ Normal(slope * x, 1)`` on the container ``rows`` of ``(x, y)``, 2,000 rows in all."""
    with pm.Model() as model:
        rows = pm.Data("rows", first_rows)
        slope = pm.Normal("slope", 0.0, 10.0)
        pm.Normal("y", slope * rows[:, 0], 1.0, observed=rows[:, 1], total_size=2000)
    return model


def test_nan_rows_stop_the_fit_with_an_error_naming_source_batch_and_rows():
    from pymc_adadelta import NonFiniteDataError

    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    data = np.column_stack([x, 2.0 * x + rng.normal(size=2000)])
    data[1234, 1] = np.nan
    with slope_model(data[:100]):  # noqa: SIM117 (the stream needs the model's context)
        with StreamingBatches(data, "rows", batch_size=100, random_seed=0) as stream:
            with pytest.raises(NonFiniteDataError, match=r"source has NaN.*rows 1234") as info:
                fit(500, callbacks=[stream], convergence=None, progressbar=False, random_seed=1)
    assert "batch" in str(info.value)


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
def test_a_nan_row_raises_the_same_error_from_the_stream_and_the_full_data_pass(kind):
    """One ``except NonFiniteDataError`` catches the NaN row wherever it is read."""
    from pymc_adadelta import NonFiniteDataError, StreamedDataError
    from pymc_adadelta.approx.full_data import full_data

    data = regression_rows(2000)[:, 1:]
    data[1234, 1] = np.nan
    source = data
    if kind == "zarr":
        source = zarr.create_array(zarr.storage.MemoryStore(), shape=data.shape,
                                   chunks=(100, 2), dtype="float64")  # fmt: skip
        source[:] = data
    with slope_model(data[:100]) as model:  # noqa: SIM117 (the stream needs the model's context)
        with StreamingBatches(source, "rows", batch_size=100, random_seed=0) as stream:
            with pytest.raises(NonFiniteDataError, match=r"^batch \d+: .*rows 1234\)") as streamed:
                fit(500, callbacks=[stream], convergence=None, progressbar=False, random_seed=1)
    with pytest.raises(NonFiniteDataError, match=r"observed variable 'y'.*\(rows 1234\)") as whole:
        full_data(model).logp({"slope": np.zeros(2)})
    assert type(streamed.value) is type(whole.value) is NonFiniteDataError
    assert not isinstance(streamed.value, StreamedDataError)


def test_a_deleted_zarr_store_stops_the_fit(tmp_path):
    import shutil

    import zarr

    from pymc_adadelta.streaming.read_order import StreamedDataError

    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    path = tmp_path / "rows.zarr"
    source = zarr.create_array(zarr.storage.LocalStore(path), shape=(4000, 2), chunks=(100, 2),
                               dtype="float64")  # fmt: skip
    source[:] = np.column_stack([x, 2.0 * x + rng.normal(size=4000)])
    with pm.Model():
        rows = pm.Data("rows", source[:100])
        slope = pm.Normal("slope", 0.0, 10.0)
        pm.Normal("y", slope * rows[:, 0], 1.0, observed=rows[:, 1], total_size=4000)

        def delete(approx, losses, i):
            if i == 20:
                shutil.rmtree(path)

        with StreamingBatches(source, "rows", batch_size=100, random_seed=0,  # noqa: SIM117
                              chunks_per_read=1) as stream:  # fmt: skip
            with pytest.raises(StreamedDataError, match="zarr store .* is gone"):
                fit(500, callbacks=[stream, delete], convergence=None, progressbar=False,
                    random_seed=1)  # fmt: skip


def write_parquet(path, columns, row_group_size):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def test_parquet_columns_read_rows_across_row_groups(tmp_path):
    x = np.arange(30.0).reshape(10, 3)
    path = write_parquet(tmp_path / "x.parquet", {"a": x[:, 0], "b": x[:, 1].astype("int32"),
                                                  "c": x[:, 2]}, 4)  # fmt: skip
    both = ParquetColumns(path, ["c", "b"])
    assert both.shape == (10, 2) and both.dtype == np.float64 and both.chunks == ((4, 4, 2), (2,))
    np.testing.assert_array_equal(both[3:9], x[3:9][:, [2, 1]])
    one = ParquetColumns(path, "b")
    assert one.shape == (10,) and one.dtype == np.int32 and one[:].tolist() == list(range(1, 30, 3))
    assert one[5:5].shape == (0,)


@pytest.mark.parametrize(
    ("columns", "error", "match"),
    [
        (["a", "nope"], ValueError, r"columns must name columns of .*x.parquet, got \['nope'\]"),
        ("s", TypeError, "column 's' of .* holds string, not numbers"),
    ],
)
def test_bad_parquet_columns_are_named(columns, error, match, tmp_path):
    path = write_parquet(tmp_path / "x.parquet", {"a": np.zeros(4), "s": ["u"] * 4}, 2)
    with pytest.raises(error, match=match):
        ParquetColumns(path, columns)


def test_parquet_sources_get_the_checks_of_every_source(tmp_path):
    path = write_parquet(tmp_path / "xy.parquet", {"x1": np.zeros(100), "x2": np.zeros(100),
                                                    "y": np.zeros(100)}, 30)  # fmt: skip
    with xy_model(total_size=100) as model:
        stream = StreamingBatches.from_parquet(path, {"x": ["x1", "x2"], "y": "y"}, batch_size=10)
        assert model["x"].get_value().shape == (10, 2) and stream.length == 100
        with pytest.raises(ValueError, match=r"source\['x'\] must have rows of shape \(2,\)"):
            StreamingBatches.from_parquet(path, {"x": ["x1"], "y": "y"}, batch_size=10)
    with xy_model(total_size=1000), pytest.raises(ValueError, match="has total_size=1000"):
        StreamingBatches.from_parquet(path, {"x": ["x1", "x2"], "y": "y"}, batch_size=10)


@pytest.mark.parametrize("kind", ["float64", "int64"])
def test_nulls_in_parquet_rows_are_named(kind, tmp_path):
    pa = pytest.importorskip("pyarrow")
    from pymc_adadelta import NonFiniteDataError

    y = pa.array([None if k == 57 else k for k in range(100)], type=getattr(pa, kind)())
    source = ParquetColumns(write_parquet(tmp_path / "y.parquet", {"y": y}, 25), ["y"])
    match = r"NaN or inf in 1 rows.*rows 57\)" if kind == "float64" else r"'y' has nulls.*rows 57\)"
    with id_model(100, 10), pytest.raises(NonFiniteDataError, match=match):  # noqa: SIM117
        with StreamingBatches(source, "ids", batch_size=10, random_seed=0) as stream:
            fed_rows(stream, 20)
