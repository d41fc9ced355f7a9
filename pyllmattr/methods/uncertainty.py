"""How sure a sampling method's values are: standard errors and rank stability.

Shapley value sampling, KernelSHAP, LIME and ContextCite estimate their values from
random coalitions. A seeded bootstrap over those coalitions (permutations for Shapley
sampling, rows of the fit for the surrogates) re-solves the method
:data:`N_BOOTSTRAP` times from the outputs already scored (no model call) and gives:

- ``seq_attr_stderr`` / ``token_attr_stderr``: each value's standard error;
- ``top_k_prob[k - 1]``: the probability that the k features ranked first by
  |seq_attr| come first in that order (k = 1 .. :data:`TOP_K`).

With ``num_trials > 1`` each replicate is the mean over the trials of one replicate
per trial (the estimator the result reports).

Example:
    >>> replicates = np.array([[[1.0, 0.1]], [[0.9, 0.2]], [[1.1, 0.0]]])
    >>> fields = uncertainty_fields(replicates, np.array([[1.0, 0.1]]))
    >>> fields["top_k_prob"]
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Bootstrap replicates per attribution: standard errors to about 5 % of their value.
N_BOOTSTRAP = 200
# top_k_prob covers the first TOP_K ranks.
TOP_K = 5
# Separates the bootstrap's random stream from the sampling's: a seeded attribution
# draws the same coalitions with or without it.
_STREAM = 0x5E


def bootstrap_rng(seed: int | None) -> np.random.Generator:
    """The bootstrap's generator: seeded by the attribution's ``seed`` (its own stream)."""
    return np.random.default_rng(None if seed is None else [int(seed), _STREAM])


def resampled_solves(
    solve: Callable[[np.ndarray], np.ndarray],
    n_rows: int,
    rng: np.random.Generator,
    fixed: int = 0,
    n: int = N_BOOTSTRAP,
) -> np.ndarray:
    """``solve(rows)`` for ``n`` bootstrap resamples of rows ``fixed..n_rows`` (rows
    before ``fixed`` are always kept, e.g. KernelSHAP's full and empty coalitions):
    (n, n_outputs, n_features)."""
    head = np.arange(fixed)
    if n_rows <= fixed:  # nothing was sampled: every replicate is the estimate itself
        return np.stack([solve(head)] * n)
    drawn = rng.integers(fixed, n_rows, size=(n, n_rows - fixed))
    return np.stack([solve(np.concatenate([head, rows])) for rows in drawn])


def mean_of_trials(replicates: Sequence[np.ndarray]) -> np.ndarray:
    """Replicates of the mean over trials from replicates of each trial."""
    return np.mean(np.stack(replicates), axis=0)


def uncertainty_fields(replicates: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """The result fields from bootstrap replicates (n, 1 [+ T], n_features) of
    ``values`` (1 [+ T], n_features): standard errors and top-k order probabilities."""
    stderr = replicates.std(axis=0, ddof=1) if len(replicates) > 1 else np.zeros_like(values)
    return {
        "seq_attr_stderr": stderr[0],
        "token_attr_stderr": stderr[1:] if len(values) > 1 else None,
        "top_k_prob": top_k_prob(replicates[:, 0], values[0]),
    }


def top_k_prob(replicates: np.ndarray, values: np.ndarray, k_max: int = TOP_K) -> list[float]:
    """For k = 1..k_max: the share of replicates (n, n_features) whose k features of
    largest |value| are ``values``' top k, in the same order (ties in feature order,
    as ``AttributionResult.top_features``)."""
    k_max = min(k_max, len(values))
    reported = np.argsort(-np.abs(values), kind="stable")[:k_max]
    ranked = np.argsort(-np.abs(replicates), axis=1, kind="stable")[:, :k_max]
    same = np.cumprod(ranked == reported, axis=1).astype(bool)  # agree on ranks 1..k
    return [float(p) for p in same.mean(axis=0)]
