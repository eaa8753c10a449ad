"""The fixed-draw (sample-average) negative ELBO of a mean-field Gaussian, with derivatives.

``F(η) = −(1/D) Σ_d log p(μ + σ ∘ z_d) − Σ_i log σ_i`` over fixed standard-normal draws
``z_d``, with ``η = (μ, ω)`` and ``σ = exp(ω)`` (log-sd: better conditioned than PyMC's
softplus for posteriors with very small sds; `warmstart` converts back).

Two ways to compute it, tried in this order:

- ``"vectorized"``: the model's log density graph vectorized over the draws
  (`vectorize_graph`) and its gradient, compiled into one function;
- ``"loop"``: the model's log density and gradient at one point, compiled once and
  evaluated draw by draw. This is the fall-back for graphs that cannot be vectorized or
  differentiated once vectorized, e.g. recursions written with ``pytensor.scan``
  (vectorizing them can fail with ``grad is not implemented for Composite``), and the
  first choice for graphs with a ``Scan``: vectorized, a scan runs draw by draw in Python
  anyway, and measured on arma11 it took 0.34 s per evaluation and 17 s to compile.

Hessian-vector products are central differences of the gradient in both: exact up to
rounding for quadratic log densities, as cheap per product as the symbolic ones (two
gradients against about 2.4 gradients' cost, measured on kidiq and diamonds), and with
no second compilation, which cost as much as the first (32 s against 40 s on
eight_schools on a loaded machine).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.logprob.utils import ParameterValueError
from pytensor.graph.replace import vectorize_graph

from pymc_adadelta._compat import helper_mode
from pymc_adadelta.approx.draws import has_scan
from pymc_adadelta.approx.layout import ordering

__all__ = [
    "FixedDrawObjective",
    "StandardizedObjective",
    "central_difference_hessp",
    "dense_hessian",
]


class FixedDrawObjective:
    """``F(η)``, its gradient and Hessian-vector products over fixed draws ``z``.

    Parameters
    ----------
    approx : pymc Approximation
        Gaussian groups; their flat latent vectors are concatenated in group order.
    z : ndarray, shape (draws, dim)
        Fixed standard-normal draws.

    Attributes
    ----------
    mode : str
        ``"vectorized"`` or ``"loop"`` (see the module docstring).
    fallback_reason : str
        Why the vectorized form was not used (empty when it was).
    """

    def __init__(self, approx: Any, z: np.ndarray, *, mode: str = "auto") -> None:
        self.z = np.asarray(z, dtype=np.float64)
        self.dim = self.z.shape[1]
        self.fallback_reason = ""
        if mode == "auto" and _has_scan(approx):
            mode, self.fallback_reason = "loop", "the log density has a Scan"
        if mode == "loop":
            self._value_grad = _looped(approx, self.z)
            self.mode = "loop"
            return
        try:
            self._value_grad = _vectorized(approx, self.z)
            self.mode = "vectorized"
        except Exception as exc:
            self.fallback_reason = f"{type(exc).__name__}: {exc}"[:300]
            self._value_grad = _looped(approx, self.z)
            self.mode = "loop"

    def value_and_grad(self, eta: np.ndarray) -> tuple[float, np.ndarray]:
        """``F(η)`` and its gradient; ``(inf, 0)`` where either is not finite.

        Also where a parameter check of the model fails (``sigma > 0`` once an sd of
        ``exp(±700)`` overflows in a line search): that point is outside the support.
        """
        try:
            value, grad = self._value_grad(np.asarray(eta, dtype=np.float64))
        except ParameterValueError:
            return np.inf, np.zeros_like(eta)
        if not np.isfinite(value) or not np.isfinite(grad).all():
            return np.inf, np.zeros_like(eta)  # makes line searches back off
        return float(value), np.asarray(grad, dtype=np.float64)

    def hessp(self, eta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian of ``F`` at ``η`` times ``v``, by central differences of the gradient."""
        return central_difference_hessp(self._value_grad, eta, v)

    def hessian(self, eta: np.ndarray) -> np.ndarray:
        """The full (symmetrized) Hessian, one Hessian-vector product per coordinate."""
        return dense_hessian(self.hessp, eta)


