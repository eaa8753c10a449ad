"""The trust region of the full-data fit's outer steps (`pymc_adadelta.approx.full_data_fit`).

Each outer step minimizes the subsample objective plus a linear correction. Where the
posterior has a direction of vanishing curvature (a hierarchical scale going to 0 in a
non-centred model: the funnel), the linear term makes that surrogate unbounded and its
optimum runs off: in a trial, log sigma went to -360, the full-data loss rose 23-fold,
and the fit still said "converged" because the next step was small. So each outer step
moves at most ``radius`` sds (log sds, for the rho coordinates) from its start, and a
step after which the full-data loss rose by more than `LOSS_SLACK` is undone: back to
the best point, with a quarter of the radius (Nocedal and Wright 2006, ch. 4). Below
`MIN_RADIUS` the fit has failed, and the best point is kept. `scaled_minimize` is the
L-BFGS of every step, in sd units, within the region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

__all__ = ["FIRST_RADIUS", "LOSS_SLACK", "MIN_RADIUS", "ROUND_ITERATIONS", "Region",
           "at_edge", "box_units", "scaled_minimize"]  # fmt: skip

#: Radius of the first outer step, in sds: it moves by about sqrt(N / n0) sds (4.5 at a
#: twentieth of the data, 7 at the 200,000 rows the subsample holds of 10^7).
FIRST_RADIUS = 20.0
#: Radius below which the fit has failed.
MIN_RADIUS = 1e-3
#: Rise of the full-data loss (nats of -ELBO) after which an outer step is undone.
LOSS_SLACK = 1.0
#: Relative distance to the box's faces within which a point is on them (`at_edge`).
EDGE_SLACK = 1e-6
#: L-BFGS iterations before it restarts in the units of where it got to.
ROUND_ITERATIONS = 40


class Region:
    """The best point so far, its full-data loss and gradient, and the radius to move.

    Attributes
    ----------
    radius : float
        Largest move of the next outer step, in sds.
    best_phi : ndarray or None
        The point of least full-data loss so far (None before the first).
    best_loss : float
    full_grad : ndarray
        The full-data gradient at ``best_phi``.
    failed : bool
        The loss rose after every step tried, down to `MIN_RADIUS`.
    """

    def __init__(self, phi: np.ndarray) -> None:
        self.radius = FIRST_RADIUS
        self.best_phi: np.ndarray | None = None
        self.best_loss = np.inf
        self.full_grad = np.zeros_like(phi)
        self.failed = False

    def judge(self, phi: np.ndarray, loss: float, grad: np.ndarray) -> np.ndarray:
        """The point to step from: ``phi`` unless its full-data ``loss`` rose (then the best)."""
        if np.isfinite(loss) and loss <= self.best_loss + LOSS_SLACK:
            self.best_phi, self.best_loss, self.full_grad = phi, loss, grad
            return phi
        self.radius /= 4
        self.failed = self.best_phi is None or self.radius < MIN_RADIUS
        return phi if self.best_phi is None else self.best_phi


def scaled_minimize(
    function: Callable[[np.ndarray], tuple[float, Any]],
    phi: np.ndarray,
    rounds: int = 6,
    gtol: float = 1e-4,
    radius: float | None = None,
) -> tuple[np.ndarray, Any]:
    """L-BFGS from ``phi`` in units of its sds (means) and of log sds (rho).

    At large N the posterior sds differ by orders of magnitude from one coordinate to
    the next and the objective is of order N: in these units the Hessian is near the
    correlation matrix, and ``gtol`` is an error in sds (about 1e-3 sd). The units come
    from the start; when they are off (a rough start), L-BFGS restarts every
    ``ROUND_ITERATIONS`` iterations in the units of where it got to.
    """
    iterations = 0
    units = box_units(phi)
    box = (phi - radius * units, phi + radius * units) if radius else None  # ``radius`` sds
    for _ in range(rounds):
        scale = box_units(phi)
        bounds = None if box is None else list(zip(*((b - phi) / scale for b in box),
                                                   strict=True))  # fmt: skip

        def scaled(x: np.ndarray, p: np.ndarray = phi, s: np.ndarray = scale) -> tuple[float, Any]:
            value, grad = function(p + s * x)
            return value, grad * s

        result = minimize(scaled, np.zeros_like(phi), jac=True, method="L-BFGS-B",
                          bounds=bounds, options={"gtol": gtol, "ftol": 1e-12,
                                                  "maxiter": ROUND_ITERATIONS})  # fmt: skip
        phi = phi + scale * result.x
        iterations += int(result.nit)
        if result.success:
            break
    result.nit = iterations
    return phi, result


def box_units(phi: np.ndarray) -> np.ndarray:
    """Units of a ``(mu, rho)`` point's coordinates: the sds ``softplus(rho)``, then ones."""
    d = phi.size // 2
    return np.concatenate([np.logaddexp(0.0, phi[d:]), np.ones(d)])


def at_edge(start: np.ndarray, end: np.ndarray, radius: float) -> bool:
    """Whether ``end`` lies on the box of ``radius`` around ``start`` (`scaled_minimize`'s).

    A step that ends there was cut short by the box: its length says nothing about the
    distance left to the optimum.
    """
    reach = (1.0 - EDGE_SLACK) * radius * box_units(start)
    return bool(np.any(np.abs(end - start) >= reach))
