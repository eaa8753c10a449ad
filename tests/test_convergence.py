import numpy as np
import pymc as pm
import pytest

from pymc_adadelta import Convergence, adadelta

from .conftest import normal_mean_model


def drive(rule, approx, path):
    """Feed the callback a made-up sequence of parameter values."""
    mu = approx.params[0]
    for i, value in enumerate(path, start=1):
        mu.set_value(np.array([value]))
        rule(approx, np.ones(i), i)


@pytest.fixture
def approx():
    model, _, _ = normal_mean_model()
    with model:
        return pm.ADVI(random_seed=0).approx


def test_stationary_noise_converges_and_a_random_walk_does_not(approx):
    rng = np.random.default_rng(1)
    stationary = Convergence(check_every=500, min_steps=1000, min_window=500)
    with pytest.raises(StopIteration, match=r"Converged at step 1,500|reached"):
        drive(stationary, approx, 1.0 + 0.01 * rng.normal(size=20_000))
    assert stationary.converged and stationary.stationary_at <= 2000
    walk = Convergence(check_every=500, min_steps=1000, min_window=500)
    drive(walk, approx, np.cumsum(0.05 * rng.normal(size=20_000)))
    # Short windows of a random walk can pass R-hat by chance; the MCSE check and the
    # re-check of the whole window keep such a fit from being declared converged.
    assert not walk.converged and not walk.average and walk.stop_reason is None


def test_rhat_rule_stops_a_real_fit_and_averages_near_the_posterior():
    model, post_mean, post_sd = normal_mean_model()
    rule = Convergence(check_every=500, min_steps=1000, min_window=500)
    with model:
        approx = pm.fit(50_000, obj_optimizer=adadelta(), callbacks=[rule], progressbar=False,
                        random_seed=3)  # fmt: skip
    assert rule.converged and rule.converged_at < 50_000
    assert len(approx.hist) < 50_000
    assert abs(rule.average["mu"][0] - post_mean) < 0.1 * post_sd
    assert rule.window_start <= rule.stationary_at <= rule.converged_at


def test_mcse_rule_drops_a_transient_and_refuses_a_random_walk(approx):
    rng = np.random.default_rng(2)
    ramp_then_flat = np.concatenate([np.linspace(0.0, 1.0, 3000), np.ones(20_000)])
    rule = Convergence("mcse", check_every=1000, min_steps=2000, min_window=500)
    with pytest.raises(StopIteration, match="mcse"):
        drive(rule, approx, ramp_then_flat + 0.01 * rng.normal(size=23_000))
    assert rule.window_start > 2000  # the ramp was dropped as a transient
    sd = np.log(2.0)  # the approximation's sd, softplus(rho=0): the rule's unit
    assert abs(rule.average["mu"][0] - 1.0) < 0.1 * sd
    assert any(c["halves_drift"] > 0.2 for c in rule.checks)
    walk = Convergence("mcse", check_every=1000, min_steps=2000, min_window=500)
    drive(walk, approx, np.cumsum(0.05 * rng.normal(size=20_000)))
    assert not walk.converged and not walk.average


def feed_losses(rule, losses):
    """Give the rule a loss sequence; return the step it stopped at, or None."""
    for i in range(1, len(losses) + 1):
        try:
            rule(None, losses[:i], i)
        except StopIteration:
            return i
    return None


def test_cusum_rule_fires_on_a_plateau_and_not_on_a_steady_descent():
    rng = np.random.default_rng(5)
    noise = rng.normal(size=6000)
    plateau_at = 3000
    loss = np.concatenate([np.linspace(3000.0, 0.0, plateau_at), np.zeros(3000)]) + noise
    stop = feed_losses(Convergence("cusum", min_steps=1000), loss)
    assert stop is not None and plateau_at < stop < plateau_at + 300
    descent = np.linspace(6000.0, 0.0, 6000) + noise
    assert feed_losses(Convergence("cusum", min_steps=1000), descent) is None


def test_cusum_rule_is_invariant_to_affine_rescaling_and_shrugs_off_a_spike():
    rng = np.random.default_rng(6)
    loss = np.concatenate([np.linspace(2500.0, 0.0, 2500), np.zeros(2500)]) + rng.normal(size=5000)
    stop = feed_losses(Convergence("cusum", min_steps=1000), loss)
    assert feed_losses(Convergence("cusum", min_steps=1000), 1e4 * loss - 7.0) == stop
    spiked = loss.copy()
    spiked[1500] += 1e6
    assert feed_losses(Convergence("cusum", min_steps=1000), spiked) > 2500


def test_stan_rule_stops_on_the_relative_loss_change():
    model, _, _ = normal_mean_model()
    rule = Convergence("stan", check_every=200, min_steps=400)
    with model:
        pm.fit(50_000, obj_optimizer=adadelta(), callbacks=[rule], progressbar=False,
               random_seed=3)  # fmt: skip
    assert rule.converged
    last = [c["rel_change"] for c in rule.checks[-10:]]
    assert np.mean(last) < 0.01 or np.median(last) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "soon"}, "rule must be one of"),
        ({"check_every": 0}, "check_every must be a positive integer"),
        ({"check_every": 50, "thin": 10}, r"check_every \(50\) must be at least 10 \* thin"),
        ({"rhat_threshold": 1.0}, r"rhat_threshold must be a number > 1.0"),
        ({"mcse_threshold": 0.0}, "mcse_threshold must be a number > 0.0"),
        ({"cusum_threshold": -1.0}, "cusum_threshold must be a number > 0.0"),
        ({"cusum_halflife": 0}, "cusum_halflife must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Convergence(**kwargs)


@pytest.mark.parametrize("rule_name", ["rhat", "mcse"])
def test_memory_is_bounded_whatever_the_number_of_steps(rule_name):
    import tracemalloc

    from pymc_adadelta.callbacks.convergence.iterates import MAX_RECORDS

    dim = 500
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=dim)
    approx = pm.ADVI(model=model).approx
    mu, rho = approx.params
    rng = np.random.default_rng(0)
    rule = Convergence(rule_name, mcse_threshold=1e-9, min_window=500)  # never converges
    tracemalloc.start()
    traced = {}
    for i in range(1, 60_001):
        if i % rule.thin == 0:
            mu.set_value(0.05 * rng.standard_normal(dim))
            rho.set_value(0.05 * rng.standard_normal(dim))
        rule(approx, None, i)
        if i in (20_000, 60_000):
            traced[i] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    iterates = rule._rule.iterates
    assert len(iterates.values) <= MAX_RECORDS and len(iterates.means.sums) <= 64
    # a full copy per record would be 6,000 x 1,000 x 8 bytes = 46 MiB more
    assert traced[60_000] - traced[20_000] < 8 * 2**20
    assert not rule.converged


def test_a_coordinate_that_does_not_move_does_not_block_the_rhat_rule():
    from pymc_adadelta.callbacks.convergence.rhat import max_split_rhat

    draws = np.random.default_rng(0).normal(size=(400, 3))
    draws[:, 1] = 2.0  # e.g. a rho that the driver leaves alone
    worst = max_split_rhat(draws, np.array([200, 400]))
    assert np.isfinite(worst).all() and (worst < 1.1).all()
