"""Inference: options, the step loop, `fit()`, several fits, results and progress."""

from pymc_adadelta.inference.fit_results import ChainsFailed, FitResults
from pymc_adadelta.inference.fitting import fit
from pymc_adadelta.inference.result import FitResult

__all__ = ["ChainsFailed", "FitResult", "FitResults", "fit"]
