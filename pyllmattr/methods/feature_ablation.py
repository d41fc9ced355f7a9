"""Feature ablation: each feature's effect is the change when it alone is removed."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import PerturbationMethod


class FeatureAblation(PerturbationMethod):
    """Attribution of feature i = f(prompt) - f(prompt with feature i at its baseline).

    Needs 1 + n_features evaluations, all scored in one call.

    Example:
        >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL.")
        >>> method = pla.FeatureAblation(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, target=" He is a lawyer")  # doctest: +SKIP
    """

    name = "feature-ablation"
    defaults: dict[str, Any] = {}

    def masks(self, n_features: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
        masks = np.ones((n_features + 1, n_features), dtype=bool)
        masks[np.arange(1, n_features + 1), np.arange(n_features)] = False
        return masks

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        return (outputs[0] - outputs[1:]).T
