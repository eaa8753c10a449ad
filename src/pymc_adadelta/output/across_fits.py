"""R-hat and ESS across several fits of one model, as if each fit were one MCMC chain.

Fits that found the same optimum give draws from the same Gaussian, so R-hat is 1 up to
the noise of the draws; fits that ended in different optima, or still far from one, give
R-hat > 1 (ArviZ's ``rhat`` and ``ess``, Vehtari et al. 2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from pymc_adadelta._compat import arviz_group
from pymc_adadelta.output.export import to_arviz

__all__ = ["DIAGNOSTIC_DRAWS", "chain_diagnostics"]

#: Draws per chain behind `FitResults.diagnostics`.
DIAGNOSTIC_DRAWS = 1000


def chain_diagnostics(
    chains: Sequence[Any], *, draws: int = DIAGNOSTIC_DRAWS, random_seed: Any = None
) -> xr.Dataset:
    """R-hat and bulk/tail ESS across ``chains``, from ``draws`` draws of each approximation.

    Returns
    -------
    xarray.Dataset
        One variable per model variable, with a leading dimension ``diagnostic``.
    """
    import arviz as az

    data = to_arviz(list(chains), draws, random_seed=random_seed, log_weights=False)
    posterior = arviz_group(data, "posterior")
    parts = [az.rhat(posterior), az.ess(posterior, method="bulk"),
             az.ess(posterior, method="tail")]  # fmt: skip
    combined = xr.concat(parts, dim="diagnostic", combine_attrs="drop")
    return combined.assign_coords(diagnostic=["rhat", "ess_bulk", "ess_tail"])
