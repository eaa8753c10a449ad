"""`adadelta()`: a drop-in for ``pm.adadelta``, returning updates or an `Adadelta`."""

from __future__ import annotations

from typing import Any

from pymc_adadelta.optim.optimizer import Adadelta
from pymc_adadelta.optim.updates import AdadeltaUpdates

__all__ = ["adadelta"]


def adadelta(
    loss_or_grads: Any = None,
    params: Any = None,
    learning_rate: Any = 1.0,
    rho: Any = 0.95,
    epsilon: Any = 1e-6,
) -> AdadeltaUpdates | Adadelta:
    """Adadelta updates (Zeiler 2012), a drop-in replacement for ``pm.adadelta``.

    Same signature, defaults and results as ``pm.adadelta``; the accumulators live in one
    packed, named state (see `AdadeltaState`) updated by a single node per dtype.

    Parameters
    ----------
    loss_or_grads : scalar Variable or list of Variable, optional
        A scalar loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        Parameters to update.
    learning_rate : float, pytensor scalar or callable
        Scale of the step; a callable is a schedule, called with the int64 step count
        (0 on the first step) and returning a symbolic scalar.
    rho : float or pytensor scalar
        Decay of the running averages, in [0, 1).
    epsilon : float or pytensor scalar
        Positive floor inside the square roots.

    Returns
    -------
    AdadeltaUpdates or Adadelta
        With both ``loss_or_grads`` and ``params``: an ordered dict of updates whose
        ``.state`` is the `AdadeltaState` it created. With neither: an `Adadelta`
        optimizer, to pass as ``pm.fit(obj_optimizer=...)``.

    Raises
    ------
    ValueError
        If exactly one of ``loss_or_grads`` and ``params`` is given, or a
        hyperparameter is out of range.
    TypeError
        If a parameter is not a shared variable or a hyperparameter has the wrong type.

    Notes
    -----
    The update, per parameter x with gradient g::

        E[g²]  = rho * E[g²] + (1 - rho) * g²
        Δx     = g * sqrt(E[Δx²] + epsilon) / sqrt(E[g²] + epsilon)
        E[Δx²] = rho * E[Δx²] + (1 - rho) * Δx²
        x      = x - learning_rate * Δx

    As in PyMC's code (and torch, optax, Keras), E[Δx²] accumulates the step before the
    learning rate is applied; PyMC's docstring writes it after. They agree at the default
    ``learning_rate=1``.

    Examples
    --------
    >>> import pytensor
    >>> a = pytensor.shared(1.0, name="a")
    >>> updates = adadelta(a * 2, [a], learning_rate=0.01)
    >>> isinstance(updates, dict), updates.state.names
    (True, ('a',))
    >>> optimizer = adadelta(learning_rate=0.01)
    >>> updates = optimizer(a * 2, [a])
    """
    if loss_or_grads is None and params is None:
        return Adadelta(learning_rate=learning_rate, rho=rho, epsilon=epsilon)
    if loss_or_grads is None or params is None:
        raise ValueError("Please provide both `loss_or_grads` and `params` to get updates")
    optimizer = Adadelta(learning_rate=learning_rate, rho=rho, epsilon=epsilon)
    return optimizer(loss_or_grads, params)
