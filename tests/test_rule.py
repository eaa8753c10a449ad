import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pymc_adadelta.optim.rule import adadelta_rule

from .conftest import numpy_adadelta

finite = st.floats(-1e3, 1e3, allow_nan=False, width=64)
positive = st.floats(0.0, 1e3, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    g=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4), elements=finite),
    rho=st.floats(0.0, 0.999),
    eps=st.floats(1e-10, 1e-2),
    data=st.data(),
)
def test_rule_matches_reference(g, rho, eps, data):
    s = data.draw(hnp.arrays(np.float64, g.shape, elements=positive))
    u = data.draw(hnp.arrays(np.float64, g.shape, elements=positive))
    sg, sd = [s.copy()], [u.copy()]
    (expected,) = numpy_adadelta([g], [np.zeros_like(g)], sg, sd, 1.0, rho, eps)
    out = adadelta_rule(g, s, u, rho, 1 - rho, eps)
    np.testing.assert_allclose(-out.delta, expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(out.sq_grad, sg[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(out.sq_delta, sd[0], rtol=1e-14, atol=0)


def test_first_step_of_zero_state_is_sqrt_eps_over_rms():
    out = adadelta_rule(np.array([2.0]), np.zeros(1), np.zeros(1), 0.95, 0.05, 1e-6)
    expected = 2.0 * np.sqrt(1e-6) / np.sqrt(0.05 * 4.0 + 1e-6)
    np.testing.assert_allclose(out.delta, [expected], rtol=1e-15)
