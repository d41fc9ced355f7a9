"""ContextCite: random ablations of the context and a sparse linear surrogate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..inputs.base import InterpretableInput
from . import staged
from .base import _one_at_a_time_per_model, check_positive_int
from .lasso import lasso, spearman

OUTPUTS = ("logit_prob", "log_prob")


class ContextCite:
    """ContextCite (Cohen-Wang et al., NeurIPS 2024) on any scoring model.

    ``n_samples`` random masks keep each feature with probability ``keep_prob``; the
    unperturbed prompt and all masked prompts are scored in one engine call. A Lasso
    (``alpha``, standardized masks, as the ``context-cite`` package) is fitted to the
    whole target's output and to every target token's: its weights are ``seq_attr``
    and ``token_attr``. ``output="logit_prob"`` (ContextCite's choice) regresses
    log(p / (1 - p)); ``"log_prob"`` the log-probability. ``result.fit`` reports the
    surrogate's ``folds``-fold cross-validated R² and linear datamodeling score (LDS:
    Spearman between predicted and actual held-out outputs) for the whole target.

    ``proxy=`` (another model) scores the masks and fits the surrogate instead; the
    target model then re-scores the ``keep`` features it ranks highest by
    leave-one-out (in the same output units), the others keep the proxy's weights
    (``result.computed_by``).

    Example:
        >>> inp = pla.ContextInput(documents, "When was Harrowgate founded?")  # doctest: +SKIP
        >>> result = pla.ContextCite(model).attribute(inp, target=" 1742", seed=0)  # doctest: +SKIP
        >>> result.fit["lds"]  # doctest: +SKIP
    """

    name = "context-cite"
    defaults: dict[str, Any] = {
        "n_samples": 64,
        "keep_prob": 0.5,
        "alpha": 0.01,
        "output": "logit_prob",
        "proxy": None,
        "keep": 5,
        "folds": 4,
    }

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "score") or not hasattr(model, "tokenize"):
            raise ValueError("ContextCite needs a model from pla.load_gguf or pla.load_torch")
        self.model = model

    @_one_at_a_time_per_model
    def attribute(
        self,
        inp: InterpretableInput,
        target: str | Sequence[int] | None = None,
        n_samples: int = 64,
        keep_prob: float = 0.5,
        alpha: float = 0.01,
        output: str = "logit_prob",
        proxy: Any = None,
        keep: int = 5,
        folds: int = 4,
        gen_args: Mapping[str, Any] | None = None,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        noise_floor: bool = True,
        chat: bool | Mapping[str, str] = False,
    ) -> staged.StagedResult:
        """Fit the surrogate to ``n_samples`` random ablations (see the class docstring).
        Other arguments as :meth:`FeatureAblation.attribute`."""
        check_options(n_samples, keep_prob, alpha, output, keep, folds)
        job, chat_settings = staged.start(
            self, inp, target, "log_prob", gen_args, chat, progress, cancel
        )
        sampler = staged.proxy_job(proxy, inp, job, chat_settings) if proxy else job
        rng = np.random.default_rng(seed)
        masks = rng.random((n_samples, job.encoding.n_features)) < keep_prob
        outputs = surrogate_outputs(sampler.score(masks, rng, "ContextCite masks"), output)
        weights, fit = fit_surrogate(masks, outputs[1:], alpha, len(sampler.target_ids), folds)
        model_name = "proxy" if proxy else "target"
        records = [staged.level_record("features", model_name, range(len(weights[0])), weights[0])]
        computed_by = [model_name] * job.encoding.n_features
        refined = [proxy is None] * job.encoding.n_features
        if proxy is None:
            values = weights
        else:
            values = rescore(job, weights[0], keep, output, rng, records, computed_by, refined)
        options = {"n_samples": n_samples, "keep_prob": keep_prob, "alpha": alpha}
        options.update(output=output, folds=folds, **({"keep": keep} if proxy else {}))
        result = staged.finish(
            self,
            job,
            values,
            options,
            seed,
            chat_settings,
            records,
            computed_by,
            refined,
            proxy=sampler if proxy else None,
            fit={**fit, "model": model_name},
        )
        result.attr_target = output
        if noise_floor:
            staged.measure_noise_floor(result, job)
        return result


def check_options(
    n_samples: Any, keep_prob: Any, alpha: Any, output: Any, keep: Any, folds: Any
) -> None:
    check_positive_int("n_samples", n_samples)
    check_positive_int("keep", keep)
    check_positive_int("folds", folds)
    if not isinstance(keep_prob, (int, float)) or not 0 < keep_prob < 1:
        raise ValueError(
            f"keep_prob must be a probability strictly between 0 and 1, got {keep_prob!r}"
        )
    if not isinstance(alpha, (int, float)) or alpha < 0:
        raise ValueError(f"alpha (the Lasso penalty) must be a number >= 0, got {alpha!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if folds < 2 or n_samples < 2 * folds:
        raise ValueError(
            f"folds={folds} needs folds >= 2 and n_samples >= 2 * folds (got n_samples="
            f"{n_samples}); raise n_samples or lower folds"
        )


def surrogate_outputs(log_probs: np.ndarray, output: str) -> np.ndarray:
    """Columns [whole target, tokens] of log-probs turned into the regression's outputs."""
    if output == "log_prob":
        return log_probs
    clipped = np.minimum(log_probs, -1e-12)  # p = 1 has no finite logit
    return clipped - np.log(-np.expm1(clipped))


def fit_surrogate(
    masks: np.ndarray, outputs: np.ndarray, alpha: float, n_tokens: int, folds: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Lasso weights (1 + T, n_features) and the whole target's cross-validated fit."""
    # As the context-cite package: the whole target's output is fitted per token, so
    # one alpha suits targets of any length.
    scale = np.ones(outputs.shape[1])
    scale[0] = n_tokens
    weights, bias = lasso(masks, outputs / scale, alpha)
    weights, bias = weights * scale, bias * scale
    predicted = np.empty(len(masks))
    for held_out in np.array_split(np.arange(len(masks)), folds):
        train = np.setdiff1d(np.arange(len(masks)), held_out)
        w, b = lasso(masks[train], outputs[train, :1] / n_tokens, alpha)
        predicted[held_out] = (masks[held_out] @ w[:, 0] + b[0]) * n_tokens
    actual = outputs[:, 0]
    total = float(((actual - actual.mean()) ** 2).sum())
    r2 = 1.0 - float(((actual - predicted) ** 2).sum()) / total if total > 0 else float("nan")
    fit = {
        "r2": r2,
        "lds": spearman(predicted, actual),
        "folds": folds,
        "intercept": float(bias[0]),
    }
    return weights.T, fit


def rescore(
    job: staged.Job,
    proxy_weights: np.ndarray,
    keep: int,
    output: str,
    rng: np.random.Generator,
    records: list[dict[str, Any]],
    computed_by: list[str],
    refined: list[bool],
) -> np.ndarray:
    """Leave-one-out on the target model for the proxy's ``keep`` strongest features."""
    survivors = np.argsort(-proxy_weights, kind="stable")[:keep]
    masks = np.ones((len(survivors), job.encoding.n_features), dtype=bool)
    masks[np.arange(len(survivors)), survivors] = False
    scored = surrogate_outputs(job.score(masks, rng, "ContextCite rescoring"), output)
    drops = (scored[0] - scored[1:]).T
    values = np.zeros((1 + len(job.target_ids), job.encoding.n_features))
    values[0] = proxy_weights
    values[:, survivors] = drops
    records.append(staged.level_record("features", "target", survivors, drops[0]))
    for f in survivors:
        computed_by[f], refined[f] = "target", True
    return values
