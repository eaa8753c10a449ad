"""`to_arviz`: a fitted approximation, its draws and its optimization history as ArviZ data.

The result is the installed ArviZ's own object (InferenceData on ArviZ 0.x, DataTree on
ArviZ 1.x) with these groups:

- ``posterior``: draws of the free variables and deterministics, with the model's dims
  and coords, as one chain (``chain`` has length 1, ``draw`` has ``draws`` entries) so
  that ArviZ's functions apply unchanged. By default (``covariance="auto"``) a
  `FitResult` whose warm start computed a linear-response covariance is exported from a
  Student-t with the fit's mean and that covariance (`pymc_adadelta.approx.corrected`);
  ``attrs["covariance"]`` says ``"linear_response"`` or ``"approximation"`` (and
  ``attrs["covariance_reason"]`` why, for the latter), ``attrs["proposal"]`` which
  Student-t; ``attrs["mean"]`` says whose mean was used with linear response: the warm
  start's optimum (``"warm_start"``) unless the fit's averaged mean moved more than
  `MEAN_NOISE_SDS` linear-response sds from it (``"fit"``). With ``log_weights=True`` the draws
  are then picked from ``khat_draws`` proposals by their PSIS weights where that changes
  the answer (``resample="auto"``, `pymc_adadelta.output.importance`):
  ``attrs["psis_resampled"]`` (0 or 1), ``attrs["psis_resampling"]`` (why) and
  ``attrs["psis_ess"]`` (the weights' effective sample size);
- ``sample_stats``: ``lp`` (log p on the unconstrained scale), ``logq`` and
  ``log_weight = lp - logq`` per exported draw, before any resampling (raw, unsmoothed
  importance ratios of the proposal: do not reweight resampled draws with them again);
  on a minibatch model with many rows ``lp`` is estimated from subsamples of the rows
  and ``lp_error_sd`` gives each draw's error sd (nats; ``attrs["lp_estimator"]``, and
  ``attrs["lp_error_sd"]`` the 99th percentile over the proposals);
- ``observed_data`` and ``constant_data`` as PyMC writes them: a minibatch model's FULL
  data, a dim whose coords have the batch's length indexed ``0 .. N-1`` (`data_groups`);
- ``vi_parameters``: the raw approximation's parameters, whatever was exported: the mean
  and sd of every model variable on the unconstrained scale
  (dims ``vi_stat`` and the variable's own), plus ``cov`` (dims ``latent``,
  ``latent_bis``) when a group is full rank;
- ``optimization`` (when there is a history): ``loss`` per step (dim ``iteration``) and
  the accumulator summaries of a `FitResult` (dims ``tracked_iteration``, ``param``,
  ``variable``).

A `FitResults` (``fit(..., chains=k)``) gives ``k`` chains: ``posterior`` and
``sample_stats`` hold each fit's draws as one chain, ``vi_parameters`` and
``optimization`` gain a ``chain`` dim (histories of different lengths padded with NaN),
root attributes that differ between the fits become variables of ``optimization`` with
dim ``chain`` (``n_steps``, ``stop_reason``, ``psis_khat``, ...), and the root
``psis_khat`` is the largest of the chains'.

Root attributes name the approximation, optimizer and hyperparameters, steps, whether
and where it converged, the covariance used, the PSIS k-hat and the library versions.
The k-hat uses ``max(draws, khat_draws)`` draws of the exported distribution (the
exported draws first; ``attrs["psis_khat_draws"]``), the same estimate as
``psis_khat(result, khat_draws, random_seed=...)`` with the same seed; above 0.7 an
`ApproximationWarning` says what is off and what to try; where a minibatch model's data
could not be read (``log p`` NaN, a ``UserWarning`` says why), ``psis_khat_flag`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import xarray as xr
from pymc.backends.arviz import coords_and_dims_for_inferencedata

from pymc_adadelta._compat import make_arviz
from pymc_adadelta._validation import check_bool, check_draws, check_positive_int, check_random_seed
from pymc_adadelta.approx.corrected import (
    PROPOSAL_DOF,
    ChosenCovariance,
    choose_covariance,
    export_draws,
)
from pymc_adadelta.approx.difference_lp import LogDensityEstimate
from pymc_adadelta.approx.draws import ApproxDraws, evaluate_model
from pymc_adadelta.output.diagnostics import (
    KHAT_DRAWS,
    evaluate_in_chunks,
    khat_of_log_ratios,
    warn_if_bad,
)
from pymc_adadelta.output.groups import (
    data_groups,
    export_attrs,
    lp_attrs,
    optimization_history,
    vi_parameters,
)
from pymc_adadelta.output.importance import RESAMPLE_MODES, Resampling, resample_indices
from pymc_adadelta.output.inputs import fits_of, split_input

if TYPE_CHECKING:
    from pymc.variational.opvi import Approximation

    from pymc_adadelta.inference import FitResult, FitResults

__all__ = ["EXPORT_DRAWS", "to_arviz"]

#: Draws `to_arviz` exports by default, in all (split between several fits).
EXPORT_DRAWS = 4000


def to_arviz(
    approx_or_result: Approximation | FitResult | FitResults | Sequence[Any],
    draws: int | None = None,
    *,
    random_seed: Any = None,
    model: Any = None,
    log_weights: bool = True,
    covariance: str = "auto",
    khat_draws: int = KHAT_DRAWS,
    resample: str = "auto",
    exact_lp: bool = False,
) -> Any:
    """Export a fitted approximation as ArviZ data: draws, history, parameters, k-hat.

    Parameters
    ----------
    approx_or_result : pymc Approximation, FitResult, FitResults, or a list of them
        What ``pm.fit`` or `fit` returned; a `FitResults` (``fit(..., chains=k)``) or a
        list of fits of one model gives one chain per fit.
    draws : int, optional
        Draws from the approximation (from each one, for several fits). Default:
        `EXPORT_DRAWS` (4,000) in all, split evenly between the fits, as ``pm.sample``
        gives 4 chains of 1,000: the Monte Carlo error of a mean is then 1.6 % of an sd.
    random_seed : int or numpy Generator, optional
        Seed of the draws (None, a non-negative integer, a sequence of them, a numpy
        SeedSequence, Generator or RandomState); several fits draw from its
        ``spawn``-ed generators.
    model : pm.Model, optional
        When given, the approximation must belong to it.
    log_weights : bool, default True
        Compute ``sample_stats`` (``lp``, ``logq``, ``log_weight``) and the PSIS k-hat.
        This evaluates the model's log density at every draw, which dominates the cost
        of the export for models with much data; False skips it.
    covariance : {"auto", "linear_response", "approximation"}, default "auto"
        "auto": the linear-response covariance of a `FitResult`'s warm start when there
        is one (with the fit's mean), the approximation otherwise; "linear_response"
        raises when there is none; "approximation" exports the approximation as it is.
    khat_draws : positive int, default `KHAT_DRAWS`
        Proposal draws for the k-hat and the importance resampling; fewer than ``draws``
        are raised to ``draws`` (``attrs["psis_khat_draws"]`` says how many were used).
    resample : {"auto", "always", "never"}, default "auto"
        Export ``draws`` of the proposal draws picked by their PSIS weights
        (`pymc_adadelta.output.importance`): "auto" does so when k-hat < 1 and the weights
        change some mean or sd by more than resampling's own Monte Carlo error; "always"
        whenever k-hat < 1; "never" exports the proposal's own draws. Needs
        ``log_weights=True``.
    exact_lp : bool, default False
        Minibatch models with many rows: evaluate every row at every proposal draw
        (rows × draws likelihood terms) instead of estimating ``log p`` from subsamples
        of rows with a stated error (`pymc_adadelta.approx.difference_lp`:
        ``sample_stats["lp_error_sd"]``, ``attrs["lp_estimator"]``); no effect on other
        models.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        The installed ArviZ's own type, with the groups listed in the module docstring.

    Raises
    ------
    TypeError
        If ``random_seed`` cannot seed NumPy, or a flag is not True or False.
    ValueError
        If ``draws``, ``khat_draws``, ``covariance`` or ``resample`` is not one of its
        values (each message names the argument).

    Examples
    --------
    >>> import pymc as pm
    >>> from pymc_adadelta import fit, to_arviz
    >>> with pm.Model(coords={"coef": ["a", "b"]}):
    ...     beta = pm.Normal("beta", 0.0, 1.0, dims="coef")
    ...     result = fit(2_000, convergence=None, progressbar=False, random_seed=1)
    >>> data = to_arviz(result, draws=200, random_seed=2)
    >>> data["posterior"]["beta"].dims
    ('chain', 'draw', 'coef')
    """
    pairs = [split_input(r, model) for r in fits_of(approx_or_result)]
    if not pairs:
        raise ValueError("approx_or_result is an empty list: there is nothing to export")
    draws = -(-EXPORT_DRAWS // len(pairs)) if draws is None else draws
    check_draws(draws)
    check_random_seed(random_seed)
    check_positive_int("khat_draws", khat_draws)
    for name, flag in (("log_weights", log_weights), ("exact_lp", exact_lp)):
        check_bool(name, flag)
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
    if resample == "always" and not log_weights:
        raise ValueError("resample='always' needs the importance weights: log_weights=True")
    rng = np.random.default_rng(random_seed)
    rngs = [rng] if len(pairs) == 1 else rng.spawn(len(pairs))
    options = _Options(draws, log_weights, khat_draws, resample, exact_lp)
    chains = [
        _export_chain(approx, result, choose_covariance(approx, result, covariance), options, r)
        for (approx, result), r in zip(pairs, rngs, strict=True)
    ]
    stacked = _stack(chains)
    model = pairs[0][0].model
    coords, dims = coords_and_dims_for_inferencedata(model)
    data, built = data_groups(model, coords, dims)  # built: full minibatch rows
    groups = {"posterior": stacked.posterior, "sample_stats": stacked.sample_stats, **data}
    return make_arviz(
        {k: v for k, v in groups.items() if v}, coords=coords, dims=dims, attrs=stacked.attrs,
        datasets={**stacked.datasets, **built},
    )  # fmt: skip


class _Options(NamedTuple):
    """`to_arviz`'s options that every chain's export follows."""

    draws: int
    log_weights: bool
    khat_draws: int
    resample: str
    exact_lp: bool


class _ChainExport(NamedTuple):
    """One chain's share of the export (draws without the chain axis)."""

    posterior: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    datasets: dict[str, xr.Dataset]
    attrs: dict[str, Any]


def _export_chain(
    approx: Any, result: Any, chosen: ChosenCovariance, options: _Options, rng: np.random.Generator
) -> _ChainExport:
    log_weights = options.log_weights
    total = max(options.draws, options.khat_draws) if log_weights else options.draws
    q = export_draws(approx, chosen, total, rng)
    if log_weights:
        weighted = _weighted(approx.model, q, options, rng)
    else:
        posterior = evaluate_model(approx.model, q.values, with_lp=False).posterior
        weighted = _Weighted(posterior, {}, float("nan"), None, None, "")
    datasets = {"vi_parameters": vi_parameters(approx)}
    history = optimization_history(approx, result)
    if history is not None:
        datasets["optimization"] = history
    attrs = export_attrs(approx, result, weighted.khat, total if log_weights else 0)
    attrs.update(_proposal_attrs(chosen, weighted.picked))
    attrs.update(lp_attrs(weighted.estimate) if log_weights else {})
    if weighted.unavailable:  # the data could not be read: the approximation is not to blame
        attrs["psis_khat_flag"] = f"k-hat not computed: {weighted.unavailable}"
    elif log_weights and np.isfinite(q.logq).all():  # particles have no q: nothing to flag
        resampled = weighted.picked is not None and weighted.picked.resampled
        attrs["psis_khat_flag"] = warn_if_bad(weighted.khat, total, chosen, resampled) or "ok"
    return _ChainExport(weighted.posterior, weighted.sample_stats, datasets, attrs)


class _Weighted(NamedTuple):
    """The exported draws' variables and stats, k-hat, and which proposals they are."""

    posterior: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    khat: float
    picked: Resampling | None
    estimate: LogDensityEstimate | None  # None: log p exact
    unavailable: str  # why log p is NaN when the data could not be read ("" otherwise)


def _weighted(model: Any, q: ApproxDraws, options: _Options, rng: np.random.Generator) -> _Weighted:
    """Importance ratios of every proposal, k-hat, and the ``draws`` rows to export."""
    evaluated = evaluate_in_chunks(model, q.values, rng=rng, exact_lp=options.exact_lp)
    lp, everywhere, estimate, unavailable = evaluated
    log_weight = lp - q.logq
    picked = resample_indices(log_weight, _features(q.values, everywhere), options.draws, rng,
                              options.resample)  # fmt: skip
    rows = picked.indices
    if everywhere is not None:
        posterior = {k: v[rows] for k, v in everywhere.items()}
    else:
        selected = {k: v[rows] for k, v in q.values.items()}
        posterior = evaluate_model(model, selected, with_lp=False).posterior
    stats = {"lp": lp[rows], "logq": q.logq[rows], "log_weight": log_weight[rows]}
    if estimate is not None:
        stats["lp_error_sd"] = estimate.error_sd[rows]
    return _Weighted(posterior, stats, khat_of_log_ratios(log_weight), picked, estimate,
                     unavailable)  # fmt: skip


def _proposal_attrs(chosen: ChosenCovariance, picked: Resampling | None) -> dict[str, Any]:
    """What was drawn from, and whether it was resampled."""
    attrs: dict[str, Any] = {"covariance": chosen.label}
    if chosen.label != "linear_response":
        attrs["covariance_reason"] = chosen.reason
    else:
        attrs["mean"] = chosen.mean_label  # "fit" when the refinement moved the mean
        attrs["proposal"] = f"student_t({PROPOSAL_DOF:g})"
    if picked is not None:
        attrs.update(psis_resampled=int(picked.resampled), psis_resampling=picked.reason,
                     psis_ess=picked.ess)  # fmt: skip
    return attrs


def _features(values: dict[str, np.ndarray], posterior: dict[str, np.ndarray] | None) -> np.ndarray:
    """What resampling must not change for nothing, one row per draw.

    The unconstrained draws, and the constrained variables and deterministics where they
    were evaluated at every draw (a small change of log tau's sd is a large one of tau's
    on a funnel).
    """
    parts = [*values.values(), *(posterior or {}).values()]
    total = len(parts[0])
    return np.concatenate([np.asarray(v, dtype=np.float64).reshape(total, -1) for v in parts], 1)


def _stack(chains: list[_ChainExport]) -> _ChainExport:
    """All chains as one: draws get a leading chain axis, datasets a ``chain`` dim.

    Root attributes that differ between chains become variables of ``optimization``
    with dim ``chain``, and ``psis_khat`` at the root is the largest chain's.
    """
    posterior = {k: np.stack([c.posterior[k] for c in chains]) for k in chains[0].posterior}
    stats = {k: np.stack([c.sample_stats[k] for c in chains]) for k in chains[0].sample_stats}
    if len(chains) == 1:
        return chains[0]._replace(posterior=posterior, sample_stats=stats)
    names = [n for n in chains[0].datasets if all(n in c.datasets for c in chains)]
    datasets = {n: _concat_chains([c.datasets[n] for c in chains]) for n in names}
    attrs, varying = _split_attrs([c.attrs for c in chains])
    datasets["optimization"] = datasets.get("optimization", xr.Dataset()).assign(varying)
    khats = np.array([c.attrs["psis_khat"] for c in chains])
    attrs["psis_khat"] = float(np.max(khats)) if np.isfinite(khats).all() else float("nan")
    return _ChainExport(posterior, stats, datasets, attrs)


def _concat_chains(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate along a new ``chain`` dim, padding shorter histories with NaN."""
    combined = xr.concat(datasets, dim="chain", data_vars="all", coords="different",
                         compat="equals", join="outer")  # fmt: skip
    return combined.assign_coords(chain=np.arange(len(datasets)))


def _split_attrs(per_chain: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes shared by every chain, and the others as ``chain`` variables."""
    common, varying = {}, {}
    for key in dict.fromkeys(k for attrs in per_chain for k in attrs):
        values = [attrs.get(key) for attrs in per_chain]
        if len({repr(v) for v in values}) == 1:
            common[key] = values[0]
        else:
            varying[key] = ("chain", _column(values))
    return common, varying


def _column(values: list[Any]) -> np.ndarray:
    """Numbers as floats (NaN where missing); anything else as strings (empty where missing)."""
    if all(v is None or isinstance(v, int | float) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.array(["" if v is None else str(v) for v in values])
