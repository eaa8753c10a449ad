"""Benchmark models: four real-data models (data shipped with installed packages) and a
generated regression of any size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm

_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
_SCHOOLS_SD = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def _standardize(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def synthetic_regression(d: int, n_obs: int = 100) -> pm.Model:
    """Linear regression on generated data with ``d`` coefficients (cost benchmarks)."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n_obs, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n_obs)
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 1.0, shape=d)
        pm.Normal("y", X @ beta, 1.0, observed=y)
    return model


def linear_diabetes() -> pm.Model:
    """Linear regression: scikit-learn's diabetes data (442 patients, 10 predictors)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = _standardize(X), _standardize(y)
    with pm.Model(coords={"predictor": list(range(X.shape[1]))}) as model:
        alpha = pm.Normal("alpha", 0.0, 1.0)
        beta = pm.Normal("beta", 0.0, 1.0, dims="predictor")
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", alpha + X @ beta, sigma, observed=y)
    return model


def logistic_cancer() -> pm.Model:
    """Logistic regression: scikit-learn's breast-cancer data (569 tumours, 10 predictors)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = _standardize(X[:, :10])
    with pm.Model(coords={"predictor": list(range(X.shape[1]))}) as model:
        alpha = pm.Normal("alpha", 0.0, 2.5)
        beta = pm.Normal("beta", 0.0, 2.5, dims="predictor")
        pm.Bernoulli("y", logit_p=alpha + X @ beta, observed=y)
    return model


def poisson_randhie() -> pm.Model:
    """Poisson regression: statsmodels' RAND health-insurance data, doctor visits (5,000 rows)."""
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data.iloc[:5000]
    y = data["mdvis"].to_numpy()
    X = _standardize(data.drop(columns="mdvis").to_numpy(dtype=float))
    with pm.Model(coords={"predictor": list(range(X.shape[1]))}) as model:
        alpha = pm.Normal("alpha", 0.0, 2.0)
        beta = pm.Normal("beta", 0.0, 1.0, dims="predictor")
        pm.Poisson("y", pm.math.exp(alpha + X @ beta), observed=y)
    return model


def hierarchical_schools() -> pm.Model:
    """Hierarchical normal model (non-centered): the eight-schools data of Rubin (1981)."""
    with pm.Model(coords={"school": list(range(8))}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_raw = pm.Normal("theta_raw", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * theta_raw, dims="school")
        pm.Normal("y", theta, _SCHOOLS_SD, observed=_SCHOOLS_Y)
    return model


# Models whose mean-field approximation is known to be good or bad (PSIS k-hat).


def centered_schools() -> pm.Model:
    """Centered eight schools: a funnel that mean-field ADVI cannot represent."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta = pm.Normal("theta", mu, tau, shape=8)
        pm.Normal("y", theta, _SCHOOLS_SD, observed=_SCHOOLS_Y)
    return model


def collinear_regression() -> pm.Model:
    """Two predictors with correlation 0.99995: mean field misses the correlation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    X = np.column_stack([x, x + 0.01 * rng.normal(size=100), rng.normal(size=100)])
    with pm.Model() as model:
        b = pm.Normal("b", 0.0, 10.0, shape=3)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", X @ b, sigma, observed=X @ [1.0, 1.0, -0.5] + rng.normal(size=100))
    return model


def gaussian_means() -> pm.Model:
    """Normal means with known noise: the posterior is exactly mean-field Gaussian."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0, shape=2)
        pm.Normal("y", mu, 1.0, observed=np.random.default_rng(0).normal(size=(50, 2)))
    return model


MODELS: dict[str, tuple[Callable[[], pm.Model], bool]] = {
    # name: (builder, roughly Gaussian posterior)
    "linear_diabetes": (linear_diabetes, True),
    "poisson_randhie": (poisson_randhie, True),
    "logistic_cancer": (logistic_cancer, False),
    "hierarchical_schools": (hierarchical_schools, False),
}
