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

- ``mu``: the approximation's sd of that coordinate (the curvature in the mean is
  ``1/sd²`` there);
- ``rho`` (``sd = softplus(rho)``): the ELBO's curvature in ``log sd`` is 2, so
  ``s = (1/√2) · d rho / d log sd = softplus(rho) / (√2 · sigmoid(rho))``;
- ``L_tril`` (full rank): the diagonal entries as ``rho``; an off-diagonal entry of row
  ``i`` the sd of coordinate ``i`` over √2.
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
        pairs.append((params["mu"], moments.sd.reshape(params["mu"].get_value().shape)))
        if "rho" in params:
            pairs.append((params["rho"], _softplus_scale(params["rho"].get_value())))
        elif "L_tril" in params:
            pairs.append((params["L_tril"], _cholesky_scale(params["L_tril"].get_value(),
                                                            moments.sd)))  # fmt: skip
    return [(p, np.maximum(s, np.finfo(np.float64).tiny)) for p, s in pairs]


def _softplus_scale(rho: np.ndarray) -> np.ndarray:
    """``softplus(rho) / (√2 sigmoid(rho))``, stable for large ``|rho|``."""
    rho = np.asarray(rho, dtype=np.float64)
    return np.logaddexp(0.0, rho) * (1.0 + np.exp(np.minimum(-rho, 700.0))) / np.sqrt(2.0)


def _cholesky_scale(packed: np.ndarray, sd: np.ndarray) -> np.ndarray:
    n = sd.size
    rows, cols = np.tril_indices(n)
    scale = sd[rows] / np.sqrt(2.0)
    on_diagonal = rows == cols
    scale[on_diagonal] = _softplus_scale(np.asarray(packed, dtype=np.float64)[on_diagonal])
    return scale
