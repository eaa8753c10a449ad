import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, Checkpoint, fit
from pymc_adadelta._compat import BACKEND_MODES

from .conftest import BACKENDS, regression_model

RESUMABLE_BACKENDS = [b for b in BACKENDS if b != "jax"]  # fit() needs numpy state (guard)
QUIET = {"convergence": None, "progressbar": False, "random_seed": 5}


def interrupt_at(step):
    """A callback that presses Ctrl-C (SIGINT to this process) after ``step``."""

    def press(approx, losses, i):
        if i == step:
            os.kill(os.getpid(), signal.SIGINT)

    return press


def params(result):
    return [p.get_value() for p in result.approx.params]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "fit.npz"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of 60 steps of ADVI on the regression model."""
    path = tmp_path_factory.mktemp("saved") / "fit.npz"
    fit(60, model=regression_model(), checkpoint=path, checkpoint_every=20, **QUIET)
    return path


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
@pytest.mark.parametrize("backend", RESUMABLE_BACKENDS)
def test_interrupted_and_resumed_fit_is_bit_identical(path, method, backend):
    options = {"method": method, "compile_kwargs": {"mode": BACKEND_MODES[backend]}, **QUIET}
    whole = fit(400, model=regression_model(), **options)
    first = fit(
        400,
        model=regression_model(),
        checkpoint=path,
        checkpoint_every=1000,
        callbacks=[interrupt_at(200)],
        **options,
    )
    assert (first.stop_reason, first.n_steps) == ("interrupted", 200)
    assert Checkpoint.load(path).step == 200  # written when Ctrl-C stopped the fit
    resumed = fit(400, model=regression_model(), resume=path, **options)
    assert (resumed.resumed_from, resumed.n_steps, resumed.stop_reason) == (200, 400, "max_steps")
    for a, b in zip(params(whole), params(resumed), strict=True):
        assert np.array_equal(a, b)
    for name, values in whole.optimizer.accumulators().items():
        for which, array in values.items():
            assert np.array_equal(array, resumed.optimizer.accumulators()[name][which])
    assert np.array_equal(whole.approx.hist, resumed.approx.hist)
    assert whole.history.identical(resumed.history)


def test_resume_continues_a_finished_fit_to_a_larger_n(saved):
    longer = fit(100, model=regression_model(), resume=saved, **QUIET)
    whole = fit(100, model=regression_model(), **QUIET)
    assert longer.n_steps == 100 and longer.history.sizes["iteration"] == 10
    assert all(np.array_equal(a, b) for a, b in zip(params(whole), params(longer), strict=True))


def test_resume_true_starts_afresh_then_resumes(path):
    first = fit(50, model=regression_model(), checkpoint=path, resume=True, **QUIET)
    second = fit(80, model=regression_model(), checkpoint=path, resume=True, **QUIET)
    assert (first.resumed_from, second.resumed_from, second.n_steps) == (0, 50, 80)
    assert Checkpoint.load(path).step == 80


def test_file_is_an_open_format_with_everything_saved(saved):
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    assert meta["format_version"] == 2 and meta["step"] == 60
    assert meta["approximation"] == "MeanField"
    assert [v["name"] for v in meta["model"]] == ["beta", "sigma_log__"]
    assert [(p["name"], p["shape"]) for p in meta["params"]] == [("0/mu", [4]), ("0/rho", [4])]
    assert meta["optimizer"]["step"] == 60 and meta["optimizer"]["hyperparameters"]["rho"] == 0.95
    assert meta["rngs"][0]["bit_generator"] == "PCG64"
    assert arrays["losses"].shape == (60,) and np.isfinite(arrays["losses"]).all()
    assert arrays["optimizer/mu/sq_grad"].shape == (4,)
    assert arrays["history"].dtype == np.uint8  # netCDF-4 bytes (xarray's serialization)
    data = Checkpoint.load(saved)
    assert data.history["grad_rms"].shape == (6, 2, 2)  # iteration, param, variable
    assert data.history["loss"].values.tolist() == arrays["losses"][9::10].tolist()


def test_callback_in_plain_pm_fit(path):
    optimizer = Adadelta()
    save = Checkpoint(path, every=40, optimizer=optimizer)
    with regression_model():
        approx = pm.fit(100, obj_optimizer=optimizer, callbacks=[save], progressbar=False)
    data = Checkpoint.load(path)
    assert save.last_step == data.step == data.optimizer["step"] == 80
    assert len(data.losses) == 80 and data.rngs == []  # no step function given
    assert not np.array_equal(data.params["0/mu"], approx.params[0].get_value())  # step 100


def test_a_failed_write_keeps_the_previous_checkpoint(saved, path, monkeypatch):
    path.write_bytes(saved.read_bytes())

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.warns(RuntimeWarning, match="could not be written .*disk full"):
        result = fit(100, model=regression_model(), checkpoint=path, checkpoint_every=50,
                     **QUIET)  # fmt: skip
    assert result.n_steps == 100  # the fit went on and returned
    monkeypatch.undo()
    assert Checkpoint.load(path).step == 60
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


def test_non_finite_state_is_not_saved(path):
    def poison(approx, losses, i):
        if i == 40:
            approx.params[0].set_value(np.full(4, np.nan))

    optimizer = Adadelta()
    save = Checkpoint(path, every=20, optimizer=optimizer)
    kept = pytest.warns(RuntimeWarning, match="kept the checkpoint of step 20")
    with regression_model(), kept, pytest.raises(FloatingPointError):  # PyMC's NaN check
        pm.fit(60, obj_optimizer=optimizer, callbacks=[poison, save], progressbar=False)
    assert (save.last_step, save.skipped, Checkpoint.load(path).step) == (20, 1, 20)


def rewrite(source, target, change):
    """Copy the checkpoint ``source`` to ``target`` with ``change(meta, arrays)`` applied."""
    with np.load(source, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(target, "wb") as file:
        np.savez(file, **arrays)


def damage(source, target, how):
    data = source.read_bytes()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    else:
        data = b"not a checkpoint at all"
    target.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage"])
def test_damaged_file_raises(saved, path, how):
    damage(saved, path, how)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fit(100, model=regression_model(), resume=path, **QUIET)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m, a: m.update(format_version=3), "format_version 3; .* reads up to 2"),
        (lambda m, a: m.update(format="something else"), "not a pymc-adadelta checkpoint"),
        (lambda m, a: m.pop("rngs"), "missing the metadata 'rngs'"),
        (lambda m, a: a.update({"params/0/mu": np.zeros(3)}), "inconsistent: 'params/0/mu' holds"),
        (lambda m, a: a.pop("optimizer/rho/sq_delta"), "'optimizer/rho/sq_delta' holds nothing"),
        (lambda m, a: a.update(losses=np.zeros(61)), "'losses' is missing or longer than step 60"),
    ],
    ids=["newer", "not-ours", "missing-meta", "wrong-shape", "missing-array", "losses"],
)
def test_bad_contents_raise(saved, path, change, match):
    rewrite(saved, path, change)
    with pytest.raises(ValueError, match=match):
        Checkpoint.load(path)


def test_another_model_raises_naming_the_variable(saved):
    with pytest.raises(ValueError, match=r"model variables differ: \('beta', \(3,\)"):
        fit(100, model=wider_model(), resume=saved, **QUIET)


def wider_model():
    with pm.Model() as model:
        pm.Normal("beta", 0.0, 1.0, shape=4)
        pm.HalfNormal("sigma", 1.0)
    return model


def test_another_parameter_layout_raises(saved):
    with pytest.raises(ValueError, match="MeanField approximation, this fit a FullRank") as error:
        fit(100, model=regression_model(), method="fullrank_advi", resume=saved, **QUIET)
    assert "'0/L_tril'" in str(error.value) and "'0/rho'" in str(error.value)


def test_nothing_is_set_when_part_of_the_checkpoint_does_not_fit(saved):
    data = Checkpoint.load(saved)
    optimizer = Adadelta(**{**data.optimizer["hyperparameters"], "rho": 0.9})  # saved: 0.95
    with regression_model():
        inference = pm.ADVI(random_seed=1)
    step = inference.objective.step_function(score=True, obj_optimizer=optimizer)
    before = [p.get_value() for p in inference.approx.params]
    with pytest.raises(ValueError, match="rho is 0.95 saved vs 0.9 here"):
        data.restore(inference.approx, optimizer, step)
    assert all(
        np.array_equal(a, p.get_value())
        for a, p in zip(before, inference.approx.params, strict=True)
    )
    assert optimizer.state.n_steps == 0


def test_resume_needs_the_optimizer_state(path):
    with regression_model():
        pm.fit(30, callbacks=[Checkpoint(path, every=10)], progressbar=False)
    with pytest.raises(ValueError, match="holds no optimizer state"):
        fit(100, model=regression_model(), resume=path, **QUIET)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "every must be a positive integer, got 0"),
        ({"optimizer": "adadelta"}, TypeError, "optimizer must be an Adadelta or None"),
        ({"path": "/no/such/dir/fit.npz"}, ValueError, "folder that does not exist"),
    ],
)
def test_bad_arguments(path, kwargs, error, match):
    with pytest.raises(error, match=match):
        Checkpoint(**{"path": path, **kwargs})


CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pymc as pm
    from pymc_adadelta import fit

    def announce(approx, losses, i):
        if i == 100:
            print("RUNNING", flush=True)

    rng = np.random.default_rng(0)
    with pm.Model():
        b = pm.Normal("b", 0.0, 1.0, shape=2)
        pm.Normal("y", b.sum(), 1.0, observed=rng.normal(size=20))
        result = fit(10_000_000, checkpoint=sys.argv[1], checkpoint_every=500, convergence=None,
                     progressbar=False, random_seed=1, callbacks=[announce])
    print(json.dumps({"stop_reason": result.stop_reason, "n_steps": result.n_steps,
                      "finite": bool(np.isfinite(result.approx.params[0].get_value()).all())}))
    """
)


def test_ctrl_c_in_a_child_process_returns_the_result_and_a_valid_checkpoint(tmp_path):
    path = tmp_path / "child.npz"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "RUNNING"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    reported = json.loads(out.strip().splitlines()[-1])
    assert reported["stop_reason"] == "interrupted" and reported["finite"]
    assert 100 <= reported["n_steps"] < 10_000_000
    data = Checkpoint.load(path)
    assert data.step == reported["n_steps"] and len(data.losses) == data.step
