"""The two small linear models the valuation needs, in plain numpy.

Both standardise their inputs on the training data, so one penalty strength fits features of any
scale, and neither penalises the intercept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LinearModel", "fit_logistic", "fit_poisson", "fit_ridge", "sigmoid"]


@dataclass(frozen=True)
class LinearModel:
    """``intercept + ((x - mean) / scale) @ coef``: a ridge prediction or a logistic logit."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.scale
        return np.asarray(z @ self.coef + self.intercept, dtype=float)

    def raw_coefficients(self) -> tuple[np.ndarray, float]:
        """Coefficients and intercept in the units of the unstandardised features."""
        coef = self.coef / self.scale
        return coef, float(self.intercept - np.dot(self.mean, coef))


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    # constant columns stay at zero after centring; any positive scale keeps them inert
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (x - mean) / scale, mean, scale


def fit_ridge(
    x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None
) -> LinearModel:
    """Weighted least squares with an L2 penalty ``alpha * |coef|^2`` (intercept free)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    z, mean, scale = _standardise(x)
    wsum = w.sum()
    zm = (w @ z) / wsum
    ym = float(w @ y / wsum)
    zc = z - zm
    yc = y - ym
    gram = zc.T @ (zc * w[:, None]) + alpha * np.eye(z.shape[1])
    coef = np.linalg.solve(gram, zc.T @ (w * yc))
    return LinearModel(mean=mean, scale=scale, coef=coef, intercept=ym - float(zm @ coef))


def sigmoid(t: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(t, dtype=float))))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, alpha: float = 1.0, iterations: int = 50
) -> LinearModel:
    """L2-penalised logistic regression by Newton's method (IRLS)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    z, mean, scale = _standardise(x)
    n, d = z.shape
    a = np.c_[np.ones(n), z]
    beta = np.zeros(d + 1)
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta[0] = np.log(rate / (1 - rate))
    penalty = alpha * np.eye(d + 1)
    penalty[0, 0] = 0.0
    for _ in range(iterations):
        p = sigmoid(a @ beta)
        grad = a.T @ (p - y) + penalty @ beta
        hess = a.T @ (a * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return LinearModel(mean=mean, scale=scale, coef=beta[1:], intercept=float(beta[0]))


def fit_poisson(
    x: np.ndarray,
    y: np.ndarray,
    alpha: float = 1.0,
    exposure: np.ndarray | None = None,
    iterations: int = 50,
    weights: np.ndarray | None = None,
) -> LinearModel:
    """L2-penalised Poisson regression of counts ``y`` (log link) by Newton's method.

    ``decision`` gives the log rate per unit of exposure.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    offset = np.zeros(len(y)) if exposure is None else np.log(np.asarray(exposure, dtype=float))
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    z, mean, scale = _standardise(x)
    n, d = z.shape
    a = np.c_[np.ones(n), z]
    beta = np.zeros(d + 1)
    beta[0] = np.log(max(w @ y, 0.5) / (w @ np.exp(offset)))
    penalty = alpha * np.eye(d + 1)
    penalty[0, 0] = 0.0
    for _ in range(iterations):
        eta = np.clip(a @ beta + offset, -30.0, 30.0)
        mu = np.exp(eta)
        grad = a.T @ (w * (mu - y)) + penalty @ beta
        hess = a.T @ (a * (w * mu)[:, None]) + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return LinearModel(mean=mean, scale=scale, coef=beta[1:], intercept=float(beta[0]))
