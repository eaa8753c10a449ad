# %% [markdown]
# # A larger data set: minibatches
#
# A linear regression on 50,000 generated rows, written with `pm.Minibatch` and
# `total_size`, as a model for data too large to fit in one go. `fit()` recognizes such
# a model and fits the FULL-data posterior: a warm start on a random subsample, then a
# few passes over all the rows that correct it, and it stops by itself when a pass moves
# nothing by more than 1% of a posterior sd. Plain `pm.fit` on the same model takes
# noisy minibatch steps for as long as it is told to. Because the data are generated
# from a linear model, the exact posterior is known, and both fits can be checked
# against it.
#
# Run it as a script with `python examples/minibatch.py`.

# %%
import numpy as np
import pandas as pd
import pymc as pm

from pymc_adadelta import Adadelta, IterateAveraging, fit, to_arviz

# %% [markdown]
# ## Data and model
#
# `pm.Minibatch` draws the same random rows from `X` and `y` at every step;
# `total_size` scales the minibatch's log likelihood up to the whole data set.

# %%
rng = np.random.default_rng(7)
n_rows, names = 50_000, ["intercept", "x1", "x2", "x3", "x4", "x5"]
X = np.column_stack([np.ones(n_rows), rng.normal(size=(n_rows, len(names) - 1))])
true_beta = np.array([0.5, 1.0, -2.0, 0.3, 0.0, 1.5])
y = X @ true_beta + rng.normal(scale=1.3, size=n_rows)

with pm.Model(coords={"coef": names}) as model:
    # pm.Data: on PyMC 5, pm.Minibatch of bare NumPy arrays costs time with the data per step
    X_batch, y_batch = pm.Minibatch(pm.Data("X_all", X), pm.Data("y_all", y), batch_size=500)
    beta = pm.Normal("beta", 0.0, 10.0, dims="coef")
    sigma = pm.HalfNormal("sigma", 5.0)
    pm.Normal("y", X_batch @ beta, sigma, observed=y_batch, total_size=n_rows)

# %% [markdown]
# ## `fit()`: the full-data answer, and it stops by itself
#
# `result.history` holds one row per outer step: the full-data loss, how far the step
# moved (in posterior sds) and the passes over the data so far. A pass counts every row
# evaluated once at the fixed draws of the objective, subsample evaluations included.

# %%
with model:
    result = fit(random_seed=1, progressbar=False)
attrs = result.history.attrs
print(f"stop reason: {result.stop_reason}, passes over the data: {attrs['passes']:.1f}, "
      f"subsample: {attrs['subsample_rows']} rows")  # fmt: skip
print(result.history[["passes", "moved_sd"]].to_dataframe().round(4).to_string())

# %% [markdown]
# ## Plain `pm.fit` on the same minibatches, for comparison
#
# 5,000 Adadelta steps of 500 rows (50 passes), averaging the iterates of the second
# half, which is what makes a constant-step minibatch fit usable at all.

# %%
n_steps = 5_000
averaging = IterateAveraging(start=0.5, n=n_steps)
with model:
    approx = pm.fit(n_steps, obj_optimizer=Adadelta(), callbacks=[averaging], random_seed=1,
                    progressbar=False)  # fmt: skip

# %% [markdown]
# ## Against the exact posterior
#
# With a flat-ish prior the posterior of `beta` is close to normal, centred at the least
# squares estimate with covariance `sigma² (XᵀX)⁻¹`.

# %%
least_squares, *_ = np.linalg.lstsq(X, y, rcond=None)
residual_sd = np.std(y - X @ least_squares, ddof=X.shape[1])
exact_sd = residual_sd * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
k = len(names)  # beta comes first in the approximation's flat vector
fit_mean, fit_sd = result.approx.mean.eval()[:k], result.approx.std.eval()[:k]
pm_mean, pm_sd = approx.mean.eval()[:k], approx.std.eval()[:k]
comparison = pd.DataFrame(
    {
        "exact mean": least_squares,
        "fit() error (sd)": (fit_mean - least_squares) / exact_sd,
        "fit() sd / exact": fit_sd / exact_sd,
        "pm.fit error (sd)": (pm_mean - least_squares) / exact_sd,
        "pm.fit sd / exact": pm_sd / exact_sd,
    },
    index=names,
)
print(comparison.round(3).to_string())
print(f"largest error: fit() {np.abs(comparison['fit() error (sd)']).max():.3f} sd, "
      f"pm.fit {np.abs(comparison['pm.fit error (sd)']).max():.3f} sd")  # fmt: skip

# %% [markdown]
# ## PSIS k-hat against the full data
#
# On a minibatch model the diagnostics judge the fit against the full-data posterior,
# never one random batch. `log p` of the full data at each of the export's 8,000
# proposals is estimated from samples of the rows (a difference estimator with a
# Taylor control variate, Quiroz et al. 2019), with its error stated: every row at
# every proposal would cost rows times draws likelihood terms (`exact_lp=True` does that).

# %%
data = to_arviz(result, random_seed=4)
khat = data.attrs["psis_khat"]
verdict = "good" if khat < 0.5 else "usable with care" if khat < 0.7 else "do not trust"
print(f"PSIS k-hat against the full data: {khat:.2f} ({verdict})")
print(f"log p: {data.attrs['lp_estimator']}, from {data.attrs['lp_residual_rows']} and "
      f"{data.attrs['lp_hessian_rows']} of {data.attrs['lp_data_rows']} rows, error sd "
      f"{data.attrs['lp_error_sd']:.3f} nats (99th percentile over the proposals)")  # fmt: skip
