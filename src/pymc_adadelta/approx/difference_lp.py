"""The full-data log density of a minibatch model at many draws, from subsamples of rows.

Evaluating ``log p(θ) = log prior(θ) + Σ_i ℓ_i(θ)`` over all N rows at each of
thousands of draws costs N × draws likelihood terms: at 10^6 rows and 8,000 draws, a
hundred times the fit. The difference estimator of Quiroz, Villani, Kohn and Tran (2019,
"Speeding up MCMC by efficient data subsampling", JASA 114:526) with a second-order
Taylor control variate at the draws' mean θ* (δ = θ - θ*) needs much less:

    Σ_i ℓ_i(θ) = Σ_i [ℓ_i(θ*) + g_iᵀδ]          exact: one pass over the data at θ*
               + Σ_i ½ δᵀH_iδ                    from a random sample T of n rows
               + Σ_i [ℓ_i(θ) - a_i(θ)]           from a random sample S ⊂ T of m rows

where ``a_i`` is the second-order expansion of ``ℓ_i`` at θ*. The Hessians come from
forward differences of the gradient (steps of `STEP_SDS` sds), and the Hessian sum is
estimated in two phases (Särndal et al. 1992, ch. 9) because it costs d + 1 gradients
per row: over all rows, that would cost more than the fit. Each sum over a sample is
scaled by N / (rows) and is unbiased; the residuals ``ℓ_i - a_i`` are of third order in
δ, so on a posterior of many rows (sds of order N^(-1/2)) their sum is tiny.

Each estimated term's sd at each draw comes from the spread of `BLOCKS` random blocks
of its sample (the expansion of a block is the sum of its rows', so no derivative per
row is needed). A first estimate tells how many rows bring the 99th percentile of each
sd down to ``TARGET_ERROR_SD / √2`` (the sd falls as 1/√rows); where that is more, the
estimate is made again on that many, within the `reserve_rows` drawn during the pass.
The stated error is what was reached.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, NamedTuple

import numpy as np

from pymc_adadelta._runtime import lean_runtime
from pymc_adadelta.approx.draws import UNREADABLE, unreadable_lp
from pymc_adadelta.approx.full_data import CHUNK_ROWS, FullData, full_data
from pymc_adadelta.approx.row_taylor import RowFunctions, Taylor, quadratic_form, row_functions

__all__ = [
    "BLOCKS",
    "HESSIAN_ROWS",
    "RESIDUAL_ROWS",
    "TARGET_ERROR_SD",
    "LogDensityEstimate",
    "difference_logp",
    "subsampled_logp",
    "worth_subsampling",
]

#: Rows of the first samples: T (the Hessian sum) and S (the residuals).
HESSIAN_ROWS = 5_000
RESIDUAL_ROWS = 500
#: Blocks of each sample whose spread gives its term's sd (BLOCKS - 1 degrees of freedom).
BLOCKS = 20
#: Error sd (nats) of log p that 99 % of the draws should reach: it changes importance
#: weights by about 10 %, well within the noise of a PSIS tail fit.
TARGET_ERROR_SD = 0.1
#: Quantile of the draws' error sds held to the target (the largest of thousands is far
#: out in the proposal's tail, and its own estimate is noisy).
TARGET_QUANTILE = 0.99
#: Memory for the rows kept from the pass (the samples are drawn from them).
RESERVE_BYTES = 64 * 2**20
#: Largest latent dimension: per draw, the blocks' quadratic forms cost 2 BLOCKS d² flops.
MAX_DIM = 200
#: Likelihood terms (rows times draws) above which an exact evaluation warns: ten
#: seconds or more (about 60 s for 8e8 terms of a 300-group hierarchy on 2 cores).
SLOW_TERMS = 2e8
#: Step of the forward differences giving Hessians, in sds of the draws.
STEP_SDS = 1e-3
#: Likelihood terms per compiled call (draws times rows): bounded memory, few calls.
TERMS_PER_CALL = 2_000_000

Rows = tuple[np.ndarray, ...]


class LogDensityEstimate(NamedTuple):
    """``log p`` at each draw and what it cost.

    Attributes
    ----------
    lp : ndarray
        ``log p`` of each draw (unconstrained scale, Jacobian included), ``(draws,)``.
    error_sd : ndarray
        Estimated sd of each draw's error, nats, ``(draws,)``; zeros when exact.
    hessian_rows, residual_rows : int
        Rows of the samples T and S (all rows: that term is exact).
    length : int
        Rows of the data.
    """

    lp: np.ndarray
    error_sd: np.ndarray
    hessian_rows: int
    residual_rows: int
    length: int

    def reached(self) -> float:
        """The error sd that `TARGET_QUANTILE` of the draws reach (NaN without draws)."""
        finite = self.error_sd[np.isfinite(self.error_sd)]
        return float(np.quantile(finite, TARGET_QUANTILE)) if finite.size else float("nan")


def subsampled_logp(
    model: Any, values: dict[str, np.ndarray], rng: np.random.Generator
) -> LogDensityEstimate | None:
    """`difference_logp` where it pays: a minibatch model with many rows and few latents.

    None otherwise (not a minibatch model, or every row at every draw costs little):
    evaluate ``log p`` exactly then. Data that cannot be read give a NaN ``lp`` and a
    warning, as the exact evaluation does; an error sd above twice `TARGET_ERROR_SD` at
    1 % of the draws warns too.
    """
    try:
        whole = full_data(model)
    except ValueError:
        return None  # the exact evaluation says why log p is NaN
    draws = len(next(iter(values.values()))) if values else 0
    dim = sum(int(np.prod(v.shape[1:])) for v in values.values())
    if whole is None or not worth_subsampling(whole.length, dim, draws):
        if whole is not None and whole.length * draws > SLOW_TERMS:
            warnings.warn(
                f"log p of this minibatch model is evaluated on all {whole.length} rows at "
                f"each of {draws} draws ({dim} latent coordinates, more than the "
                f"{MAX_DIM} the subsampled estimate takes), {whole.length * draws:.1e} "
                "likelihood terms: this may take minutes; log_weights=False or fewer "
                "khat_draws make it cheaper",
                UserWarning,
                stacklevel=4,
            )
        return None
    try:
        with lean_runtime():  # thin products between short loops (see its docstring)
            estimate = difference_logp(whole, values, rng)
    except UNREADABLE as error:
        nan = unreadable_lp(error, draws)
        return LogDensityEstimate(nan, nan.copy(), 0, 0, whole.length)
    if estimate.reached() > 2 * TARGET_ERROR_SD:
        warnings.warn(
            f"log p of this minibatch model was estimated from {estimate.residual_rows} and "
            f"{estimate.hessian_rows} of its {whole.length} rows with an error sd of up to "
            f"{estimate.reached():.2f} nats at 1 % of the draws: importance weights and "
            "k-hat are that uncertain; exact_lp=True evaluates every row at every draw",
            UserWarning,
            stacklevel=4,
        )
    return estimate


def worth_subsampling(length: int, dim: int, draws: int) -> bool:
    """Whether the difference estimator costs much less than every row at every draw.

    It costs a pass with one gradient (about three values), ``(dim + 1)`` gradients per
    row of T, and ``draws × m`` values; exact costs ``draws × length`` values.
    """
    if dim > MAX_DIM or length <= 4 * HESSIAN_ROWS:
        return False
    cost = 3 * length + 3 * (dim + 1) * 4 * HESSIAN_ROWS + 4 * draws * RESIDUAL_ROWS
    return cost < draws * length / 4


def reserve_rows(whole: FullData) -> int:
    """Rows kept from the pass for the samples: `RESERVE_BYTES` worth, at most all."""
    return int(min(whole.length, max(4 * HESSIAN_ROWS, RESERVE_BYTES // whole.row_bytes())))


def difference_logp(
    whole: FullData,
    values: dict[str, np.ndarray],
    rng: np.random.Generator,
    *,
    target_sd: float = TARGET_ERROR_SD,
) -> LogDensityEstimate:
    """Estimate the full-data ``log p`` at each draw of ``values`` (see the module docstring).

    Parameters
    ----------
    whole : FullData
        The model's full data (`pymc_adadelta.approx.full_data.full_data`).
    values : dict of str to ndarray
        Unconstrained draws per value variable, ``(draws, *shape)``.
    rng : numpy Generator
        Draws the samples of rows.
    target_sd : float, default `TARGET_ERROR_SD`
        Error sd (nats) that 99 % of the draws should reach.

    Returns
    -------
    LogDensityEstimate

    Raises
    ------
    NonFiniteDataError
        NaN or inf in the rows read (a ``ValueError``).
    """
    functions = row_functions(whole, {name: value.shape[1:] for name, value in values.items()})
    theta = functions.flatten(values)
    spread = theta.std(axis=0)
    plan = _Plan(theta, theta.mean(axis=0), STEP_SDS * np.where(spread > 0, spread, 1.0))
    full, sample = _full_pass(functions, plan, reserve_rows(whole), rng)
    reserve = len(sample[0])
    n, m = min(HESSIAN_ROWS, reserve), min(RESIDUAL_ROWS, reserve)
    first = _estimate(functions, plan, full, sample, n, m)
    if first.estimate.reached() <= target_sd:
        return first.estimate
    costs = (3.0 * (len(plan.anchor) + 1), float(len(plan.theta)))  # per row of T, of S
    n_next, m_next = _allocate((n, m), (first.hessian_sd, first.residual_sd), costs, target_sd)
    n_next, m_next = min(reserve, max(n, n_next)), min(reserve, max(m, m_next))
    return _estimate(functions, plan, full, sample, n_next, m_next).estimate


def _allocate(
    rows: tuple[int, int],
    sds: tuple[np.ndarray, np.ndarray],
    costs: tuple[float, float],
    target: float,
) -> tuple[int, int]:
    """Rows of T and S reaching ``target`` at the least cost (Neyman-like allocation).

    At ``rows`` the terms' sds (their `TARGET_QUANTILE`) are ``sds``; with ``n_k`` rows a
    term's variance is ``V_k / n_k`` (``V_k = sd_k² rows_k``) at a cost of ``c_k n_k``.
    Minimizing the cost under ``Σ V_k / n_k = target²`` gives
    ``n_k = √(V_k / c_k) Σ_j √(V_j c_j) / target²``; 20 % more for the noise of the sds.
    """
    spread = [
        float(np.quantile(sd, TARGET_QUANTILE)) ** 2 * r for sd, r in zip(sds, rows, strict=True)
    ]
    total = sum(np.sqrt(v * c) for v, c in zip(spread, costs, strict=True))
    n, m = (int(np.ceil(1.2 * np.sqrt(v / c) * total / target**2))
            for v, c in zip(spread, costs, strict=True))  # fmt: skip
    return n, m


class _Plan(NamedTuple):
    """The draws (flat), the expansion point θ*, the difference steps."""

    theta: np.ndarray
    anchor: np.ndarray
    steps: np.ndarray


def _full_pass(
    functions: RowFunctions, plan: _Plan, reserve: int, rng: np.random.Generator
) -> tuple[Taylor, Rows]:
    """The full data's value and gradient at θ*, and ``reserve`` random rows, in one pass.

    The rows kept come in a random order: any first ``n`` of them are a simple random
    sample of the data. Each chunk's picked rows are written straight to their places.
    """
    whole = functions.whole
    picked = rng.choice(whole.length, reserve, replace=False)  # in random order
    order = np.argsort(picked)
    picked = picked[order]  # sorted; row picked[j] goes to place order[j]
    bounds = whole.bounds(CHUNK_ROWS)
    total: Taylor | None = None
    kept: list[np.ndarray] = []
    for start, arrays in zip(bounds[:-1].tolist(), whole.chunks(CHUNK_ROWS), strict=True):
        part = functions.first_order(plan.anchor, arrays)
        total = part if total is None else total.plus(part)
        if not kept:
            kept = [np.empty((reserve, *a.shape[1:]), dtype=a.dtype) for a in arrays]
        lo, hi = np.searchsorted(picked, [start, start + len(arrays[0])])
        for out, a in zip(kept, arrays, strict=True):
            out[order[lo:hi]] = a[picked[lo:hi] - start]
    assert total is not None
    return total, tuple(kept)


class _Estimate(NamedTuple):
    estimate: LogDensityEstimate
    hessian_sd: np.ndarray  # per draw: sd of the Hessian term's estimate
    residual_sd: np.ndarray  # per draw: sd of the residual term's estimate


def _blocks(sample: Rows, rows: int) -> list[Rows]:
    """The first ``rows`` rows of ``sample`` in `BLOCKS` blocks (fewer for fewer rows)."""
    edges = np.linspace(0, rows, min(BLOCKS, rows) + 1).astype(int)
    return [tuple(a[lo:hi] for a in sample) for lo, hi in itertools.pairwise(edges)]


def _scaled_sum(per_block: np.ndarray, rows: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``length / rows`` times the sum over blocks (axis 0), and its sd (finite population)."""
    scale = length / rows
    if rows >= length or len(per_block) < 2:
        return scale * per_block.sum(axis=0), np.zeros(per_block.shape[1])
    spread = per_block.std(axis=0, ddof=1) * np.sqrt(len(per_block) * (1 - rows / length))
    return scale * per_block.sum(axis=0), scale * spread