def central_difference_hessp(value_grad: Any, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Hessian times ``v`` at ``x`` from two gradients of ``value_grad`` (``(f, grad)``)."""
    x, v = np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        return np.zeros_like(x)
    h = 6e-6 * (1.0 + float(np.max(np.abs(x)))) / norm  # ~ cube root of eps
    plus = np.asarray(value_grad(x + h * v)[1])
    minus = np.asarray(value_grad(x - h * v)[1])
    return (plus - minus) / (2 * h)


def dense_hessian(hessp: Any, x: np.ndarray) -> np.ndarray:
    """The full Hessian at ``x`` from one ``hessp(x, e_i)`` per coordinate, symmetrized."""
    eye = np.eye(np.size(x))
    columns = np.stack([hessp(x, e) for e in eye], axis=1)
    return 0.5 * (columns + columns.T)


def _has_scan(approx: Any) -> bool:
    return has_scan([approx.model.logp()])


def _point_values(approx: Any, x: Any, batch: tuple[int, ...]) -> dict[str, Any]:
    """Model value variables from the flat latent ``x`` (leading axes ``batch``)."""
    values: dict[str, Any] = {}
    offset = 0
    for group in approx.groups:
        for name, slc, shape in ordering(group):
            part = x[..., offset + slc.start : offset + slc.stop]
            values[name] = part.reshape((*batch, *shape))
        offset += group.ddim
    return values


def _model_logp(approx: Any) -> Any:
    model = approx.model
    return model, model.replace_rvs_by_values([model.logp()])[0]


def _vectorized_loss(approx: Any, z: np.ndarray, eta: Any) -> Any:
    model, logp = _model_logp(approx)
    n = z.shape[1]
    mu, omega = eta[:n], eta[n:]
    x = mu + pt.exp(omega) * pt.as_tensor(z)
    values = _point_values(approx, x, (len(z),))
    replace = {v: values[v.name].astype(v.dtype) for v in model.value_vars}
    batched = vectorize_graph(logp, replace=replace)
    return -(batched.mean() + omega.sum())


def _vectorized(approx: Any, z: np.ndarray) -> Any:
    eta = pt.vector("eta", dtype="float64")
    loss = _vectorized_loss(approx, z, eta)
    grad: Any = pt.grad(loss, eta)
    function = pytensor.function([eta], [loss, grad], mode=helper_mode())
    start = np.zeros(2 * z.shape[1])
    function(start)  # some failures only show when it runs
    return function


def _looped(approx: Any, z: np.ndarray) -> Any:
    model, logp = _model_logp(approx)
    n = z.shape[1]
    x = pt.vector("x", dtype="float64")
    values = _point_values(approx, x, ())
    replace = {v: values[v.name].astype(v.dtype) for v in model.value_vars}
    point_logp = pytensor.graph.replace.graph_replace(logp, replace, strict=False)
    point_grad: Any = pt.grad(point_logp, x)
    point = pytensor.function([x], [point_logp, point_grad], mode=helper_mode())

    def value_and_grad(eta: np.ndarray) -> tuple[float, np.ndarray]:
        mu, sd = eta[:n], np.exp(eta[n:])
        total, grad_x, grad_sd = 0.0, np.zeros(n), np.zeros(n)
        for row in z:
            value, grad = point(mu + sd * row)
            total += float(value)
            grad_x += grad
            grad_sd += grad * row
        d = len(z)
        loss = -(total / d + eta[n:].sum())
        return loss, np.concatenate([-grad_x / d, -(grad_sd / d) * sd - 1.0])

    return value_and_grad


class StandardizedObjective:
    """``F`` in standardized coordinates ``ξ``: ``η = center + T ξ``.

    ``T`` is a vector (a diagonal: the current sds for the means, 1 for the log-sds) or a
    matrix (the means whitened by a Cholesky factor of the Hessian's mean block). In
    ``ξ`` every coordinate has unit scale near the optimum, whatever the posterior's units
    and correlations, so L-BFGS's tolerances, Newton-CG's trust region and the finite-
    difference step of the Hessian-vector products mean the same thing for every
    coordinate (a posterior with sds of 1e-5 next to 1e2 stalled L-BFGS in ``η``, and
    its Hessian there was not numerically positive definite; diamonds' collinear
    predictors took 740 L-BFGS iterations with a diagonal ``T``).

    Parameters
    ----------
    objective : FixedDrawObjective
        ``F`` in ``η``.
    center : ndarray, shape (2 * dim,)
    transform : ndarray, shape (2 * dim,) or (2 * dim, 2 * dim)
        ``T``: positive entries, or an invertible matrix.
    """

    def __init__(self, objective: FixedDrawObjective, center: np.ndarray, transform: np.ndarray):
        self.objective = objective
        self.dim = objective.dim
        self.mode = objective.mode
        self.center = np.asarray(center, dtype=np.float64)
        self.transform = np.asarray(transform, dtype=np.float64)

    def to_eta(self, xi: np.ndarray) -> np.ndarray:
        """``η`` of ``ξ``."""
        xi = np.asarray(xi, dtype=np.float64)
        if self.transform.ndim == 1:
            return self.center + self.transform * xi
        return self.center + self.transform @ xi

    def mean_transform(self) -> np.ndarray:
        """The block of ``T`` that maps ``ξ``'s means to ``η``'s, as a matrix."""
        n = self.dim
        if self.transform.ndim == 1:
            return np.diag(self.transform[:n])
        return self.transform[:n, :n]

    def value_and_grad(self, xi: np.ndarray) -> tuple[float, np.ndarray]:
        """``F`` and its gradient in ``ξ``."""
        value, grad = self.objective.value_and_grad(self.to_eta(xi))
        return value, self._pull_back(grad)

    def hessp(self, xi: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian in ``ξ`` times ``v`` (central differences in ``ξ``)."""
        return central_difference_hessp(self._raw_value_grad, xi, v)

    def hessian(self, xi: np.ndarray) -> np.ndarray:
        """The full (symmetrized) Hessian in ``ξ``."""
        return dense_hessian(self.hessp, xi)

    def _pull_back(self, grad: np.ndarray) -> np.ndarray:
        grad = np.asarray(grad, dtype=np.float64)
        return self.transform * grad if self.transform.ndim == 1 else self.transform.T @ grad

    def _raw_value_grad(self, xi: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = self.objective._value_grad(self.to_eta(xi))
        return value, self._pull_back(grad)
