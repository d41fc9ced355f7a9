"""Feature ablation: each feature's effect is the change when it alone is removed."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .base import PerturbationMethod
from .proxy import proxy_feature_ablation


class FeatureAblation(PerturbationMethod):
    """Attribution of feature i = f(prompt) - f(prompt with feature i at its baseline).

    Needs 1 + n_features evaluations, all scored in one call. ``proxy=`` (another
    model, e.g. a smaller or faster-quantized one) ablates every feature first and the
    target model re-scores only the ``keep`` (default 5) with the largest |attribution|
    there (see :mod:`pyllmattr.methods.proxy`).

    Example:
        >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL.")
        >>> method = pla.FeatureAblation(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, target=" He is a lawyer")  # doctest: +SKIP
    """

    name = "feature-ablation"
    defaults: dict[str, Any] = {}

    def attribute(self, inp: Any, target: Any = None, **kwargs: Any) -> Any:
        proxy, keep = kwargs.pop("proxy", None), kwargs.pop("keep", None)
        if proxy is None:
            if keep is not None:
                raise ValueError("keep= chooses what a proxy passes on: give proxy= too")
            return super().attribute(inp, target, **kwargs)
        lock = getattr(self.model, "_attribution_lock", None)
        with lock if lock is not None else contextlib.nullcontext():
            return proxy_feature_ablation(self, inp, proxy, keep, target, **kwargs)

    def masks(self, n_features: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
        masks = np.ones((n_features + 1, n_features), dtype=bool)
        masks[np.arange(1, n_features + 1), np.arange(n_features)] = False
        return masks

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        return (outputs[0] - outputs[1:]).T
