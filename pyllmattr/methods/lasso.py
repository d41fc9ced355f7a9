"""A small Lasso (coordinate descent, numpy) for the ContextCite surrogate.

It minimizes scikit-learn's objective, ``1/(2n) ||y - b - X w||^2 + alpha ||w||_1``,
on standardized columns (scikit-learn's StandardScaler, as the ContextCite package
does), for several targets at once. Against ``sklearn.linear_model.Lasso`` on
ContextCite-shaped problems (32-128 masks over 40-70 sentences) it agreed to 1e-7; see
docs/long-context.md. scikit-learn is therefore not a dependency.
"""

from __future__ import annotations

import numpy as np


def lasso(
    x: np.ndarray, y: np.ndarray, alpha: float, max_iter: int = 2000, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_features, n_targets) and intercepts (n_targets,) in the units of ``x``.

    Example:
        >>> x = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], float)
        >>> w, b = lasso(x, x @ [[2.0], [0.0]], alpha=0.0)
        >>> np.round(w.ravel(), 6).tolist(), round(float(b[0]), 6)
        ([2.0, 0.0], 0.0)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).reshape(len(x), -1)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    constant = scale == 0
    scale[constant] = 1.0
    xs = (x - mean) / scale
    n = len(xs)
    y_mean = y.mean(axis=0)
    residual = y - y_mean
    w = np.zeros((xs.shape[1], y.shape[1]))
    norms = (xs**2).sum(axis=0) / n
    for _ in range(max_iter):
        largest = 0.0
        for j in np.flatnonzero(~constant):
            column = xs[:, j]
            rho = column @ residual / n + norms[j] * w[j]
            new = np.sign(rho) * np.maximum(np.abs(rho) - alpha, 0.0) / norms[j]
            delta = new - w[j]
            if np.any(delta):
                residual -= np.outer(column, delta)
                w[j] = new
                largest = max(largest, float(np.abs(delta).max()))
        if largest < tol:
            break
    weights = w / scale[:, None]
    return weights, y_mean - mean @ weights


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); nan if either is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks
