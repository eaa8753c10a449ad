"""The natural scale of each variational parameter at the current point.

Adadelta's step is ``g * sqrt(E[dx²] + eps) / sqrt(E[g²] + eps)``: without ``eps`` it is
invariant to rescaling a coordinate, and with the default ``eps = 1e-6`` every step starts
at about ``sqrt(eps) = 1e-3`` in absolute units. That is far too small for a posterior sd
of 1e3 and as large as a posterior sd of 1e-3, where the refinement after the warm start
used to swamp the warm start's optimum (sblrc: 0.04 ref sd off before it, 0.80 after).

Started from accumulators set to these scales (``E[dx²] = s²``, ``E[g²] = 1/s²``) and a
negligible ``eps``, Adadelta runs as it would in coordinates standardized by ``s``: its
state sees every coordinate at unit scale, whatever the posterior's units. ``s`` is the
sd of the parameter's fluctuation under the ELBO's curvature at a mean-field optimum:

- ``mu``: the coordinate's conditional sd ``1/sqrt((Σ⁻¹)ᵢᵢ)`` (the ELBO's curvature in
  the mean is the posterior's precision there): for mean field its sd; for full rank not
  the marginal sd, which on correlated posteriors is many times larger (eight schools'
  funnel: steps of marginal sds drove the full-rank means 5 sd away);
- ``rho`` (``sd = softplus(rho)``): the ELBO's curvature in ``log sd`` is 2, so
  ``s = (1/√2) · d rho / d log sd = softplus(rho) / (√2 · sigmoid(rho))``;
- ``L_tril`` (full rank): none. Its accumulators stay at zero, so with the negligible
  epsilon its steps are about 1e-8 and the factor stays where the warm start put it, at
  the Cholesky factor of the linear-response covariance (exact for a Gaussian
  posterior), while the means are refined. Standardized steps of the factor (scale: the
  row's conditional sd) raised the loss and drove the means 4-7 sd away on eight
  schools and diamonds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymc_adadelta.approx.draws import gaussian_moments

__all__ = ["parameter_scales"]


def parameter_scales(approx: Any) -> list[tuple[Any, np.ndarray]]:
    """``(shared parameter, scale)`` pairs of every Gaussian group; scales > 0, float64.

    Parameters
    ----------
    approx : pymc Approximation
        Mean-field or full-rank groups (others are skipped).

    Returns
    -------
    list of (SharedVariable, ndarray)
        Each scale has its parameter's shape (see the module docstring).
    """
    pairs: list[tuple[Any, np.ndarray]] = []
    for group in approx.groups:
        params = group.params_dict
        if "mu" not in params:
            continue
        moments = gaussian_moments(group)
        conditional = moments.sd if moments.chol is None else _conditional_sd(moments.chol)
        pairs.append((params["mu"], conditional.reshape(params["mu"].get_value().shape)))
        if "rho" in params:
            pairs.append((params["rho"], _softplus_scale(params["rho"].get_value())))
        # L_tril gets no scale (see the module docstring)
    return [(p, np.maximum(s, np.finfo(np.float64).tiny)) for p, s in pairs]


def _softplus_scale(rho: np.ndarray) -> np.ndarray:
    """``softplus(rho) / (√2 sigmoid(rho))``, stable for large ``|rho|``."""
    rho = np.asarray(rho, dtype=np.float64)
    return np.logaddexp(0.0, rho) * (1.0 + np.exp(np.minimum(-rho, 700.0))) / np.sqrt(2.0)


def _conditional_sd(chol: np.ndarray) -> np.ndarray:
    """``1 / sqrt(diag(Σ⁻¹))`` of ``Σ = L Lᵀ``: each coordinate's sd given the others."""
    inverse = np.linalg.inv(chol)
    return 1.0 / np.sqrt(np.einsum("ki,ki->i", inverse, inverse))
