import os
import warnings
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from pymc_adadelta import Adadelta, ChainsFailed, FitResult, FitResults, fit
from pymc_adadelta._compat import ARVIZ_MAJOR, arviz_group, load_arviz

from .conftest import regression_model

# No rule and a plain Adadelta (zero accumulators, epsilon 1e-6): 300 small steps from
# the warm start, so independent chains agree closely. fit()'s standardized refinement
# would end 300 unaveraged steps anywhere within about 0.4 posterior sd.
FAST = {"n": 300, "convergence": None, "progressbar": False,
        "optimizer": Adadelta(learning_rate=0.3)}  # fmt: skip
#: Shared by the callbacks below, which the chains receive by reference: they run in this
#: process when the chains do (cores=1, or a dask cluster with processes=False).
SEEN = {"fits": 0, "client": None}


def params(result):
    return [p.get_value() for p in result.approx.params]


def mixture_model():
    """Two well separated modes: fits from dispersed starts end in different ones."""
    with pm.Model() as model:
        pm.NormalMixture("x", w=[0.5, 0.5], mu=[-3.0, 3.0], sigma=0.5)
    return model


@pytest.fixture(scope="module")
def two_chains():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = fit(model=regression_model(), chains=2, cores=2, random_seed=1, **FAST)
    return results, [str(w.message) for w in caught]


def test_two_processes_give_two_chains_that_agree(two_chains):
    results, caught = two_chains
    assert isinstance(results, FitResults) and len(results) == 2
    assert all(isinstance(r, FitResult) and r.n_steps == 300 for r in results)
    assert results.stop_reasons == ("max_steps", "max_steps")
    first, second = (params(r) for r in results)
    assert not np.allclose(first[0], second[0])  # independent runs
    np.testing.assert_allclose(first[0], second[0], atol=0.2)  # of the same answer
    rhat = results.diagnostics.sel(diagnostic="rhat")
    assert set(rhat.data_vars) == {"beta", "sigma"} and rhat["beta"].dims == ("coef",)
    assert float(rhat.to_array().max()) < 1.01 and results.disagreeing() == []
    assert (results.diagnostics.sel(diagnostic="ess_bulk").to_array() > 1000).all()
    assert not [m for m in caught if "disagree" in m]


def test_each_chain_is_rebuilt_on_the_parent_model(two_chains):
    results, _ = two_chains
    for result in results:
        assert result.approx.model.free_RVs[0].name == "beta"
        assert result.approx.hist.shape == (300,) and np.isfinite(result.approx.hist).all()
        assert result.optimizer.state.n_steps == 300
        assert result.warm_start.applied
        state = result.optimizer.accumulators()
        assert np.all(state["mu"]["sq_grad"] > 0)


def test_two_chains_in_arviz(two_chains):
    results, _ = two_chains
    data = results.to_arviz(draws=50, random_seed=1)
    assert type(data).__name__ == ("InferenceData" if ARVIZ_MAJOR == 0 else "DataTree")
    posterior = arviz_group(data, "posterior")
    assert posterior["beta"].shape == (2, 50, 3)
    assert arviz_group(data, "sample_stats")["lp"].shape == (2, 50)
    vi = arviz_group(data, "vi_parameters")
    assert vi["beta"].dims == ("chain", "vi_stat", "coef")
    for chain, result in enumerate(results):
        np.testing.assert_allclose(vi["beta"].sel(chain=chain, vi_stat="mean"),
                                   params(result)[0][:3])  # fmt: skip
    history = arviz_group(data, "optimization")
    assert history["loss"].dims == ("chain", "iteration") and history.sizes["chain"] == 2
    assert data.attrs["stop_reason"] == "max_steps" and np.isfinite(data.attrs["psis_khat"])
    assert data.attrs["psis_khat"] == history["psis_khat"].max()


def test_histories_of_different_lengths_are_padded(tmp_path):
    model = regression_model()

    def stop_at_200(approx, losses, i):
        if i == 200:
            raise StopIteration

    short = fit(model=model, callbacks=[stop_at_200], random_seed=1, **FAST)
    full = fit(model=model, random_seed=2, **FAST)
    data = FitResults((short, full), xr.Dataset()).to_arviz(draws=20, random_seed=1)
    history = arviz_group(data, "optimization")
    loss = history["loss"].to_numpy()
    assert np.isnan(loss[0, 200:]).all() and np.isfinite(loss[0, :200]).all()
    assert np.isfinite(loss[1]).all()
    assert list(history["stop_reason"].values) == ["interrupted", "max_steps"]
    assert list(history["n_steps"].values) == [200, 300] and "n_steps" not in data.attrs
    data.to_netcdf(tmp_path / "chains.nc")
    loaded = arviz_group(load_arviz(tmp_path / "chains.nc"), "optimization")
    assert list(loaded["stop_reason"].values) == ["interrupted", "max_steps"]


