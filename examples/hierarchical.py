# %% [markdown]
# # Eight schools: a hierarchical model
#
# The classic eight-schools model (Rubin 1981), in its non-centered form, fitted with
# `pymc_adadelta.fit`. The example shows the whole loop: fit, read why the fit stopped,
# look at the optimization history, export to ArviZ, summarize, and check the
# approximation with PSIS k-hat.
#
# Run it as a script with `python examples/hierarchical.py`; it prints its results and
# saves `hierarchical_history.png` in the current folder.

# %%
import arviz as az
import numpy as np
import pymc as pm

from pymc_adadelta import fit, psis_khat

try:  # rich tables in a notebook (the docs), plain text when run as a script
    from IPython.display import display
except ImportError:
    display = print

# %% [markdown]
# ## The model
#
# Each school's treatment effect `theta` is drawn around a common mean `mu` with spread
# `tau`. Written as `theta = mu + tau * theta_raw`, with a standard normal `theta_raw`,
# the posterior has no funnel, which suits a Gaussian approximation far better than the
# centered form (see the k-hat table in the convergence guide).

# %%
schools = ["A", "B", "C", "D", "E", "F", "G", "H"]
effect = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
stderr = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

with pm.Model(coords={"school": schools}) as model:
    mu = pm.Normal("mu", 0.0, 5.0)
    tau = pm.HalfCauchy("tau", 5.0)
    theta_raw = pm.Normal("theta_raw", 0.0, 1.0, dims="school")
    theta = pm.Deterministic("theta", mu + tau * theta_raw, dims="school")
    pm.Normal("obs", theta, sigma=stderr, observed=effect, dims="school")

# %% [markdown]
# ## Fit
#
# `fit()` first moves the approximation close to the optimum of the ELBO (a warm start
# with L-BFGS over fixed draws), then runs mean-field ADVI with Adadelta for at most `n`
# steps (50,000 by default), and stops when its convergence rule fires.

# %%
with model:
    result = fit(random_seed=1, progressbar=False)

warm = result.warm_start
if warm is not None:
    print(
        f"warm start: applied={warm.applied} ({warm.reason}), {warm.iterations} L-BFGS iterations"
    )
print(f"stop reason: {result.stop_reason}, steps: {result.n_steps}, converged: {result.converged}")

# %% [markdown]
# ## Did it converge?
#
# The convergence rule reads the iterates of the variational parameters, not the loss.
# Every 1,000 steps it checks whether a recent window of them is stationary, and
# averages them once it is; it stops the fit when the Monte Carlo error of that average
# is below 0.1 posterior sd. Its checks are kept in `result.convergence.checks` (the
# rules are compared in the [convergence guide](../convergence.md)). When no rule fires,
# `fit()` returns the last iterate, as `pm.fit` would, and the history tells you why.

# %%
checks = result.convergence.checks
for check in checks[-4:]:
    print(check)
if result.converged:
    print(f"averaged from step {result.convergence.window_start}; "
          f"the approximation holds the average of the iterates since then")  # fmt: skip
else:
    print("not converged: the iterates were still drifting (see the history below)")

# %% [markdown]
# `result.history` is an `xarray.Dataset` with the loss and, per parameter (`mu`, `rho`)
# and model variable, the RMS of Adadelta's accumulators and its effective step size,
# every 10 steps. `result.plot()` draws it.

# %%
history = result.history
display(history["step_size"].isel(iteration=-1).to_pandas())

fig = result.plot()
fig.savefig("hierarchical_history.png", dpi=80)

# %% [markdown]
# ## ArviZ output
#
# `result.to_arviz()` returns the installed ArviZ's own object (`InferenceData` on
# ArviZ 0.x, `DataTree` on ArviZ 1.x) with the draws as one chain, so the usual ArviZ
# functions take it unchanged. R-hat and ESS of a single chain of independent VI draws
# say nothing about the fit, so the summary shows only the statistics.

# %%
data = result.to_arviz(2000, random_seed=2)
summary = az.summary(data, var_names=["mu", "tau", "theta"], kind="stats")
display(summary)

# %% [markdown]
# The export also keeps the variational parameters (`vi_parameters`), the optimization
# history (`optimization`), and, per draw, `lp`, `logq` and `log_weight` in
# `sample_stats`; its attributes record the method, the optimizer and the fit's outcome.

# %%
print(list(data.children) if hasattr(data, "children") else data.groups())
print({k: data.attrs[k] for k in ("method", "n_steps", "stop_reason") if k in data.attrs})

# %% [markdown]
# ## Is the approximation any good?
#
# PSIS k-hat compares the approximation `q` with the posterior `p` through the
# importance ratios `p/q` of 8,000 draws: below 0.5 the approximation is good, between
# 0.5 and 0.7 usable with care, above 0.7 not to be trusted (see
# [what to do when k-hat is high](../diagnostics.md)). k-hat is itself an estimate, and
# a noisy one when the tail is heavy, so compute it from a few seeds before deciding.

# %%
khats = np.array([psis_khat(result, random_seed=seed) for seed in range(4)])
khat = float(np.median(khats))
verdict = "good" if khat < 0.5 else "usable with care" if khat < 0.7 else "do not trust"
print(f"PSIS k-hat over 4 seeds: {np.round(khats, 2)}, median {khat:.2f} ({verdict})")

# %% [markdown]
# Eight schools is a hard case for a Gaussian approximation, even non-centered:
# the posterior of `tau` is skewed and bounded at zero, and mean field cannot represent
# its correlation with the school effects. k-hat around or above 0.7 means: use the
# approximation for a quick look, and `pm.sample` for conclusions. The
# [convergence guide](../guide.md) lists what else to try.