def _hessian(expansion: Taylor) -> np.ndarray:
    assert expansion.hessian is not None  # second_order gives one
    return expansion.hessian


def _estimate(
    functions: RowFunctions, plan: _Plan, full: Taylor, sample: Rows, n: int, m: int
) -> _Estimate:
    """``log p`` of every draw with samples T (``n`` rows) and S (``m`` rows)."""
    length, theta = functions.whole.length, plan.theta
    hessian_blocks = [functions.second_order(plan.anchor, plan.steps, block)
                      for block in _blocks(sample, n)]  # fmt: skip
    residual_blocks = _blocks(sample, m)
    expansions = [functions.second_order(plan.anchor, plan.steps, block)
                  for block in residual_blocks]  # fmt: skip
    lp, hessian_sd, residual_sd = (np.empty(len(theta)) for _ in range(3))
    per_call = max(1, TERMS_PER_CALL // max(1, len(residual_blocks[0][0])))
    for lo in range(0, len(theta), per_call):
        part = slice(lo, lo + per_call)
        delta = theta[part] - plan.anchor
        halves = np.stack([0.5 * quadratic_form(delta, _hessian(b)) for b in hessian_blocks])
        quadratic, hessian_sd[part] = _scaled_sum(halves, n, length)
        residuals, rest = [], np.zeros(len(delta))
        for block, expansion in zip(residual_blocks, expansions, strict=True):
            loglik, rest = functions.loglik(theta[part], block)
            residuals.append(loglik - expansion.at(delta))
        residual, residual_sd[part] = _scaled_sum(np.stack(residuals), m, length)
        lp[part] = rest + full.at(delta) + quadratic + residual
    error_sd = np.hypot(hessian_sd, residual_sd)
    estimate = LogDensityEstimate(lp, error_sd, n, m, length)
    return _Estimate(estimate, hessian_sd, residual_sd)
