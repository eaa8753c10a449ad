"""Output: ArviZ export, diagnostics (PSIS k-hat, R-hat across fits) and plots.

Reads fitted approximations and results; nothing below imports it (result types reach
it through their accessor methods, ``FitResult.to_arviz`` and ``.plot``).
"""

from pymc_adadelta.output.diagnostics import psis_khat
from pymc_adadelta.output.export import to_arviz
from pymc_adadelta.output.plots import plot_history

__all__ = ["plot_history", "psis_khat", "to_arviz"]
