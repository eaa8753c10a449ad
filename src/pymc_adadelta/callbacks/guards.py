"""`DivergenceGuard`: stop a fit that produced NaN/inf or whose loss keeps rising.

Every ``every`` steps the guard checks the loss, the variational parameters and the
optimizer's accumulators. While everything is finite it keeps a copy of them (the last
good state); when something is not, it writes that copy back, so the approximation and
the optimizer are usable, names the model variables affected and raises
``StopIteration``, which ends ``pm.fit`` cleanly.

PyMC itself raises ``FloatingPointError`` when the *loss* is NaN, before callbacks run;
after such an error call `DivergenceGuard.restore` (``pymc_adadelta.fit`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import median_abs_deviation

from pymc_adadelta._validation import check_int_at_least, check_threshold
from pymc_adadelta.approx.layout import variable_indices
from pymc_adadelta.approx.params import param_entries
from pymc_adadelta.optim.optimizer import Adadelta

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

__all__ = ["DivergenceGuard"]


class DivergenceGuard:
    """Stop on non-finite values or a steadily rising loss, keeping the last good state.

    Parameters
    ----------
    optimizer : Adadelta, optional
        Its accumulators are checked and restored with the parameters.
    every : int, default 10
        Check (and copy the state) every ``every`` steps; a restore goes back at most
        that many steps.
    window : int, default 1000
        Steps of loss compared for the rising-loss rule (0 turns the rule off).
    threshold : float, default 8.0
        The rule fires when the median loss of the second half of the window exceeds
        the first half's by ``threshold`` standard errors (noise scale from the median
        absolute successive difference) on two checks in a row, ``window // 10`` steps
        apart.

    Attributes
    ----------
    stop_reason : str or None
        ``"non-finite"`` or ``"rising-loss"`` once the guard stopped the fit.
    affected : list of str
        Model variables (unconstrained names) with non-finite values.
    stopped_at : int or None
        The step at which the guard stopped the fit.
    saved_step : int or None
        The step of the last good state (restored on divergence).

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import Adadelta, DivergenceGuard
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0)
    ...     opt = Adadelta()
    ...     guard = DivergenceGuard(opt)
    ...     approx = pm.fit(200, obj_optimizer=opt, callbacks=[guard], progressbar=False)
    >>> guard.stop_reason is None
    True
    """

    def __init__(
        self,
        optimizer: Adadelta | None = None,
        *,
        every: int = 10,
        window: int = 1000,
        threshold: float = 8.0,
    ):
        if optimizer is not None and not isinstance(optimizer, Adadelta):
            raise TypeError(f"optimizer must be an Adadelta or None, got {optimizer!r}")
        check_int_at_least("every", every, 1)
        check_int_at_least("window", window, 0)
        if window and window < 20:
            raise ValueError(f"window must be 0 (off) or at least 20 steps, got {window}")
        check_threshold("threshold", threshold, above=0.0)
        self.optimizer = optimizer
        self.every = every
        self.window = window
        self.threshold = float(threshold)
        self.stop_reason: str | None = None
        self.affected: list[str] = []
        self.stopped_at: int | None = None
        self._approx: Any = None
        self._saved: list[tuple[Any, np.ndarray]] = []
        self.saved_step: int | None = None
        self._rising_checks = 0

    def __call__(self, approx: Approximation, losses: np.ndarray | None, i: int) -> None:
        """Check step ``i``; raise ``StopIteration`` after restoring on divergence.

        The loss is checked at every step (a NaN or inf loss stops at once); the
        parameters and accumulators, and the copy of the last good state, every
        ``every`` steps. The first call copies the state when it is finite, so that a
        fit diverging before the first check is restored too.
        """
        loss_ok = losses is None or not len(losses) or bool(np.isfinite(losses[-1]))
        if self._approx is None and loss_ok:
            self.snapshot(approx, i)
        if not loss_ok:
            self._stop_non_finite(approx, i)
        if i % self.every:
            return
        if any(not np.isfinite(v.get_value(borrow=True)).all() for v, _ in self._saved):
            self._stop_non_finite(approx, i)
        self._copy_state(i)
        rise_check = self.window and i % max(self.every, self.window // 10) == 0
        if rise_check and losses is not None and self._loss_rises(losses):
            self._stop("rising-loss", i, f"the loss kept rising over the last {self.window} steps")

    def snapshot(self, approx: Any, step: int) -> None:
        """Copy the current parameters and accumulators as the last good state.

        `pymc_adadelta.fit` calls it before its first step (after the warm start).
        Nothing is copied when the state is not finite.
        """
        self._approx = approx
        # np.array: on the JAX backend the values are immutable JAX arrays
        values = [(v, np.array(v.get_value())) for v in self._variables(approx)]
        if all(np.isfinite(copy).all() for _, copy in values):
            self._saved = values
            self.saved_step = step

    def recover(self, approx: Any) -> list[str]:
        """Name the variables that went non-finite and restore the last good state.

        For a NaN or inf loss found outside the guard's own checks; sets
        ``stop_reason`` to ``"non-finite"`` and returns `affected`.
        """
        self.affected = _affected_variables(approx, self._bad(approx))
        self.restore()
        self.stop_reason = "non-finite"
        return self.affected

    def restore(self) -> None:
        """Write the last good parameters and accumulators back."""
        for variable, copy in self._saved:
            variable.set_value(copy.copy())

    def _variables(self, approx: Any) -> list[Any]:
        variables = list(approx.params)
        if self.optimizer is not None:
            variables += list(self.optimizer.state.buffers)
        return variables

    def _bad(self, approx: Any) -> list[Any]:
        return [
            v for v in self._variables(approx) if not np.isfinite(v.get_value(borrow=True)).all()
        ]

    def _copy_state(self, step: int) -> None:
        for variable, copy in self._saved:
            np.copyto(copy, variable.get_value(borrow=True))
        self.saved_step = step

    def _stop_non_finite(self, approx: Any, i: int) -> None:
        self.recover(approx)
        where = ", ".join(self.affected) if self.affected else "the loss"
        self._stop("non-finite", i, f"NaN or inf in {where}; restored the state of step "
                                    f"{self.saved_step}")  # fmt: skip

    def _stop(self, reason: str, i: int, message: str) -> None:
        self.stop_reason = reason
        self.stopped_at = i
        raise StopIteration(f"DivergenceGuard stopped the fit at step {i}: {message}")

    def _loss_rises(self, losses: np.ndarray) -> bool:
        if len(losses) < self.window:
            return False
        recent = losses[-self.window :]
        half = self.window // 2
        first, second = recent[:half], recent[half:]
        noise = median_abs_deviation(np.diff(first), center=_zero, scale="normal") / np.sqrt(2)
        # sd of the median of n normal values: sqrt(pi / 2) * sigma / sqrt(n)
        standard_error = np.sqrt(np.pi / 2) * noise * np.sqrt(2.0 / half)
        rising = np.median(second) - np.median(first) > self.threshold * standard_error
        self._rising_checks = self._rising_checks + 1 if rising else 0
        return self._rising_checks >= 2


def _affected_variables(approx: Any, bad: list[Any]) -> list[str]:
    names: list[str] = []
    for entry in param_entries(approx):
        if not any(entry.param is b for b in bad):
            continue
        flat = entry.param.get_value(borrow=True).reshape(-1)
        for var, owned in variable_indices(entry.name, entry.group).items():
            if not np.isfinite(flat[owned]).all() and var not in names:
                names.append(var)
    if not names and bad:
        names = ["the optimizer's accumulators"]
    return names


def _zero(values: np.ndarray, axis: int | None = None) -> float:
    """The center of the successive differences of a stationary loss: zero."""
    return 0.0
