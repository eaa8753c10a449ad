"""Warm start: move a Gaussian approximation close to its optimum before Adadelta runs.

Adadelta's steps start at about sqrt(ε)/|g| and grow slowly, so from PyMC's default
start (means at the model's initial point, sd 0.69) a fit spends most of its steps
travelling, not fluctuating around the optimum; the R-hat rule cannot stop it until it
gets there. `warm_start` first maximizes the ELBO with *fixed* standard-normal draws
(the sample-average approximation of "deterministic ADVI", Giordano, Ingram and
Broderick 2024) with L-BFGS, which is fast and needs no learning rate; Adadelta then
refines from there with fresh draws every step, and the iterate average removes the
error of the fixed draws.

The fixed-draw objective is only as good as its draws and the model's density: when the
optimizer fails or ends at a non-finite point, the approximation is left as it was and
the reason is reported.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import vectorize_graph
from scipy.optimize import minimize

from pymc_adadelta.approx.layout import ordering

__all__ = ["WARM_START_DRAWS", "WarmStart", "fixed_draws", "warm_start"]

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
        optimizer's message, ``"non-finite"``).
    iterations : int
        L-BFGS iterations.
    elbo : float
        The fixed-draw ELBO at the end (NaN when nothing ran).
    """

    applied: bool
    reason: str
    iterations: int
    elbo: float


def warm_start(
    approx: Any, *, draws: int = WARM_START_DRAWS, maxiter: int = 1000, random_seed: Any = None
) -> WarmStart:
    """Set the means and sds of a Gaussian approximation by fixed-draw ELBO maximization.

    Parameters
    ----------
    approx : pymc Approximation
        Mean-field or full-rank, with one or more groups; the full-rank factor is set
        to the diagonal of the mean-field solution.
    draws : int, default `WARM_START_DRAWS`
        Fixed standard-normal draws of the objective.
    maxiter : int, default 1000
        Most L-BFGS iterations.
    random_seed : int or numpy Generator, optional
        Seed of the fixed draws.

    Returns
    -------
    WarmStart

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta.warmstart import warm_start
    >>> with pm.Model():
    ...     x = pm.Normal("x", 3.0, 2.0)
    ...     approx = pm.ADVI(random_seed=1).approx
    >>> warm_start(approx, random_seed=1).applied
    True
    >>> round(float(approx.params[0].get_value()[0]), 1)
    3.0
    """
    skip = _unsupported(approx)
    if skip:
        return WarmStart(False, skip, 0, float("nan"))
    mean, sd = _current_moments(approx)
    z = fixed_draws(draws, mean.size, np.random.default_rng(random_seed))
    objective = _objective(approx, z)
    start = np.concatenate([mean, _inverse_softplus(sd)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": maxiter})  # fmt: skip
    if not np.isfinite(result.fun) or not np.isfinite(result.x).all():
        return WarmStart(False, "non-finite", int(result.nit), float("nan"))
    if not result.success and result.nit == 0:
        return WarmStart(False, str(result.message), 0, float("nan"))
    _set_moments(approx, result.x[: mean.size], result.x[mean.size :])
    return WarmStart(True, "ok", int(result.nit), -float(result.fun))


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


def _objective(approx: Any, z: np.ndarray) -> Any:
    """Compile ``(mu, rho) -> (-ELBO, gradient)`` over the fixed draws ``z``."""
    model = approx.model
    n = z.shape[1]
    params = pt.vector("params", dtype="float64")
    mu, rho = params[:n], params[n:]
    sd = pt.softplus(rho)
    x = mu + sd * pt.as_tensor(z)
    values: dict[str, Any] = {}
    offset = 0
    for group in approx.groups:
        for name, slc, shape in ordering(group):
            values[name] = x[:, offset + slc.start : offset + slc.stop].reshape((len(z), *shape))
        offset += group.ddim
    replace = {v: values[v.name].astype(v.dtype) for v in model.value_vars}
    logp = vectorize_graph(model.replace_rvs_by_values([model.logp()])[0], replace=replace)
    loss = -(logp.mean() + pt.log(sd).sum())
    gradient: Any = pt.grad(loss, params)
    function = pytensor.function([params], [loss, gradient])

    def loss_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = function(flat)
        if not np.isfinite(value) or not np.isfinite(grad).all():
            return np.inf, np.zeros_like(flat)  # makes L-BFGS's line search back off
        return float(value), np.asarray(grad, dtype=np.float64)

    return loss_and_grad


def _inverse_softplus(sd: np.ndarray) -> np.ndarray:
    return sd + np.log(-np.expm1(-sd))


def _set_moments(approx: Any, mean: np.ndarray, rho: np.ndarray) -> None:
    offset = 0
    for group in approx.groups:
        stop = offset + group.ddim
        params = group.params_dict
        params["mu"].set_value(mean[offset:stop].astype(params["mu"].dtype))
        if "rho" in params:
            params["rho"].set_value(rho[offset:stop].astype(params["rho"].dtype))
        else:  # full rank: diagonal factor, softplus-parameterized diagonal
            n = group.ddim
            chol = np.diag(rho[offset:stop])[np.tril_indices(n)]
            params["L_tril"].set_value(chol.astype(params["L_tril"].dtype))
        offset = stop
