"""`az.summary` on the export: no shape warning for one fit's draws, R-hat NaN (one chain)."""

import logging

import arviz as az
import numpy as np
import pytest

from pymc_adadelta import fit, to_arviz
from pymc_adadelta._compat import (
    ARVIZ_MAJOR,
    VI_DRAWS,
    VI_DRAWS_ATTR,
    _quiet_one_chain_shape_warning,
    load_arviz,
)

from .conftest import regression_model


@pytest.fixture(scope="module")
def exported():
    result = fit(300, model=regression_model(), convergence=None, progressbar=False,
                 random_seed=1)  # fmt: skip
    return to_arviz(result, draws=200, random_seed=1)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def arviz_log(caplog):
    """Records ArviZ logs: ArviZ 0.x's own logger (no parent) and the root logger's."""
    collect = Collect()
    logger = getattr(az, "_log", None)
    if ARVIZ_MAJOR == 0:
        logger.cache.clear()  # it logs each message once per process: start afresh
        logger.addHandler(collect)
    caplog.set_level(logging.DEBUG)
    yield lambda: collect.records + caplog.records
    if ARVIZ_MAJOR == 0:
        logger.removeHandler(collect)


def shape_warnings(records):
    """ArviZ's shape warnings (ArviZ 1.x logs the same text at INFO level, hidden by default)."""
    return [
        r
        for r in records
        if "Shape validation failed" in r.getMessage() and r.levelno >= logging.WARNING
    ]


def test_posterior_is_one_chain_marked_as_vi_draws(exported):
    posterior = exported["posterior"]
    assert posterior.sizes["chain"] == 1 and posterior.sizes["draw"] == 200
    assert posterior.attrs[VI_DRAWS_ATTR] == VI_DRAWS


@pytest.mark.parametrize("reload", [False, True])
def test_summary_has_no_shape_warning_and_nan_rhat(exported, reload, arviz_log, tmp_path):
    data = exported
    if reload:
        data.to_netcdf(tmp_path / "fit.nc")
        data = load_arviz(tmp_path / "fit.nc")
    table = az.summary(data)
    assert not shape_warnings(arviz_log())
    assert np.isnan(np.asarray(table["r_hat"], dtype=float)).all()  # one chain: no R-hat
    assert np.isfinite(np.asarray(table["mean"], dtype=float)).all()


@pytest.mark.skipif(ARVIZ_MAJOR != 0, reason="ArviZ 1.x logs it at INFO level, hidden by default")
def test_one_chain_mcmc_keeps_arviz_warning(arviz_log):
    _quiet_one_chain_shape_warning()  # as after an export
    draws = np.random.default_rng(0).normal(size=(1, 100))
    az.summary(az.from_dict(posterior={"x": draws}))
    assert shape_warnings(arviz_log())
