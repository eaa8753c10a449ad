"""Quickstart: fit a linear regression with ADVI and pymc-adadelta's Adadelta.

Prints the fitted posterior means next to the least-squares estimate, the optimizer's
state per model variable and the PSIS k-hat of the approximation, and saves a plot of the
optimization history (``quickstart_history.png`` in the current folder).
Run: ``python examples/quickstart.py``
"""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pymc as pm

from pymc_adadelta import adadelta, plot_history, to_arviz

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    rng = np.random.default_rng(42)
    n, names = 500, ["intercept", "age", "income", "score"]
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    true_beta = np.array([1.5, -0.8, 0.3, 2.0])
    y = X @ true_beta + rng.normal(scale=0.7, size=n)

    with pm.Model(coords={"coef": names}):
        beta = pm.Normal("beta", 0.0, 10.0, dims="coef")
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", pm.math.dot(X, beta), sigma, observed=y)

        optimizer = adadelta()  # drop-in for pm.adadelta()
        approx = pm.fit(20_000, method="advi", obj_optimizer=optimizer, random_seed=1,
                        progressbar=False)  # fmt: skip

    data = to_arviz(approx, draws=2000, random_seed=2)  # InferenceData or DataTree
    posterior = data["posterior"]
    vi_means = posterior["beta"].mean(("chain", "draw")).values
    least_squares, *_ = np.linalg.lstsq(X, y, rcond=None)

    print(f"ADVI with pymc_adadelta.adadelta: {optimizer.state.n_steps} steps, "
          f"final loss {approx.hist[-100:].mean():.2f} (mean of the last 100)")  # fmt: skip
    print(f"{'coefficient':<12}{'VI mean':>10}{'least squares':>15}{'truth':>8}")
    for name, m, ls, t in zip(names, vi_means, least_squares, true_beta, strict=True):
        print(f"{name:<12}{m:>10.3f}{ls:>15.3f}{t:>8.2f}")
    sigma_hat = float(posterior["sigma"].mean())
    residual_sd = np.std(y - X @ least_squares, ddof=X.shape[1])
    print(f"{'sigma':<12}{sigma_hat:>10.3f}{residual_sd:>15.3f}{0.7:>8.2f}")

    print("\nOptimizer state per model variable (E[g^2] of the means):")
    ds = optimizer.accumulators(approx, as_dataset=True)
    print(ds["beta"].sel(param="mu", accumulator="sq_grad").to_series().to_string())
    max_gap = np.max(np.abs(vi_means - least_squares))
    print(f"\nmax |VI mean - least squares| = {max_gap:.3f}")
    khat = data.attrs["psis_khat"]
    verdict = "good" if khat < 0.5 else "usable with care" if khat < 0.7 else "do not trust"
    print(f"PSIS k-hat of the approximation: {khat:.2f} ({verdict})")
    plot_history(data).savefig("quickstart_history.png", dpi=80)
    print("optimization history plotted in quickstart_history.png")


if __name__ == "__main__":
    main()
