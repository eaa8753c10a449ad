"""PSIS importance resampling of the export, and the Student-t proposal it resamples."""

import numpy as np
import pymc as pm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pymc_adadelta import fit, to_arviz
from pymc_adadelta._compat import arviz_group, psis_smooth
from pymc_adadelta.approx.corrected import PROPOSAL_DOF, student_t_draws
from pymc_adadelta.output.importance import resample_indices

from .conftest import SCHOOLS_SD, SCHOOLS_Y

RNG = np.random.default_rng


def test_psis_smooth_is_normalized_and_keeps_light_tails():
    log_ratios = RNG(0).normal(size=4000) * 0.3
    log_weights, khat = psis_smooth(log_ratios)
    assert np.isclose(np.logaddexp.reduce(log_weights), 0.0)
    assert khat < 0.3
    # the smoothing only touches the tail: the bulk keeps its ratios
    order = np.argsort(log_ratios)[:3000]
    shift = log_weights[order] - log_ratios[order]
    assert np.ptp(shift) < 1e-9


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.01, 10.0), min_size=5, max_size=60),
    st.integers(1, 200),
    st.integers(0, 2**31),
)
def test_systematic_resampling_counts_match_the_weights(raw, draws, seed):
    """Each proposal is picked floor or ceil of draws * w times (NumPy reference)."""
    from pymc_adadelta.output.importance import _systematic

    weights = np.asarray(raw) / np.sum(raw)
    picked = _systematic(weights, draws, RNG(seed))
    counts = np.bincount(picked, minlength=weights.size)
    expected = draws * weights
    assert counts.sum() == draws
    assert np.all(counts >= np.floor(expected) - 1) and np.all(counts <= np.ceil(expected) + 1)


def test_near_uniform_weights_keep_the_proposal_draws():
    rng = RNG(1)
    flat = rng.normal(size=(8000, 3))
    picked = resample_indices(rng.normal(size=8000) * 1e-3, flat, 1000, rng)
    assert not picked.resampled and picked.reason == "weights change nothing"
    np.testing.assert_array_equal(picked.indices, np.arange(1000))
    assert picked.ess > 7990


def test_weights_that_move_the_mean_are_resampled_towards_the_target():
    """Proposal N(0, 1), target N(0.5, 1): log ratio 0.5 x - 0.125; resampled mean ~0.5."""
    rng = RNG(2)
    flat = rng.normal(size=(8000, 1))
    picked = resample_indices(0.5 * flat[:, 0] - 0.125, flat, 1000, rng)
    assert picked.resampled and picked.khat < 0.7
    assert abs(flat[picked.indices, 0].mean() - 0.5) < 0.08
    never = resample_indices(0.5 * flat[:, 0] - 0.125, flat, 1000, rng, "never")
    assert not never.resampled and abs(flat[never.indices, 0].mean()) < 0.1


def test_ratios_without_a_finite_mean_are_not_resampled():
    """Ratios exp(1.5 E), E ~ Exp(1), are Pareto with k = 1.5: no finite mean."""
    rng = RNG(3)
    flat = rng.normal(size=(8000, 1))
    log_ratios = 1.5 * rng.exponential(size=8000)
    picked = resample_indices(log_ratios, flat, 1000, rng)
    assert picked.khat >= 1.0 and not picked.resampled and picked.reason == "k-hat >= 1"
    bad = resample_indices(np.r_[log_ratios[:-1], np.nan], flat, 1000, rng)
    assert bad.reason == "not finite" and np.isnan(bad.khat)


def test_student_t_draws_have_the_t_density_and_the_covariance(model):
    with model:
        approx = pm.ADVI(random_seed=1).approx
    cov = np.array([[2.0, 0.9, 0.0, 0.1], [0.9, 1.0, 0.2, 0.0], [0.0, 0.2, 0.5, 0.0],
                    [0.1, 0.0, 0.0, 0.3]])  # fmt: skip
    mean = np.array([1.0, -2.0, 0.5, 0.0])
    q = student_t_draws(approx, cov, 4096, RNG(4), mean)
    flat = np.concatenate([q.values["beta"], q.values["sigma_log__"][:, None]], axis=1)
    scale = cov * (PROPOSAL_DOF - 2) / PROPOSAL_DOF
    reference = stats.multivariate_t(mean, scale, df=PROPOSAL_DOF).logpdf(flat)
    np.testing.assert_allclose(q.logq, reference, rtol=1e-10)
    # scrambled Sobol points: the sample moments are much closer than 1/sqrt(n) = 0.016
    np.testing.assert_allclose(flat.mean(0), mean, atol=0.01)
    sd = np.sqrt(np.diag(cov))
    assert np.abs((np.cov(flat.T) - cov) / np.outer(sd, sd)).max() < 0.04


def eight_schools():
    """Rubin's eight schools, non-centred: a funnel in (tau, theta_trans)."""
    with pm.Model() as model:
        theta_trans = pm.Normal("theta_trans", 0.0, 1.0, shape=8)
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        pm.Normal("y", theta_trans * tau + mu, SCHOOLS_SD, observed=SCHOOLS_Y)
    return model


#: posteriordb's gold-standard reference (eight_schools-eight_schools_noncentered).
EIGHT_SCHOOLS_TAU = (3.602, 3.198)  # mean, sd


def test_export_is_resampled_where_the_gaussian_is_off():
    """tau's Gaussian in log tau has a too heavy right tail: sd 2-3x the reference."""
    result = fit(model=eight_schools(), random_seed=5, progressbar=False)
    data = to_arviz(result, draws=2000, random_seed=6)
    never = to_arviz(result, draws=2000, random_seed=6, resample="never")
    assert data.attrs["psis_resampled"] == 1 and data.attrs["psis_khat"] < 0.7
    assert never.attrs["psis_resampled"] == 0 and never.attrs["psis_resampling"] == "off"
    mean, sd = EIGHT_SCHOOLS_TAU
    tau = arviz_group(data, "posterior")["tau"].to_numpy().ravel()
    raw = arviz_group(never, "posterior")["tau"].to_numpy().ravel()
    assert abs(tau.mean() - mean) / sd < 0.1 and abs(tau.std() / sd - 1) < 0.15
    assert raw.std() / sd > 1.3  # what resampling corrected
    assert data.attrs["proposal"] == f"student_t({PROPOSAL_DOF:g})"


def test_resample_is_checked_before_any_work(model):
    with pytest.raises(ValueError, match="resample must be one of"):
        to_arviz(pm.ADVI(model=model).approx, resample="yes")


def test_too_few_proposals_for_a_pareto_tail_are_not_resampled():
    """Under 25 proposals there is no tail to fit (ArviZ 1 raises): keep them, k-hat NaN."""
    rng = RNG(5)
    picked = resample_indices(rng.normal(size=20), rng.normal(size=(20, 2)), 10, rng, "always")
    assert not picked.resampled and picked.reason == "too few draws" and np.isnan(picked.khat)
    np.testing.assert_array_equal(picked.indices, np.arange(10))