def test_disagreeing_chains_warn():
    with pytest.warns(UserWarning, match=r"the 2 fits disagree: R-hat > 1.01 .* \['x'\]"):
        results = fit(model=mixture_model(), chains=2, cores=1, random_seed=1, **FAST)
    means = sorted(float(params(r)[0][0]) for r in results)
    np.testing.assert_allclose(means, [-3.0, 3.0], atol=0.2)  # one fit per mode
    assert results.disagreeing() == ["x"]


def test_dask_cluster_gives_the_same_chains(two_chains):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                 dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        results = fit(model=regression_model(), chains=2, client=client, random_seed=1, **FAST)
    # Same seeds, same fits, wherever they ran: equal up to the last bits that BLAS
    # threading may change under load, far closer than fits from other seeds are.
    for ours, theirs in zip(results, two_chains[0], strict=True):
        for a, b in zip(params(ours), params(theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    other_seed = params(two_chains[0][1])[0]
    assert not np.allclose(params(results[0])[0], other_seed, rtol=1e-3, atol=1e-3)


def close_client_in_second_fit(approx, losses, i):
    if i == 1:
        SEEN["fits"] += 1
    if SEEN["fits"] == 2 and i == 50:
        SEEN["client"].close()


def test_cluster_going_away_keeps_the_finished_chains():
    distributed = pytest.importorskip("distributed")
    SEEN["fits"] = 0
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster:  # fmt: skip
        SEEN["client"] = client = distributed.Client(cluster)
        lost = r"^1 of 2 chains completed \(chains 0\); chain 1 was lost: its worker process"
        with pytest.raises(ChainsFailed, match=lost) as raised:
            fit(model=regression_model(), chains=2, client=client, random_seed=1,
                callbacks=[close_client_in_second_fit], **FAST)  # fmt: skip
    error = raised.value
    assert list(error.completed) == [0] and list(error.errors) == [1]
    kept = error.completed[0]
    assert kept.n_steps == 300 and np.isfinite(params(kept)[0]).all()
    assert kept.approx.model.free_RVs[0].name == "beta"


def fail_in_second_fit(approx, losses, i):
    if i == 1:
        SEEN["fits"] += 1
    if SEEN["fits"] == 2 and i == 10:
        raise ValueError("boom")


def test_a_failing_chain_is_named_and_the_others_kept():
    SEEN["fits"] = 0
    with pytest.raises(ChainsFailed, match=r"^1 of 2 chains completed \(chains 0\); "
                       r"chain 1 failed: ValueError: boom$") as raised:  # fmt: skip
        fit(model=regression_model(), chains=2, cores=1, callbacks=[fail_in_second_fit],
            random_seed=1, **FAST)  # fmt: skip
    assert isinstance(raised.value.__cause__, ValueError)
    assert raised.value.completed[0].stop_reason == "max_steps"


def exit_at_step_20(approx, losses, i):
    if i == 20:
        os._exit(1)


def test_a_worker_process_dying_is_reported():
    with pytest.raises(ChainsFailed, match=r"^0 of 2 chains completed; chain 0 was lost") as raised:
        fit(model=regression_model(), chains=2, cores=2, callbacks=[exit_at_step_20], **FAST)
    assert all(isinstance(e, BrokenProcessPool) for e in raised.value.errors.values())


def test_one_chain_is_the_plain_fit():
    model = regression_model()
    plain = fit(model=model, random_seed=3, **FAST)
    one = fit(model=model, chains=1, cores=2, random_seed=3, **FAST)
    assert isinstance(one, FitResult)
    for a, b in zip(params(plain), params(one), strict=True):
        np.testing.assert_array_equal(a, b)


def test_start_builds_the_inference_of_every_chain():
    """``start=`` reaches each chain's Inference (the workers used to refuse it)."""
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two steps from jittered starts disagree
        results = fit(
            2,
            model=model,
            chains=2,
            cores=1,
            random_seed=1,
            warm_start=False,
            convergence=None,
            progressbar=False,
            start={"x": np.full(2, 50.0)},
        )
    for result in results:  # jittered by at most 2 around the start, then two tiny steps
        assert np.all(np.abs(result.approx.mean.eval() - 50.0) < 2.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chains": 0}, ValueError, "chains must be a positive integer, got 0"),
        ({"chains": -2}, ValueError, "chains must be a positive integer, got -2"),
        ({"chains": 2.0}, ValueError, "chains must be a positive integer, got 2.0"),
        ({"chains": True}, ValueError, "chains must be a positive integer, got True"),
        ({"chains": "4"}, ValueError, "chains must be a positive integer, got '4'"),
        ({"chains": 2, "cores": 0}, ValueError, "cores must be a positive integer or None, got 0"),
        ({"chains": 2, "cores": 1.5}, ValueError, "got 1.5"),
        ({"chains": 2, "client": "tcp://127.0.0.1:8786"}, TypeError,
         "client must be a dask.distributed.Client, got str"),
        ({"chains": 2, "checkpoint": "fit.npz"}, ValueError,
         "checkpoint works with chains=1 only, got checkpoint='fit.npz'"),
        ({"chains": 2, "resume": "fit.npz"}, ValueError, "resume works with chains=1 only"),
        ({"chains": 2, "method": "inference"}, ValueError,
         "method must be a method name when chains > 1"),
    ],
)  # fmt: skip
def test_bad_arguments(kwargs, error, match):
    model = regression_model()
    if kwargs.get("method") == "inference":
        kwargs["method"] = pm.ADVI(model=model)
    with pytest.raises(error, match=match):
        fit(model=model, progressbar=False, **kwargs)


INTERRUPTED_DRIVER = """
import json, os, sys, time
import pymc as pm
from pymc_adadelta import fit

folder, cores, chains = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def started(approx, losses, i):
    if i == 1:
        open(os.path.join(folder, f"started.{os.getpid()}.{time.time()}"), "w").close()

if __name__ == "__main__":
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=3)
    try:
        results = fit(300_000, model=model, chains=chains, cores=cores, convergence=None,
                      warm_start=False, callbacks=[started], progressbar=False, random_seed=1)
        out = {"stop_reasons": list(results.stop_reasons),
               "n_steps": [r.n_steps for r in results],
               "history": [int(r.history.sizes.get("iteration", 0)) for r in results]}
    except KeyboardInterrupt:
        out = {"raised": "KeyboardInterrupt"}
    json.dump(out, open(os.path.join(folder, "out.json"), "w"))
"""


def interrupt_chains(tmp_path, cores, chains, started, group):
    import json
    import signal
    import subprocess
    import sys
    import time

    driver = tmp_path / "driver.py"
    driver.write_text(INTERRUPTED_DRIVER)
    proc = subprocess.Popen([sys.executable, str(driver), str(tmp_path), str(cores), str(chains)],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 300
        while len(list(tmp_path.glob("started.*"))) < started:
            assert proc.poll() is None and time.time() < deadline, "the chains did not start"
            time.sleep(0.1)
        time.sleep(1.0)
        sent = time.time()
        if group:  # a terminal's Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
        else:  # Jupyter's interrupt: the kernel process only
            os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return json.loads((tmp_path / "out.json").read_text()), took


@pytest.mark.parametrize("group", [False, True], ids=["parent-only", "process-group"])
def test_ctrl_c_stops_every_chain_and_keeps_them(tmp_path, group):
    out, took = interrupt_chains(tmp_path, cores=2, chains=2, started=2, group=group)
    assert out.get("stop_reasons") == ["interrupted", "interrupted"], out
    assert all(0 < n < 300_000 for n in out["n_steps"])
    assert all(h > 0 for h in out["history"])  # each with its history
    assert took < 30  # stopped after a step; the rest is rebuilding the chains


def test_ctrl_c_with_one_core_starts_no_more_chains(tmp_path):
    out, _ = interrupt_chains(tmp_path, cores=1, chains=3, started=1, group=False)
    assert out.get("stop_reasons") == ["interrupted"], out
    assert len(list(tmp_path.glob("started.*"))) == 1


def test_a_script_without_main_guard_fails_at_once(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "script.py"
    log = tmp_path / "runs.txt"
    script.write_text(
        "import pymc as pm\n"
        "from pymc_adadelta import fit\n"
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
        "with pm.Model() as model:\n"
        "    pm.Normal('x', 0.0, 1.0)\n"
        "fit(50, model=model, chains=2, cores=2, progressbar=False)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr and "line 6" in done.stderr
    assert log.read_text().count("ran") == 1
