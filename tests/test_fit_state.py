"""One fit state: resume in memory and from files, settings round-trip, checks by name."""

import json
import os

import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Adadelta, Checkpoint, fit
from pymc_adadelta.persist.fit_state import capture_state

from .conftest import regression_model


def params(result):
    return [p.get_value() for p in result.approx.params]


def test_resume_from_a_result_in_memory_is_bit_identical():
    model = regression_model()
    common = dict(model=model, convergence=None, warm_start=False, progressbar=False)
    whole = fit(300, random_seed=3, **common)
    first = fit(120, random_seed=3, **common)
    more = fit(300, resume=first, **common)
    assert (more.n_steps, more.resumed_from) == (300, 120)
    for a, b in zip(params(whole), params(more), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.approx.hist, more.approx.hist)


def test_result_state_holds_the_last_iterate_not_the_average():
    result = fit(model=regression_model(), progressbar=False, random_seed=1)
    assert result.converged and result.last_iterate
    for e_key, value in result.state.params.items():
        label = e_key.split("/", 1)[1]
        np.testing.assert_array_equal(value, result.last_iterate[label])


def test_groups_and_schedules_round_trip(tmp_path):
    path = tmp_path / "fit.npz"
    model = regression_model()
    original = Adadelta(groups={"rho": {"learning_rate": 0.01}})
    common = dict(model=model, convergence=None, warm_start=False, progressbar=False)
    fit(100, optimizer=original, checkpoint=path, random_seed=1, **common)
    resumed = fit(150, resume=path, random_seed=1, **common)
    assert resumed.optimizer.groups == {"rho": {"learning_rate": 0.01}}
    with pytest.raises(ValueError, match=r"groups\['rho'\] learning_rate"):
        fit(
            150,
            optimizer=Adadelta(groups={"rho": {"learning_rate": 5.0}}),
            resume=path,
            random_seed=1,
            **common,
        )
    with pytest.raises(ValueError, match="groups differ"):
        fit(150, optimizer=Adadelta(), resume=path, random_seed=1, **common)


def test_a_schedule_must_be_passed_again_and_not_replaced_by_a_constant(tmp_path):
    path = tmp_path / "fit.npz"
    model = regression_model()

    def decay(t):
        return 1.0 / (1.0 + 0.01 * t)

    common = dict(model=model, convergence=None, warm_start=False, progressbar=False)
    fit(50, optimizer=Adadelta(learning_rate=decay), checkpoint=path, random_seed=1, **common)
    with pytest.raises(ValueError, match="schedule:decay.*pass optimizer=Adadelta"):
        fit(80, resume=path, **common)
    with pytest.raises(ValueError, match="learning_rate is 'schedule:decay' saved vs 1.0 here"):
        fit(80, optimizer=Adadelta(), resume=path, **common)
    again = fit(80, optimizer=Adadelta(learning_rate=decay), resume=path, **common)
    assert again.n_steps == 80


def write_edited(source, target, change):
    with np.load(source, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(target, **arrays)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, a: m.update(step="60"), "'step' is malformed"),
        (lambda m, a: m["params"][0].pop("shape"), "layout entry is malformed"),
        (
            lambda m, a: a.update({"params/0/mu": np.full_like(a["params/0/mu"], np.nan)}),
            "'0/mu' holds NaN",
        ),
        (lambda m, a: m["optimizer"].update(layout="x"), "'optimizer' is malformed"),
        (lambda m, a: a.update(history=np.zeros(3, np.uint8)), "'history' cannot be read"),
    ],
    ids=["string-step", "no-shape", "nan-params", "optimizer-layout", "history"],
)
def test_hand_edited_checkpoints_raise_value_error_naming_the_entry(tmp_path, change, message):
    path = tmp_path / "fit.npz"
    fit(
        60,
        model=regression_model(),
        checkpoint=path,
        convergence=None,
        warm_start=False,
        progressbar=False,
    )
    write_edited(path, tmp_path / "edited.npz", change)
    with pytest.raises(ValueError, match=message):
        Checkpoint.load(tmp_path / "edited.npz")


@pytest.mark.parametrize("where", ["directory", "missing-folder"])
def test_a_checkpoint_path_that_cannot_be_written_fails_before_any_step(tmp_path, where):
    path = tmp_path / "fit.npz"
    if where == "directory":
        path.mkdir()
    else:
        path = tmp_path / "nope" / "fit.npz"
    seen = []
    with pytest.raises(ValueError, match="checkpoint="):
        fit(
            50,
            model=regression_model(),
            checkpoint=path,
            callbacks=[lambda a, losses, i: seen.append(i)],
            progressbar=False,
        )
    assert seen == []


def test_a_save_that_fails_mid_fit_warns_and_the_fit_returns(tmp_path, monkeypatch):
    import pymc_adadelta.callbacks.checkpoint as checkpoint_module

    def full_disk(path, state):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "write_state", full_disk)
    with pytest.warns(RuntimeWarning, match="could not be written"):
        result = fit(
            60,
            model=regression_model(),
            checkpoint=tmp_path / "f.npz",
            checkpoint_every=20,
            convergence=None,
            warm_start=False,
            progressbar=False,
        )
    assert result.n_steps == 60 and result.stop_reason == "max_steps"


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "fit.npz"
    stale = tmp_path / ".fit.npz.abc123.tmp"
    stale.write_bytes(b"half a write")
    other = tmp_path / ".other.npz.x.tmp"
    other.write_bytes(b"not ours")
    fit(
        40,
        model=regression_model(),
        checkpoint=path,
        convergence=None,
        warm_start=False,
        progressbar=False,
    )
    assert not stale.exists() and other.exists() and path.exists()


def test_capture_state_copies_values():
    with regression_model():
        approx = pm.fit(5, progressbar=False)
    state = capture_state(approx, 5)
    state.params["0/mu"][:] = 123.0
    assert not np.any(approx.params[0].get_value() == 123.0)
    assert state.losses.shape == (5,) and os.fspath("x") == "x"
