# %% [markdown]
# # Against NUTS: a Poisson regression on 20,000 rows
#
# When is variational inference the right tool, and how close does it get to MCMC? A
# Poisson regression on 20,000 generated counts is fitted twice: with
# `pymc_adadelta.fit` (mean-field ADVI, stopped by its convergence rule and averaged)
# and with PyMC's NUTS sampler. The example compares the posterior means and standard
# deviations, prints the PSIS k-hat of the approximation, times both, and says which
# was the better choice here.
#
# Each NUTS draw costs several gradient evaluations over all rows (a leapfrog trajectory),
# and NUTS needs ~1,000 of them plus tuning; `fit()` needs about 2,000 single-gradient
# steps after a warm start (L-BFGS over 30 fixed draws, then a linear-response
# correction), which itself costs a few thousand evaluations. On a model NUTS samples
# this easily (well-conditioned, short trajectories) the two end up close in time, and
# NUTS, exact up to its Monte Carlo error, is then the better choice; VI pulls ahead
# where NUTS's trajectories get long or the data much larger (see the minibatch
# example, which never evaluates all rows at once). The last cell says which it was on
# this run.
#
# Run it as a script with `python examples/compare_nuts.py`; it saves
# `compare_nuts.png` in the current folder.

# %%
import time

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm

from pymc_adadelta import fit, psis_khat

pd.set_option("display.width", 120)  # wide tables in plain text, when run as a script
pd.set_option("display.max_columns", 12)

try:  # rich tables in a notebook (the docs), plain text when run as a script
    from IPython.display import display
except ImportError:
    display = print

# %% [markdown]
# ## Data and model
#
# Counts of events for 20,000 units, with an exposure time and five covariates.

# %%
rng = np.random.default_rng(3)
n_rows, names = 20_000, ["age", "dose", "score", "site", "season"]
X = rng.normal(size=(n_rows, len(names)))
exposure = rng.uniform(0.5, 2.0, size=n_rows)
true_beta = np.array([0.4, -0.3, 0.15, 0.05, -0.1])
counts = rng.poisson(exposure * np.exp(0.8 + X @ true_beta))

with pm.Model(coords={"coef": names}) as model:
    intercept = pm.Normal("intercept", 0.0, 2.0)
    beta = pm.Normal("beta", 0.0, 1.0, dims="coef")
    rate = pm.math.exp(intercept + pm.math.dot(X, beta)) * exposure
    pm.Poisson("counts", rate, observed=counts)

# %% [markdown]
# ## Variational fit
#
# `fit()` warm-starts close to the optimum, runs Adadelta, averages the iterates once
# they are stationary, and stops when the Monte Carlo error of the average is small.

# %%
start = time.perf_counter()
with model:
    result = fit(random_seed=1, progressbar=False)
vi_seconds = time.perf_counter() - start
print(f"fit(): {result.stop_reason} after {result.n_steps} steps, {vi_seconds:.1f} s")
vi_data = result.to_arviz(2000, random_seed=2)

# %% [markdown]
# ## NUTS
#
# Two chains of 500 draws after 500 tuning steps, one after the other.

# %%
start = time.perf_counter()
with model:
    nuts_data = pm.sample(draws=500, tune=500, chains=2, cores=1, random_seed=4, progressbar=False)
nuts_seconds = time.perf_counter() - start
print(f"pm.sample: {nuts_seconds:.1f} s, including compilation")
display(az.summary(nuts_data, round_to=3))

# %% [markdown]
# ## Compared
#
# The error of each VI mean is measured in NUTS posterior standard deviations; the sd
# ratio is VI sd / NUTS sd. Mean-field ADVI ignores correlations between the
# coefficients; with nearly independent covariates, as here, it loses little. On
# correlated predictors expect sd ratios below 1 (then try `method="fullrank_advi"`).
# NUTS itself has Monte Carlo error: with 1,000 draws, about 0.03 posterior sd on each
# mean, so differences of that size are noise.


# %%
def flat_moments(data):
    """Posterior mean and sd of every coordinate, as a DataFrame."""
    posterior = data["posterior"]
    draws = np.column_stack(
        [
            posterior["intercept"].values.reshape(-1),
            posterior["beta"].values.reshape(-1, len(names)),
        ]
    )
    labels = ["intercept"] + [f"beta[{name}]" for name in names]
    return pd.DataFrame({"mean": draws.mean(0), "sd": draws.std(0, ddof=1)}, index=labels)


vi, nuts = flat_moments(vi_data), flat_moments(nuts_data)
comparison = pd.DataFrame(
    {
        "NUTS mean": nuts["mean"],
        "VI mean": vi["mean"],
        "error (NUTS sd)": (vi["mean"] - nuts["mean"]) / nuts["sd"],
        "NUTS sd": nuts["sd"],
        "VI sd": vi["sd"],
        "sd ratio": vi["sd"] / nuts["sd"],
    }
)
display(comparison.round(3))

fig, ax = plt.subplots(figsize=(6, 3))
positions = np.arange(len(comparison))
ax.errorbar(nuts["mean"], positions + 0.1, xerr=nuts["sd"], fmt="o", label="NUTS")
ax.errorbar(vi["mean"], positions - 0.1, xerr=vi["sd"], fmt="s", label="VI (fit)")
ax.set_yticks(positions, comparison.index)
ax.set_xlabel("posterior mean ± 1 sd")
ax.legend()
fig.tight_layout()
fig.savefig("compare_nuts.png", dpi=80)

# %% [markdown]
# ## PSIS k-hat
#
# k-hat measures how well `q` covers `p` without any MCMC reference; here it can be
# checked against NUTS. Each of its draws evaluates the model on all rows, so 2,000
# draws are used here rather than the default 8,000.

# %%
khat = psis_khat(result, draws=2_000, random_seed=5)
quality = "good" if khat < 0.5 else "usable with care" if khat < 0.7 else "do not trust"
print(f"PSIS k-hat: {khat:.2f} ({quality})")
worst = comparison["error (NUTS sd)"].abs().max()
print(f"largest |VI mean - NUTS mean|: {worst:.2f} NUTS sd")
print(f"time: fit() {vi_seconds:.1f} s, NUTS {nuts_seconds:.1f} s")

# %% [markdown]
# ## Which was the better choice?
#
# The verdict below is computed from this run's times and errors, so it stays honest on
# another machine or with other data.

# %%
if nuts_seconds <= 1.5 * vi_seconds:
    print(
        f"NUTS was the better choice here: about as fast as fit() or faster "
        f"({nuts_seconds:.1f} s against {vi_seconds:.1f} s) and exact up to its Monte Carlo "
        f"error. Use VI when NUTS is too slow (much data, large models)."
    )
elif khat >= 0.7 or worst > 0.2:
    print(
        f"fit() was {nuts_seconds / vi_seconds:.1f}x faster, but its approximation is off "
        f"(k-hat {khat:.2f}, means up to {worst:.2f} sd from NUTS): use NUTS for the answer."
    )
else:
    print(
        f"VI was the right tool here: fit() was {nuts_seconds / vi_seconds:.1f}x faster than "
        f"NUTS, with means within {worst:.2f} NUTS sd and k-hat {khat:.2f}."
    )
