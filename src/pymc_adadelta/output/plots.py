"""`plot_history`: how a fit went, from a `FitResult` or from exported ArviZ data.

One figure, shared x axis (optimization step): the loss (raw and smoothed) and, when the
fit was tracked, one panel per accumulator summary (``grad_rms``, ``delta_rms``,
``step_size``) with a line per model variable and parameter. Vertical lines mark where
the iterates were found stationary (averaging starts) and where convergence was declared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from pymc_adadelta._compat import arviz_group, arviz_root_attrs, is_arviz_data

__all__ = ["MARKERS", "SUMMARIES", "plot_history"]

#: Accumulator summaries drawn, one panel each, when the history has them.
SUMMARIES = ("grad_rms", "delta_rms", "step_size")
#: Attribute holding the step of each marker, and its label.
MARKERS = {"window_start": "averaging starts", "converged_at": "converged"}


def plot_history(result_or_data: Any, *, smooth: int | None = None, figsize: Any = None) -> Any:
    """Plot the loss and accumulator traces of a fit.

    Parameters
    ----------
    result_or_data : FitResult, InferenceData, DataTree or xarray.Dataset
        A `FitResult`, what `to_arviz` returned (also after saving and loading it), or
        the ``history`` of an `AccumulatorTracker` used in plain ``pm.fit``.
    smooth : int, optional
        Width in steps of the moving average drawn over the loss; defaults to 1% of
        the steps (at least 1).
    figsize : tuple of float, optional
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: the loss first, then one per accumulator summary present.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc as pm
    >>> from pymc_adadelta import fit, plot_history
    >>> with pm.Model():
    ...     x = pm.Normal("x", 0.0, 1.0, shape=2)
    ...     result = fit(500, convergence=None, progressbar=False, random_seed=1)
    >>> [ax.get_ylabel() for ax in plot_history(result).axes]
    ['loss', 'grad_rms', 'delta_rms', 'step_size']
    """
    import matplotlib.pyplot as plt

    history, attrs = _history_and_attrs(result_or_data)
    summaries = [name for name in SUMMARIES if name in history]
    fig, axes = plt.subplots(
        1 + len(summaries), 1, sharex=True, squeeze=False,
        figsize=figsize or (7.0, 2.2 * (1 + len(summaries))),
    )  # fmt: skip
    axes = axes[:, 0]
    _plot_loss(axes[0], history, smooth)
    for ax, name in zip(axes[1:], summaries, strict=True):
        _plot_summary(ax, history[name])
    for ax in axes:
        _plot_markers(ax, attrs)
    axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return fig


def _history_and_attrs(obj: Any) -> tuple[xr.Dataset, dict[str, Any]]:
    from pymc_adadelta.output.groups import export_attrs, optimization_history
    from pymc_adadelta.output.inputs import is_fit_result

    if is_fit_result(obj):
        history = optimization_history(obj.approx, obj)
        attrs = export_attrs(obj.approx, obj, khat=float("nan"), draws=0)
    elif is_arviz_data(obj):
        history, attrs = arviz_group(obj, "optimization"), arviz_root_attrs(obj)
    elif isinstance(obj, xr.Dataset):
        history, attrs = _from_tracker_history(obj), dict(obj.attrs)
    else:
        raise TypeError(
            f"result_or_data must be a FitResult, what to_arviz returned or a tracker's "
            f"history, got {type(obj).__name__}"
        )
    if history is None or "loss" not in history or history.sizes.get("iteration", 0) == 0:
        raise ValueError(
            "result_or_data has no optimization history (no loss was recorded); "
            "was the fit run for at least one step?"
        )
    return history, attrs


def _from_tracker_history(history: xr.Dataset) -> xr.Dataset | None:
    """`AccumulatorTracker.history` in the layout of the exported ``optimization`` group."""
    if "loss" not in history:
        return None
    summaries = history.drop_vars("loss").rename(iteration="tracked_iteration")
    return xr.merge([history[["loss"]], summaries], combine_attrs="drop")


def _chains(data: xr.Dataset | xr.DataArray) -> list[Any]:
    """The ``chain`` coordinate values of an export of several fits, or ``[None]``."""
    return list(data["chain"].to_numpy()) if "chain" in data.dims else [None]


def _plot_loss(ax: Any, history: xr.Dataset, smooth: int | None) -> None:
    """The loss per step and its moving mean; one pair of lines per fit of several."""
    chains = _chains(history)
    everything = history["loss"].to_numpy()
    for k, chain in enumerate(chains):
        one = history if chain is None else history.sel(chain=chain)
        finite = np.isfinite(one["loss"].to_numpy())  # shorter fits are padded with NaN
        loss, steps = one["loss"].to_numpy()[finite], one["iteration"].to_numpy()[finite]
        name = "loss" if chain is None else f"chain {chain}"
        width = smooth or max(1, len(loss) // 100)
        ax.plot(steps, loss, lw=0.5, alpha=0.4, color=f"C{k}", label=name)
        if width > 1 and len(loss) >= width:
            smoothed = np.convolve(loss, np.ones(width) / width, mode="valid")
            label = f"moving mean of {width}" + ("" if chain is None else f" ({name})")
            ax.plot(steps[width - 1 :], smoothed, color=f"C{k}", label=label)
    low, high = np.nanpercentile(everything, [0.5, 99.5])  # early spikes would flatten the rest
    if high > low:
        ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    ax.set_ylabel("loss")


def _plot_summary(ax: Any, values: xr.DataArray) -> None:
    """One line per (parameter, variable), and per fit for an export of several fits."""
    steps = values["tracked_iteration"].to_numpy()
    for c, chain in enumerate(_chains(values)):
        one = values if chain is None else values.sel(chain=chain)
        for k, param in enumerate(one["param"].to_numpy()):
            for j, variable in enumerate(one["variable"].to_numpy()):
                trace = one.sel(param=param, variable=variable).to_numpy()
                if np.isfinite(trace).any():
                    ax.plot(steps, trace, color=f"C{j}", ls=["-", "--", ":"][k % 3], lw=1,
                            alpha=1.0 if c == 0 else 0.5,
                            label=f"{param}: {variable}" if c == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel(str(values.name))
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)


def _plot_markers(ax: Any, attrs: dict[str, Any]) -> None:
    for k, (key, label) in enumerate(MARKERS.items()):
        if key in attrs:
            ax.axvline(int(attrs[key]), color=f"C{3 + k}", ls="--", lw=1, label=label)
