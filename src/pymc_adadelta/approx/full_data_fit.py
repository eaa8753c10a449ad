"""Fit a mean-field Gaussian to the FULL-data posterior of a minibatch model, in few passes.

The objective is the fixed-draw ELBO of `pymc_adadelta.approx.warmstart` (antithetic,
per-coordinate scaled draws: exact for Gaussian posteriors, which large-N posteriors
are), evaluated on the full data chunk by chunk (`FullData`). Passes over the data are
what costs, so most of the optimization runs on a random subsample of ``n0`` rows
scaled to the full size, and the full data enter only through one gradient per outer
iteration, as a linear correction of the subsample objective (the "surrogate
likelihood" of Jordan, Lee and Yang 2019, a control variate on the gradient):

    phi_{k+1} = argmin  F_sub(phi) - <grad F_sub(phi_k) - grad F_full(phi_k), phi>

Its fixed point is the full-data optimum (the gradients cancel there), and each outer
iteration shrinks the distance to it by about the relative difference of the subsample
and full-data Hessians, ~sqrt(dim / n0): two or three full passes reach 0.01 sd.
The iteration stops when an outer step moves no mean by more than ``tol`` of its sd
and no sd by more than a fraction ``tol``, or when the distance left, estimated from the
contraction of the last two steps (step * r / (1 - r), r = step / previous step < 0.5),
is below ``tol``: the steps of a contraction shrink geometrically. A step that the trust
region (`pymc_adadelta.approx.trust_region`) cut short counts for neither.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize

from pymc_adadelta.approx.full_data import CHUNK_ROWS, FullData
from pymc_adadelta.approx.layout import ordering
from pymc_adadelta.approx.row_taylor import row_functions
from pymc_adadelta.approx.subsample import subsample_rows, subsample_size
from pymc_adadelta.approx.trust_region import Region, at_edge, scaled_minimize
from pymc_adadelta.approx.warmstart import fixed_draws

__all__ = ["DRAWS", "FullDataFit", "fit_full_data"]

#: Fixed draws of the objective: antithetic and scaled, so exact on Gaussian posteriors,
#: which large-N posteriors nearly are; each costs one evaluation of the data.
DRAWS = 6
#: Draws at which the Hessian of the linear-response covariance is taken.
HESSIAN_DRAWS = 2
#: Rows of the rough first fit, which finds the scale of every coordinate.
ROUGH_ROWS = 2_000
#: Tolerance (gradient in sd units, about the error in sds) of the rough fit and of the
#: subsample warm start when full-data corrections follow: they only need to get within
#: a fraction of the sds that the first correction moves (4.5 sds at 1/20 of the data).
WARM_GTOL = 0.1
#: Tolerance of the first corrected fit, which moves by about sqrt(N / n0) sds. Later
#: ones: `INNER_FRACTION` of the previous move, between 1e-4 and `INNER_GTOL` (the next
#: move is a fraction of the previous one, and may be the last).
FIRST_GTOL = 1e-2
INNER_GTOL = 1e-3
INNER_FRACTION = 0.01

Rows = tuple[np.ndarray, ...]


class FullDataFit(NamedTuple):
    """What `fit_full_data` did: the optimum and the cost, step by step."""

    mean: np.ndarray
    rho: np.ndarray
    converged: bool
    passes: float  # rows evaluated / rows of the data (subsample evaluations included)
    outer_steps: np.ndarray  # per outer iteration: largest move in sd units
    loss: np.ndarray  # per outer iteration: full-data -ELBO at its start
    passes_trace: np.ndarray  # per outer iteration: passes so far
    subsample_rows: int
    lbfgs_iterations: int
    covariance: np.ndarray | None  # linear response: the inverse Hessian in the means
    failed: bool = False  # the full-data loss rose after every step tried (`Region`)


class _Objective:
    """``theta (draws, dim) -> (sum of log p over draws, gradient)`` per chunk.

    The compiled function is the model's `RowFunctions` (shared with the export);
    ``theta``'s columns are in the approximation's order, permuted to the model's.
    """

    def __init__(self, whole: FullData, approx: Any, z: np.ndarray) -> None:
        self.whole, self.z = whole, z
        shapes, columns, offset = {}, {}, 0
        for group in approx.groups:
            for name, slc, shape in ordering(group):
                shapes[name] = shape
                columns[name] = np.arange(offset + slc.start, offset + slc.stop)
            offset += group.ddim
        self.functions = row_functions(whole, shapes)
        order = np.concatenate([columns[v.name] for v in self.functions.value_vars])
        self.order = None if (order == np.arange(offset)).all() else order
        self.rows_evaluated = 0.0

    def gradients(
        self, theta: np.ndarray, chunks: Iterator[Rows], n_rows: int
    ) -> tuple[float, Any]:
        """Sum over the rows of theta of log p (scaled to the data), and each row's gradient."""
        value, grad, first = 0.0, np.zeros_like(theta), True
        inputs = theta if self.order is None else theta[:, self.order]
        for arrays in chunks:
            rows = len(arrays[0])
            weights = np.array([rows / n_rows if s is not None else self.whole.length / n_rows
                                for s in self.whole.sizes])  # fmt: skip
            v, g, _ = self.functions.evaluate(inputs, weights, float(first), *arrays)
            value, first = value + float(np.sum(v)), False
            if self.order is None:
                grad += g
            else:
                grad[:, self.order] += g
            self.rows_evaluated += rows * len(theta) / len(self.z)
        return value, grad

    def on_chunks(self, phi: np.ndarray, chunks: Iterator[Rows], n_rows: int) -> tuple[float, Any]:
        """``-ELBO`` and its gradient in ``(mu, rho)`` over chunks making ``n_rows`` rows."""
        d = self.z.shape[1]
        mu, rho = phi[:d], phi[d:]
        sd = np.logaddexp(0.0, rho)
        value, grad = self.gradients(mu + sd * self.z, chunks, n_rows)
        draws = len(self.z)
        loss = -(value / draws + np.log(sd).sum())
        d_mu = -grad.sum(axis=0) / draws
        d_rho = -((grad * self.z).sum(axis=0) / draws + 1.0 / sd) / (1.0 + np.exp(-rho))
        if not np.isfinite(loss) or not np.isfinite(d_mu).all() or not np.isfinite(d_rho).all():
            return np.inf, np.zeros_like(phi)
        return loss, np.concatenate([d_mu, d_rho])


