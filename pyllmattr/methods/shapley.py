"""Shapley values: exact (all subsets) and by permutation sampling."""

from __future__ import annotations

from math import factorial
from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from ..pipeline import Evaluation, Job, Settings
from . import screening
from .base import PerturbationMethod
from .uncertainty import resampled_solves


class ShapleyValueSampling(PerturbationMethod):
    """Shapley values estimated from ``n_samples`` random feature orderings.

    Each ordering adds features one by one to the all-baseline prompt and credits
    each with the change it causes (n_samples x (n_features + 1) evaluations, the
    shared ones scored once). Unbiased; the spread shrinks as 1/sqrt(n_samples).

    Example:
        >>> result = pla.ShapleyValueSampling(model).attribute(inp, n_samples=10)  # doctest: +SKIP
    """

    name = "shapley-sampling"
    defaults: ClassVar[dict[str, Any]] = {"n_samples": 25, "screen": False, "screen_tol": None}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = screening.check_screen_options(options)
        check_positive_int("n_samples", options["n_samples"])
        return options

    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        if not settings.options.get("screen"):
            return super().evaluate(jobs, settings)
        return screening.screened_sampling(self.model, jobs, settings)

    def masks(
        self, n_features: int, rng: np.random.Generator, n_samples: int = 25, **options: Any
    ) -> np.ndarray:
        check_positive_int("n_samples", n_samples)
        rows = []
        for _ in range(n_samples):
            order = rng.permutation(n_features)
            mask = np.zeros(n_features, dtype=bool)
            rows.append(mask.copy())
            for feature in order:
                mask[feature] = True
                rows.append(mask.copy())
        return np.array(rows)

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        per_sample = contributions(masks, outputs)
        return per_sample.sum(axis=0) / len(per_sample)

    def replicates(
        self, masks: np.ndarray, outputs: np.ndarray, rng: np.random.Generator, **options: Any
    ) -> np.ndarray:
        """Bootstrap over the sampled orderings."""
        per_sample = contributions(masks, outputs)
        return resampled_solves(lambda rows: per_sample[rows].mean(axis=0), len(per_sample), rng)


def contributions(masks: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Each sampled ordering's marginal contributions (n_samples, n_outputs, n_features):
    the change each feature caused when that ordering added it."""
    n_features = masks.shape[1]
    steps = n_features + 1
    n_samples = len(masks) // steps
    out = np.zeros((n_samples, outputs.shape[1], n_features))
    for s in range(n_samples):
        block = slice(s * steps, (s + 1) * steps)
        m, f = masks[block], outputs[block]
        added = np.argmax(m[1:] & ~m[:-1], axis=1)  # the feature added at each step
        out[s][:, added] = (f[1:] - f[:-1]).T
    return out


class ShapleyValues(PerturbationMethod):
    """Exact Shapley values over all 2^n_features subsets of features.

    Refuses more than ``max_features`` features (default 12, 4096 evaluations);
    use :class:`ShapleyValueSampling` beyond that. The values sum exactly to
    f(prompt) - f(all features at their baselines).

    Example:
        >>> result = pla.ShapleyValues(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
    """

    name = "shapley"
    defaults: ClassVar[dict[str, Any]] = {"max_features": 12}

    def masks(
        self, n_features: int, rng: np.random.Generator, max_features: int = 12, **options: Any
    ) -> np.ndarray:
        if n_features > max_features:
            raise ValueError(
                f"exact Shapley values over {n_features} features need 2^{n_features} = "
                f"{2**n_features} evaluations; use pla.ShapleyValueSampling(model) with "
                f"n_samples=..., group features with a mask, or raise max_features"
            )
        subsets = np.arange(2**n_features)
        return ((subsets[:, None] >> np.arange(n_features)) & 1).astype(bool)

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        n = masks.shape[1]
        sizes = masks.sum(axis=1)
        weight = np.array([factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)])
        index = np.arange(len(masks))
        result = np.zeros((outputs.shape[1], n))
        for i in range(n):
            without = index[~masks[:, i]]  # subset index equals its bit pattern
            with_i = without | (1 << i)
            gains = outputs[with_i] - outputs[without]
            result[:, i] = weight[sizes[without]] @ gains
        return result
