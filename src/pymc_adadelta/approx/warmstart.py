"""Warm start: move a Gaussian approximation close to its optimum before Adadelta runs.

Adadelta's steps start at about sqrt(ε)/|g| and grow slowly, so from PyMC's default
start (means at the model's initial point, sd 0.69) a fit spends most of its steps
travelling, not fluctuating around the optimum; the R-hat rule cannot stop it until it
gets there. `warm_start` first maximizes the ELBO with *fixed* standard-normal draws
(the sample-average approximation of "deterministic ADVI", Giordano, Ingram and
Broderick 2024) with L-BFGS, which is fast and needs no learning rate; Adadelta then
refines from there with fresh draws every step, and the iterate average removes the
error of the fixed draws.

After L-BFGS a trust-region Newton-CG polishes the optimum (ill-conditioned posteriors
stall L-BFGS), and the Hessian there gives the linear-response covariance
(`pymc_adadelta.approx.linear_response`): ``WarmStart.covariance``, which `to_arviz`
uses in place of the mean-field sds, and which starts a full-rank Cholesky factor.

The warm start never ends a fit: whatever fails (the optimizer, a non-finite point, a
graph that cannot be compiled), the approximation is left as it was, or as far as it got,
and the reason is reported in `WarmStart`.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
import pytensor
import xarray as xr

from pymc_adadelta.approx.fixed_draw import FixedDrawObjective
from pymc_adadelta.approx.linear_response import (
    covariance_dataarray,
    linear_response,
    mean_dataarray,
    newton_refine,
)
from pymc_adadelta.approx.standardized import standardized_lbfgs

__all__ = ["WARM_START_DRAWS", "WarmStart", "fixed_draws", "set_moments", "warm_start"]

#: Fixed draws of the warm-start objective.
WARM_START_DRAWS = 30


class WarmStart(NamedTuple):
    """What `warm_start` did.

    Attributes
    ----------
    applied : bool
        Whether the approximation's parameters were replaced.
    reason : str
        ``"ok"``, or why they were not (``"minibatch"``, ``"not gaussian"``, the
        optimizer's message, ``"non-finite"``, ``"error: ..."``).
    iterations : int
        L-BFGS iterations (plus Newton-CG iterations, see ``newton_iterations``).
    elbo : float
        The fixed-draw ELBO at the end (NaN when nothing ran).
    covariance : xarray.DataArray or None
        Linear-response covariance of the unconstrained latent vector (dims ``latent``,
        ``latent_bis``, labelled ``beta[0]``, ...), None when it could not be computed.
    covariance_reason : str
        ``"ok"`` or why there is no covariance.
    newton_iterations : int
        Iterations of the trust-region Newton-CG polish after L-BFGS.
    mode : str
        How the objective was evaluated: ``"vectorized"`` over the draws or ``"loop"``.
    seconds : float
        Wall time of the whole warm start, compilation included.
    covariance_seconds : float
        The part spent on the linear-response covariance.
    mean : xarray.DataArray or None
        The optimum's mean of the unconstrained latent vector (dim ``latent``).
    """

    applied: bool
    reason: str
    iterations: int
    elbo: float
    covariance: xr.DataArray | None = None
    covariance_reason: str = "not computed"
    newton_iterations: int = 0
    mode: str = ""
    seconds: float = 0.0
    covariance_seconds: float = 0.0
    mean: xr.DataArray | None = None

    def __repr__(self) -> str:
        """The fields, with the covariance and the mean as their shapes."""
        fields = {name: getattr(self, name) for name in self._fields}
        for name in ("covariance", "mean"):
            value = fields[name]
            if value is not None:
                fields[name] = f"<DataArray {name} {tuple(value.shape)}>"
        shown = ", ".join(f"{k}={v}" if k in ("covariance", "mean") and v is not None
                          else f"{k}={v!r}" for k, v in fields.items())  # fmt: skip
        return f"WarmStart({shown})"


def warm_start(
    approx: Any,
    *,
    draws: int = WARM_START_DRAWS,
    maxiter: int = 300,
    random_seed: Any = None,
    covariance: bool = True,
) -> WarmStart:
    """Set the means and sds of a Gaussian approximation by fixed-draw ELBO maximization.

    Parameters
    ----------
    approx : pymc Approximation
        Mean-field or full-rank, with one or more groups. A full-rank factor starts at
        the Cholesky factor of the linear-response covariance (the mean-field sds on a
        diagonal when there is none).
    draws : int, default `WARM_START_DRAWS`
        Fixed standard-normal draws of the objective.
    maxiter : int, default 300
        Most L-BFGS iterations (then a trust-region Newton-CG polishes, at most 100).
    random_seed : int or numpy Generator, optional
        Seed of the fixed draws.
    covariance : bool, default True
        Compute the linear-response covariance.

    Returns
    -------
    WarmStart
        Never raises: failures are reported in ``reason`` / ``covariance_reason``.

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta.approx.warmstart import warm_start
    >>> with pm.Model():
    ...     x = pm.Normal("x", 3.0, 2.0)
    ...     approx = pm.ADVI(random_seed=1).approx
    >>> started = warm_start(approx, random_seed=1)
    >>> started.applied, round(float(approx.params[0].get_value()[0]), 1)
    (True, 3.0)
    >>> round(float(started.covariance[0, 0]), 2)
    4.0
    """
    began = time.perf_counter()
    try:
        started = _warm_start(approx, draws, maxiter, random_seed, covariance)
    except Exception as exc:
        started = WarmStart(False, f"error: {type(exc).__name__}: {exc}"[:400], 0, float("nan"))
    return started._replace(seconds=time.perf_counter() - began)


def _warm_start(
    approx: Any, draws: int, maxiter: int, random_seed: Any, covariance: bool
) -> WarmStart:
    skip = _unsupported(approx)
    if skip:
        return WarmStart(False, skip, 0, float("nan"))
    mean, sd = _current_moments(approx)
    z = fixed_draws(draws, mean.size, np.random.default_rng(random_seed))
    objective = FixedDrawObjective(approx, z)
    found = standardized_lbfgs(objective, np.concatenate([mean, np.log(sd)]), maxiter)
    if found.failure:
        return WarmStart(False, found.failure, found.iterations, float("nan"), mode=objective.mode)
    scaled, xi, loss, newton_iterations = found.scaled, found.xi, found.loss, 0
    try:
        polished = newton_refine(scaled, xi)
        if np.isfinite(polished.fun) and polished.fun <= loss:
            xi, loss, newton_iterations = polished.x, float(polished.fun), int(polished.nit)
    except Exception:
        pass
    eta = scaled.to_eta(xi)
    began = time.perf_counter()
    response = linear_response(scaled, xi) if covariance else None
    seconds = time.perf_counter() - began
    cov = None
    if response is not None and response.covariance is not None:
        back = scaled.mean_transform()  # from standardized coordinates to the means
        cov = back @ response.covariance @ back.T
    set_moments(approx, eta[: mean.size], np.exp(eta[mean.size :]), cov)
    return WarmStart(
        True, "ok", found.iterations, -loss,
        covariance=None if cov is None else covariance_dataarray(approx, cov),
        covariance_reason="off" if response is None else response.reason,
        newton_iterations=newton_iterations, mode=objective.mode, covariance_seconds=seconds,
        mean=mean_dataarray(approx, eta[: mean.size]),
    )  # fmt: skip


def fixed_draws(draws: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Antithetic standard-normal draws, scaled to mean 0 and variance 1 per coordinate.

    Antithetic pairs make the fixed-draw ELBO exact in the mean for quadratic log
    densities, and the per-coordinate scaling makes it exact in the variances, so on a
    Gaussian posterior the warm start lands on the mean-field optimum itself.
    """
    half = rng.standard_normal((-(-draws // 2), dim))
    z = np.concatenate([half, -half])[:draws]
    return z / np.sqrt((z**2).mean(axis=0))


def _unsupported(approx: Any) -> str:
    if any(not ({"mu", "rho"} <= set(g.params_dict) or "L_tril" in g.params_dict)
           for g in approx.groups):  # fmt: skip
        return "not gaussian"
    logp = approx.model.logp()
    if any(isinstance(v.type, pytensor.tensor.random.type.RandomType)
           for v in pytensor.graph.graph_inputs([logp])):  # fmt: skip
        return "minibatch"  # a random log density: L-BFGS needs a fixed objective
    return ""


def _current_moments(approx: Any) -> tuple[np.ndarray, np.ndarray]:
    from pymc_adadelta.approx.draws import gaussian_moments

    moments = [gaussian_moments(g) for g in approx.groups]
    return np.concatenate([m.mean for m in moments]), np.concatenate([m.sd for m in moments])


def _inverse_softplus(sd: np.ndarray) -> np.ndarray:
    return sd + np.log(-np.expm1(-sd))


def set_moments(
    approx: Any, mean: np.ndarray, sd: np.ndarray, covariance: np.ndarray | None
) -> None:
    """Write a flat latent mean and sds into every Gaussian group of ``approx``.

    Mean-field groups take the sds (PyMC's ``rho = softplus⁻¹(sd)``); full-rank groups the
    Cholesky factor of their block of ``covariance`` (the sds on a diagonal without one).
    """
    offset = 0
    for group in approx.groups:
        stop = offset + group.ddim
        params = group.params_dict
        params["mu"].set_value(mean[offset:stop].astype(params["mu"].dtype))
        if "rho" in params:
            rho = _inverse_softplus(sd[offset:stop])
            params["rho"].set_value(rho.astype(params["rho"].dtype))
        else:  # full rank: the factor of the linear-response block (or the sds)
            block = None if covariance is None else covariance[offset:stop, offset:stop]
            chol = np.diag(sd[offset:stop]) if block is None else np.linalg.cholesky(block)
            diag = np.arange(group.ddim)
            chol[diag, diag] = _inverse_softplus(chol[diag, diag])  # PyMC's softplus diagonal
            packed = chol[np.tril_indices(group.ddim)]
            params["L_tril"].set_value(packed.astype(params["L_tril"].dtype))
        offset = stop
