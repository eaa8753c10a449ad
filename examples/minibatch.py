# %% [markdown]
# # A larger data set: minibatches
#
# A linear regression on 50,000 generated rows, fitted on random minibatches of 500 rows
# with `pm.Minibatch` and `total_size`, using plain `pm.fit` with `pymc_adadelta`'s
# optimizer and two of its callbacks: `AccumulatorTracker` records what the optimizer
# does, `IterateAveraging` averages the noisy iterates of the second half of the fit.
# Because the data are generated from a linear model, the exact posterior is known, and
# the fit can be checked against it.
#
# Run it as a script with `python examples/minibatch.py`; it saves
# `minibatch_history.png` in the current folder.

# %%
import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from pymc_adadelta import (
    AccumulatorTracker,
    Adadelta,
    IterateAveraging,
    plot_history,
    psis_khat,
    to_arviz,
)

# %% [markdown]
# ## Data and model
#
# `pm.Minibatch` draws the same random rows from `X` and `y` at every step;
# `total_size` scales the minibatch's log likelihood up to the whole data set, so the
# objective is an unbiased estimate of the full-data ELBO.

# %%
rng = np.random.default_rng(7)
n_rows, names = 50_000, ["intercept", "x1", "x2", "x3", "x4", "x5"]
X = np.column_stack([np.ones(n_rows), rng.normal(size=(n_rows, len(names) - 1))])
true_beta = np.array([0.5, 1.0, -2.0, 0.3, 0.0, 1.5])
y = X @ true_beta + rng.normal(scale=1.3, size=n_rows)


def build_model(batch_size=None):
    """The regression on minibatches of ``batch_size`` rows, or on all rows (None)."""
    with pm.Model(coords={"coef": names}) as model:
        if batch_size is None:
            X_obs, y_obs, total_size = X, y, None
        else:
            X_obs, y_obs = pm.Minibatch(X, y, batch_size=batch_size)
            total_size = n_rows
        beta = pm.Normal("beta", 0.0, 10.0, dims="coef")
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", X_obs @ beta, sigma, observed=y_obs, total_size=total_size)
    return model


minibatch_model = build_model(batch_size=500)

# %% [markdown]
# ## Fit
#
# `Adadelta()` is what `pm.fit` takes as `obj_optimizer` (`adadelta()` with no
# arguments returns the same thing). The tracker records every 10th step; averaging
# starts halfway and writes the mean of the iterates into the approximation at the end.

# %%
n_steps = 20_000
optimizer = Adadelta()
tracker = AccumulatorTracker(optimizer, every=10)
averaging = IterateAveraging(start=0.5, n=n_steps)
with minibatch_model:
    approx = pm.fit(
        n_steps,
        method="advi",
        obj_optimizer=optimizer,
        callbacks=[tracker, averaging],
        random_seed=1,
        progressbar=False,
    )

# %% [markdown]
# ## Convergence diagnostics
#
# With minibatches the loss is noisy, so look at its trend: the mean loss over the last
# few thousand steps should be flat, and Adadelta's effective step size
# (`sqrt(E[Δx²] + ε) / sqrt(E[g²] + ε)`) should have settled.

# %%
history = tracker.history
loss = history["loss"].to_series()
blocks = loss.groupby((loss.index - 1) // 2_500 * 2_500 + 2_500).mean()
print("mean loss per 2,500 steps, by last step:")
print(blocks.round(1).to_string())
print("\neffective step size at the end, per parameter and model variable:")
print(history["step_size"].isel(iteration=-1).to_pandas().to_string())

# `plot_history` also draws the tracker's history of a plain `pm.fit`.
fig = plot_history(history, smooth=50)
fig.savefig("minibatch_history.png", dpi=80)

# %% [markdown]
# ## Against the exact posterior
#
# With a flat-ish prior the posterior of `beta` is close to normal, centred at the least
# squares estimate with covariance `sigma² (XᵀX)⁻¹`. The averaged iterates should sit
# within a small fraction of a posterior sd of it; the last iterate alone is further off.

# %%
least_squares, *_ = np.linalg.lstsq(X, y, rcond=None)
residual_sd = np.std(y - X @ least_squares, ddof=X.shape[1])
exact_sd = residual_sd * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))

data = to_arviz(approx, draws=1000, random_seed=2, log_weights=False)
vi_mean = data["posterior"]["beta"].mean(("chain", "draw")).values
vi_sd = data["posterior"]["beta"].std(("chain", "draw")).values
last_mean = averaging.last_iterate["mu"][: len(names)]  # beta comes first in mu
comparison = pd.DataFrame(
    {
        "exact mean": least_squares,
        "averaged": vi_mean,
        "error (sd)": (vi_mean - least_squares) / exact_sd,
        "last iterate": last_mean,
        "last error (sd)": (last_mean - least_squares) / exact_sd,
        "exact sd": exact_sd,
        "VI sd": vi_sd,
    },
    index=names,
)
print(comparison.round(4).to_string())

# %% [markdown]
# ## ArviZ output and PSIS k-hat
#
# On a minibatch model, `log p` would be evaluated on one random minibatch, so the
# export above skips it (`log_weights=False`). For k-hat, put the fitted parameters
# into an approximation of the same model on all rows (same variables, same order) and
# evaluate that one against the full-data density.

# %%
full_model = build_model()
with full_model:
    full_approx = pm.MeanField()
for target, fitted in zip(full_approx.params, approx.params, strict=True):
    target.set_value(fitted.get_value())

full_data = to_arviz(full_approx, draws=1000, random_seed=3)
print(az.summary(full_data, kind="stats", round_to=3).to_string())
khat = psis_khat(full_approx, draws=2000, random_seed=4)
verdict = "good" if khat < 0.5 else "usable with care" if khat < 0.7 else "do not trust"
print(f"PSIS k-hat against the full data: {khat:.2f} ({verdict})")
