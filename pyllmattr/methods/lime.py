"""Surrogate-model methods: LIME and KernelSHAP fit a linear model to perturbations."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from .._warnings import warn
from .base import PerturbationMethod
from .uncertainty import resampled_solves


class Lime(PerturbationMethod):
    """LIME: a weighted linear fit of the outputs on which features are present.

    ``n_samples`` random subsets (each feature kept with probability 1/2), weighted
    by an exponential kernel on their cosine distance to the full prompt
    (``kernel_width``, Captum's default similarity). The default surrogate is
    weighted least squares with an intercept (numpy); pass any scikit-learn style
    regressor as ``interpretable_model`` (e.g. ``Lasso(alpha=0.01)``, Captum's default).
    Fitted per target token as well as for the whole target.

    Example:
        >>> result = pla.Lime(model).attribute(inp, n_samples=100, seed=0)  # doctest: +SKIP
    """

    name = "lime"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 50,
        "kernel_width": 1.0,
        "interpretable_model": None,
    }

    def masks(
        self, n_features: int, rng: np.random.Generator, n_samples: int = 50, **options: Any
    ) -> np.ndarray:
        check_positive_int("n_samples", n_samples)
        return rng.random((n_samples, n_features)) < 0.5

    def check_design(
        self, n_features: int, n_samples: int = 50, interpretable_model: Any = None, **_: Any
    ) -> None:
        if interpretable_model is None:  # a regularized surrogate copes with few samples
            warn_if_underdetermined(self, n_samples, n_features + 1)

    def solve(
        self,
        masks: np.ndarray,
        outputs: np.ndarray,
        kernel_width: float = 1.0,
        interpretable_model: Any = None,
        **options: Any,
    ) -> np.ndarray:
        present = masks.sum(axis=1)
        cosine = np.sqrt(present / masks.shape[1])  # cosine similarity to the all-ones vector
        weights = np.exp(-((1.0 - cosine) ** 2) / kernel_width**2)
        if interpretable_model is not None:
            return _fit_external(interpretable_model, masks, outputs, weights)
        design = np.column_stack([np.ones(len(masks)), masks.astype(float)])
        return _weighted_lstsq(design, outputs, weights)[1:].T

    def replicates(
        self, masks: np.ndarray, outputs: np.ndarray, rng: np.random.Generator, **options: Any
    ) -> np.ndarray:
        """Bootstrap over the sampled coalitions, refitting the surrogate each time."""
        return resampled_solves(
            lambda rows: self.solve(masks[rows], outputs[rows], **options), len(masks), rng
        )


class KernelShap(PerturbationMethod):
    """KernelSHAP: Shapley values from a kernel-weighted linear fit.

    Samples ``n_samples`` subsets with the Shapley kernel's size distribution and
    solves the least-squares problem under the efficiency constraint, so the
    attributions sum exactly to f(prompt) - f(all features at their baselines).
    Fitted per target token as well as for the whole target.

    Example:
        >>> result = pla.KernelShap(model).attribute(inp, n_samples=200, seed=0)  # doctest: +SKIP
    """

    name = "kernel-shap"
    defaults: ClassVar[dict[str, Any]] = {"n_samples": 25}

    def masks(
        self, n_features: int, rng: np.random.Generator, n_samples: int = 25, **options: Any
    ) -> np.ndarray:
        check_positive_int("n_samples", n_samples)
        full = np.ones((1, n_features), dtype=bool)
        empty = np.zeros((1, n_features), dtype=bool)
        if n_features == 1:
            return np.vstack([full, empty])
        sizes = np.arange(1, n_features)
        kernel = (n_features - 1) / (sizes * (n_features - sizes))
        drawn = rng.choice(sizes, size=n_samples, p=kernel / kernel.sum())
        samples = np.zeros((n_samples, n_features), dtype=bool)
        for row, size in enumerate(drawn):
            samples[row, rng.choice(n_features, size=size, replace=False)] = True
        return np.vstack([full, empty, samples])

    def check_design(self, n_features: int, n_samples: int = 25, **_: Any) -> None:
        warn_if_underdetermined(self, n_samples, n_features - 1)

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        full, empty = outputs[0], outputs[1]
        total = full - empty
        if masks.shape[1] == 1:
            return total[:, None]
        z = masks[2:].astype(float)
        # Efficiency: phi_last = total - sum(others). Substitute and fit the others.
        y = outputs[2:] - empty - np.outer(z[:, -1], total)
        design = z[:, :-1] - z[:, -1:]
        others = np.linalg.lstsq(design, y, rcond=None)[0]  # (n_features - 1, n_outputs)
        last = total - others.sum(axis=0)
        return np.vstack([others, last]).T

    def replicates(
        self, masks: np.ndarray, outputs: np.ndarray, rng: np.random.Generator, **options: Any
    ) -> np.ndarray:
        """Bootstrap over the sampled coalitions (the full and empty ones always kept:
        the efficiency constraint rests on them)."""
        return resampled_solves(
            lambda rows: self.solve(masks[rows], outputs[rows]), len(masks), rng, fixed=2
        )


def warn_if_underdetermined(method: Any, n_samples: int, n_unknowns: int) -> None:
    """Fewer samples than unknowns: the least-squares fit has many exact solutions and
    returns the smallest, which says more about the samples drawn than about the model."""
    if isinstance(n_samples, int) and 0 < n_samples < n_unknowns:
        warn(
            f"{type(method).__name__}: {n_samples} samples for {n_unknowns} unknowns leave the "
            "linear fit underdetermined, so the attributions mostly reflect which samples "
            "were drawn; use n_samples of a few times the number of features, or fewer, "
            "coarser features (e.g. sentences)"
        )


def _weighted_lstsq(design: np.ndarray, outputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    root = np.sqrt(weights)[:, None]
    return np.linalg.lstsq(design * root, outputs * root, rcond=None)[0]


def _fit_external(
    model: Any, masks: np.ndarray, outputs: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    from copy import deepcopy

    coefs = []
    for column in outputs.T:
        fitted = deepcopy(model)
        fitted.fit(masks.astype(float), column, sample_weight=weights)
        coefs.append(np.asarray(fitted.coef_, dtype=float).reshape(-1))
    return np.array(coefs)