def _split(rows: Rows, size: int) -> Iterator[Rows]:
    n = len(rows[0])
    for start in range(0, n, size):
        yield tuple(a[start : start + size] for a in rows)


def fit_full_data(
    whole: FullData,
    approx: Any,
    start: np.ndarray,
    *,
    rng: np.random.Generator,
    draws: int = DRAWS,
    subsample: int | None = None,
    tol: float = 0.01,
    max_passes: float = 20.0,
    on_step: Callable[[int, float, float], None] | None = None,
) -> FullDataFit:
    """Minimize the full-data fixed-draw ``-ELBO`` from ``start = (mu, rho)``.

    Data of at most twice the subsample are held whole and fitted directly.
    """
    n = whole.length
    n0 = min(n, subsample if subsample is not None else subsample_size(whole))
    if n <= 2 * n0:
        n0 = n
    whole.check_total_size()
    whole.check_in_memory()  # NaN rows: an error before compiling, not after the warm start
    z = fixed_draws(draws, start.size // 2, rng)
    sub = subsample_rows(whole, n0, rng)
    n0 = len(sub[0])  # whole chunks of a chunked source: about n0 rows
    objective = _Objective(whole, approx, z)

    def passes() -> float:
        return objective.rows_evaluated / n

    phi, iterations, success = _warm_start(objective, sub, start, loose=n0 < n)
    steps: list[float] = []
    edges: list[bool] = []  # per outer step: whether the trust region cut it short
    losses: list[float] = []
    trace: list[float] = []
    converged = n0 >= n and success  # the subsample is the data
    region = Region(phi)
    while not converged and (passes() < max_passes or not steps):
        full_loss, full_grad = objective.on_chunks(phi, whole.chunks(), whole.length)
        phi = region.judge(phi, full_loss, full_grad)
        if region.failed:
            break
        new, nit = _corrected_step(objective, sub, phi, region.full_grad,
                                   _inner_gtol(steps), region.radius)  # fmt: skip
        iterations += nit
        edges.append(at_edge(phi, new, region.radius))
        step, phi = _moved(phi, new), new
        steps.append(float(step))
        losses.append(float(region.best_loss))
        trace.append(passes())
        if on_step is not None:
            on_step(len(steps), passes(), float(step))
        if _converged(steps, edges, tol):
            converged = True
            break
    if not converged and region.best_phi is not None:
        phi = region.best_phi  # the last step's loss is unknown, or rose
    d = phi.size // 2
    covariance = _mean_covariance(objective, sub, n0, phi)
    if not converged:
        warnings.warn(_not_converged(passes(), max_passes, steps, region.failed), UserWarning,
                      stacklevel=5)  # fmt: skip
    elif covariance is None:  # a saddle or a funnel's neck, not an optimum
        converged = False
        warnings.warn(NOT_POSITIVE_DEFINITE, UserWarning, stacklevel=5)
    return FullDataFit(phi[:d], phi[d:], converged, passes(), np.array(steps),
                       np.array(losses), np.array(trace), n0, iterations,
                       covariance, region.failed)  # fmt: skip


#: Why a fit whose linear-response covariance is not positive definite is not converged.
NOT_POSITIVE_DEFINITE = (
    "fit() on this minibatch model stopped where the Hessian of its objective in the means "
    "is not positive definite (a direction of no or negative curvature): that is not an "
    "optimum, and its sds (mean-field ones) can be many times too small (result.converged "
    "is False). The usual cause is a non-centred hierarchy (a scale that can go to 0): "
    "parameterize it centred, and check the answer with psis_khat(result)."
)


def _converged(steps: list[float], edges: list[bool], tol: float) -> bool:
    """Whether the outer steps (sds moved) say the optimum is within ``tol``.

    The last step moved less than ``tol``, or the steps shrink geometrically
    (``r = step / previous < 0.5``) and what is left, ``step * r / (1 - r)``, is below
    ``tol``. A step cut short by the trust region (``edges``) says neither: with a radius
    quartered below ``tol`` it would otherwise stop a fit that is stuck as converged.
    """
    if edges[-1]:
        return False
    step = steps[-1]
    ratio = step / steps[-2] if len(steps) > 1 and not edges[-2] else 1.0
    return step < tol or (ratio < 0.5 and step * ratio / (1.0 - ratio) < tol)


def _not_converged(passes: float, max_passes: float, steps: list[float], failed: bool) -> str:
    """Why the full-data fit stopped without converging, and what to do."""
    why = ("the full-data loss rose after every step it tried" if failed else
           f"it stopped after {passes:.1f} passes (at most {max_passes:g})" if steps else
           "L-BFGS on all rows did not converge")  # fmt: skip
    moved = f", its last outer step moved {steps[-1]:.2g} sd" if steps else ""
    return (
        f"fit() on this minibatch model did not converge: {why}{moved}. The result is its "
        "best point so far, and its means may be off by about that much (result.converged "
        "is False). The usual cause is a non-centred hierarchy (a scale that can go to 0): "
        "parameterize it centred, and check the answer with psis_khat(result)."
    )


def _corrected_step(
    objective: _Objective,
    sub: Rows,
    phi: np.ndarray,
    full_grad: np.ndarray,
    gtol: float,
    radius: float,
) -> tuple[np.ndarray, int]:
    """The optimum within ``radius`` sds of the subsample objective corrected at ``phi``.

    ``full_grad``: the full-data gradient at ``phi``. Returns it and the L-BFGS iterations.
    """
    n0 = len(sub[0])
    _, sub_grad = objective.on_chunks(phi, _split(sub, CHUNK_ROWS), n0)
    correction = full_grad - sub_grad

    def surrogate(p: np.ndarray) -> tuple[float, Any]:
        value, grad = objective.on_chunks(p, _split(sub, CHUNK_ROWS), n0)
        return value + float(correction @ p), grad + correction

    new, result = scaled_minimize(surrogate, phi, gtol=gtol, radius=radius)
    return new, int(result.nit)


def _inner_gtol(steps: list[float]) -> float:
    """Tolerance of the next corrected fit, after outer moves ``steps`` (in sds)."""
    if not steps:
        return FIRST_GTOL
    return float(np.clip(INNER_FRACTION * steps[-1], 1e-4, INNER_GTOL))


def _moved(phi: np.ndarray, new: np.ndarray) -> float:
    """The largest move from ``phi`` to ``new``: of a mean in sds, of a log sd."""
    d = phi.size // 2
    sd, new_sd = np.logaddexp(0.0, phi[d:]), np.logaddexp(0.0, new[d:])
    return float(max(np.max(np.abs(new[:d] - phi[:d]) / sd), np.max(np.abs(np.log(new_sd / sd)))))


def _warm_start(
    objective: _Objective, sub: Rows, start: np.ndarray, *, loose: bool
) -> tuple[np.ndarray, int, bool]:
    """`_rough_fit` on the first `ROUGH_ROWS` rows of the subsample, then L-BFGS on all.

    ``loose``: full-data corrections follow, so the subsample optimum is needed to
    `WARM_GTOL` only. Returns the point, the L-BFGS iterations and whether it converged.
    """
    n0 = len(sub[0])
    rough = min(n0, ROUGH_ROWS)
    phi, iterations = _rough_fit(objective, tuple(a[:rough] for a in sub), start, rough < n0)
    phi, result = scaled_minimize(lambda p: objective.on_chunks(p, _split(sub, CHUNK_ROWS), n0),
                                   phi, gtol=WARM_GTOL if loose else 1e-4)  # fmt: skip
    return phi, iterations + int(result.nit), bool(result.success)


def _rough_fit(
    objective: _Objective, few: Rows, start: np.ndarray, scaled: bool = True
) -> tuple[np.ndarray, int]:
    """L-BFGS on a few rows, unscaled, then (``scaled``) in its own sd units.

    Unscaled (the start may be off by orders of magnitude), L-BFGS stops on the relative
    change of the objective, of order N, with sds off by up to 20x; in those units the
    subsample fit that followed took 90 iterations instead of 10 (Poisson regression,
    1e6 rows, 20 features). Returns the point and the iterations.
    """

    def on_few(phi: np.ndarray) -> tuple[float, Any]:
        return objective.on_chunks(phi, _split(few, CHUNK_ROWS), len(few[0]))

    result = minimize(on_few, start, jac=True, method="L-BFGS-B", options={"maxiter": 200})
    if not scaled:
        return result.x, int(result.nit)
    phi, scaled_result = scaled_minimize(on_few, result.x, gtol=WARM_GTOL)
    return phi, int(result.nit) + int(scaled_result.nit)


def _mean_covariance(
    objective: _Objective, sub: Rows, n0: int, phi: np.ndarray
) -> np.ndarray | None:
    """Linear-response covariance of the means: the inverse Hessian of the objective.

    Central differences of the gradient of log p on the subsample (the gradient
    correction is linear, so it has the same Hessian), in one evaluation at the points
    ``theta_s +- h e_i`` for the first ``HESSIAN_DRAWS`` fixed draws (antithetic pairs:
    their average Hessian is that of all draws up to the change of curvature across
    the posterior, of relative order 1/N). Its relative error is that of the subsample,
    about sqrt(dim / n0). None when it is not positive definite.
    """
    d = phi.size // 2
    sd = np.logaddexp(0.0, phi[d:])
    z = objective.z[: min(HESSIAN_DRAWS, len(objective.z))]
    h = 1e-3 * sd
    shifts = np.concatenate([np.diag(h), -np.diag(h)])  # (2d, d)
    theta = (phi[:d] + sd * z)[:, None, :] + shifts[None, :, :]  # (draws, 2d, d)
    _, grad = objective.gradients(theta.reshape(-1, d), _split(sub, CHUNK_ROWS), n0)
    grad = grad.reshape(len(z), 2, d, d).mean(axis=0)  # [sign, i, :]: gradient at +-h e_i
    hessian = -(grad[0] - grad[1]).T / (2 * h)[None, :]
    hessian = (hessian + hessian.T) / 2
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    return np.asarray(np.linalg.inv(hessian))
