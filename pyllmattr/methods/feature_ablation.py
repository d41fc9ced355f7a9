"""Feature ablation: each feature's effect is the change when it alone is removed."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from ..pipeline import Evaluation, Job, Settings
from . import staged
from .base import PerturbationMethod
from .proxy import DEFAULT_KEEP, proxy_feature_ablation


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
    proxy_options = frozenset({"keep"})
    defaults: ClassVar[dict[str, Any]] = {"proxy": None, "keep": None}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        proxy, keep = options.pop("proxy"), options.pop("keep")
        if proxy is None:
            if keep is not None:
                raise ValueError("keep= chooses what a proxy passes on: give proxy= too")
            return options  # plain feature ablation: no proxy options in its settings
        staged.check_proxy(proxy, self.model)
        if keep is not None:
            check_positive_int("keep", keep)
        return {**options, "proxy": proxy, "keep": keep or DEFAULT_KEEP}

    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        if settings.options.get("proxy") is None:
            return super().evaluate(jobs, settings)
        return proxy_feature_ablation(self.model, jobs, settings)

    def masks(self, n_features: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
        masks = np.ones((n_features + 1, n_features), dtype=bool)
        masks[np.arange(1, n_features + 1), np.arange(n_features)] = False
        return masks

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        return (outputs[0] - outputs[1:]).T
