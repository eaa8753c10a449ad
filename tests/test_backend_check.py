"""`fit(backend=...)` with the backend's library missing raises at once, naming the extra."""

import importlib.util
import logging
import time

import pytest

from pymc_adadelta import fit
from pymc_adadelta._compat import available_backends

from .conftest import regression_model


@pytest.fixture
def without(monkeypatch):
    """Make the named top-level libraries look not installed to ``find_spec``."""

    def hide(*names):
        real = importlib.util.find_spec

        def find_spec(name, *args, **kwargs):
            if name.split(".")[0] in names:
                return None
            return real(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.mark.parametrize("backend", ["jax", "numba"])
@pytest.mark.parametrize("chains", [1, 2])
def test_missing_backend_library_raises_before_any_work(backend, chains, without, caplog):
    without(backend)
    assert backend not in available_backends()
    start = time.perf_counter()
    with caplog.at_level(logging.DEBUG), pytest.raises(ImportError) as raised:
        fit(100, model=regression_model(), backend=backend, chains=chains, progressbar=False)
    assert time.perf_counter() - start < 2.0  # no warm start, no compile, no worker
    message = str(raised.value)
    assert f"install pymc-adadelta[{backend}]" in message and repr(backend) in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be one of"):
        fit(100, model=regression_model(), backend="cuda", progressbar=False)
