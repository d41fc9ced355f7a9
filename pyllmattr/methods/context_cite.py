"""ContextCite: random ablations of the context and a sparse linear surrogate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from ..objectives import LogProb, Objective
from ..pipeline import AttributionMethod, Evaluation, Job, Settings
from ..pipeline.jobs import naming_input
from . import staged
from .lasso import lasso, spearman
from .uncertainty import bootstrap_rng, resampled_solves, uncertainty_fields

OUTPUTS = ("logit_prob", "attr_target")
# Bootstrap refits of the Lasso for the standard errors.
N_BOOTSTRAP = 50


class ContextCite(AttributionMethod):
    """ContextCite (Cohen-Wang et al., NeurIPS 2024) on any scoring model.

    ``n_samples`` random masks keep each feature with probability ``keep_prob``; the
    unperturbed prompt and all masked prompts (of every input of a batch) are scored
    in one engine call. A Lasso (``alpha``, standardized masks, as the
    ``context-cite`` package) is fitted to the whole target's output and to every
    target token's: its weights are ``seq_attr`` and ``token_attr``.
    ``output="logit_prob"`` (ContextCite's choice, ``result.attr_target ==
    "logit_prob"``) regresses log(p / (1 - p)) of the target's probability;
    ``"attr_target"`` regresses what ``attr_target=`` / ``contrast=`` define (the
    log-probability by default, or log p(target) - log p(contrast)). ``result.fit``
    reports the surrogate's ``folds``-fold cross-validated R² and linear datamodeling
    score (LDS: Spearman between predicted and actual held-out outputs) for the whole
    target.

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
    context_method = True
    proxy_options = frozenset({"keep"})
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 64,
        "keep_prob": 0.5,
        "alpha": 0.01,
        "output": "logit_prob",
        "proxy": None,
        "keep": 5,
        "folds": 4,
    }

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        check_options(**{k: v for k, v in options.items() if k != "proxy"})
        if options["proxy"] is not None:
            staged.check_proxy(options["proxy"], self.model)
        return options

    def _settings(self, batch: bool, **kwargs: Any) -> Settings:
        settings = super()._settings(batch, **kwargs)
        if settings.options["output"] == "logit_prob":
            if not (settings.attr_target == "log_prob" or type(settings.attr_target) is LogProb):
                raise ValueError(
                    "ContextCite's output='logit_prob' regresses the logit of the target's "
                    f"probability, not attr_target={settings.attr_target!r}: pass "
                    "output='attr_target' to regress attr_target"
                )
            settings.attr_target = LogitProb()
        return settings

    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        opts = settings.options
        if settings.num_trials != 1:
            raise ValueError("ContextCite: num_trials must be 1 (raise n_samples instead)")
        for job in jobs:
            if opts["output"] == "logit_prob" and not isinstance(job.objective, LogitProb):
                with naming_input(job.index, settings.batch):
                    raise ValueError(
                        "ContextCite's output='logit_prob' is of the target alone; with "
                        "contrast= pass output='attr_target' (it regresses log p(target) - "
                        "log p(contrast))"
                    )
        proxy = opts["proxy"]
        target = staged.Stages(self.model, settings, staged.Role.target)
        cheap = staged.Stages(proxy, settings, staged.Role.proxy) if proxy is not None else None
        samplers = staged.proxy_jobs(proxy, self.model, jobs, settings) if proxy else jobs
        rngs = [settings.rng() for _ in jobs]
        masks = [rng.random((opts["n_samples"], job.encoding.n_features)) < opts["keep_prob"]
                 for job, rng in zip(jobs, rngs, strict=True)]  # fmt: skip
        scored = (cheap or target).score(samplers, masks, rngs, "ContextCite masks")
        fits = [
            fit_surrogate(m, s.outputs[1:], opts["alpha"], len(sj.target_ids), opts["folds"])
            for m, s, sj in zip(masks, scored, samplers, strict=True)
        ]
        if proxy is None:
            return [
                surrogate_evaluation(
                    w, fit, s.reference, target, opts["n_samples"],
                    surrogate_uncertainty(m, s.outputs[1:], w, opts["alpha"], settings.seed),
                )
                for (w, fit), s, m in zip(fits, scored, masks, strict=True)
            ]  # fmt: skip
        weights = [w[0] for w, _ in fits]
        return rescore(jobs, weights, [f for _, f in fits], opts, rngs, (target, cheap))


class LogitProb(Objective):
    """log(p / (1 - p)) of the whole target's probability and of each token's
    (ContextCite's regression output; numpy only, for perturbation methods).

    Example:
        >>> LogitProb().outputs([np.log([[0.5]])]).round(3).tolist()
        [[0.0, 0.0]]
    """

    attr_target: ClassVar[str] = "logit_prob"

    def columns(self, scored: Sequence[Any], exp: Callable[[Any], Any]) -> list[Any]:
        logprobs = np.asarray(scored[0])
        columns = [logprobs.sum(axis=1), *(logprobs[:, t] for t in range(logprobs.shape[1]))]
        return [logit(column) for column in columns]

    def describe(self) -> str:
        return "logit p(target)"


def logit(log_p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) from log p, finite where p rounds to 1."""
    clipped = np.minimum(log_p, -1e-12)
    return clipped - np.log(-np.expm1(clipped))


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


def fit_surrogate(
    masks: np.ndarray, outputs: np.ndarray, alpha: float, n_tokens: int, folds: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Lasso weights (1 + T, n_features) and the whole target's cross-validated fit."""
    weights, bias = surrogate_weights(masks, outputs, alpha, n_tokens)
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
    return weights, fit


def surrogate_weights(
    masks: np.ndarray, outputs: np.ndarray, alpha: float, n_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """The Lasso's weights (1 + T, n_features) and intercepts (1 + T,)."""
    # As the context-cite package: the whole target's output is fitted per token, so
    # one alpha suits targets of any length.
    scale = np.ones(outputs.shape[1])
    scale[0] = n_tokens
    weights, bias = lasso(masks, outputs / scale, alpha)
    return (weights * scale).T, bias * scale


def surrogate_uncertainty(
    masks: np.ndarray, outputs: np.ndarray, weights: np.ndarray, alpha: float, seed: Any
) -> dict[str, Any]:
    """Standard errors and top-k order probabilities from refitting the Lasso on
    :data:`N_BOOTSTRAP` resamples of the masks (fewer than the other methods': each
    refit is a Lasso, tens of milliseconds)."""
    n_tokens = weights.shape[0] - 1
    replicates = resampled_solves(
        lambda rows: surrogate_weights(masks[rows], outputs[rows], alpha, n_tokens)[0],
        len(masks),
        bootstrap_rng(seed),
        n=N_BOOTSTRAP,
    )
    return uncertainty_fields(replicates, weights)


def surrogate_evaluation(
    weights: np.ndarray,
    fit: dict[str, Any],
    reference: list[np.ndarray],
    target: staged.Stages,
    n_samples: int,
    uncertainty: dict[str, Any],
) -> Evaluation:
    """The target model's own surrogate: its weights are the attributions;
    ``uncertainty`` their standard errors (:func:`surrogate_uncertainty`)."""
    n = weights.shape[1]
    record = {
        "levels": [staged.level_record("features", staged.Role.target, range(n), weights[0])],
        "computed_by": [staged.Role.target.value] * n,
        "refined": [True] * n,
        "fit": {**fit, "model": staged.Role.target.value},
        **uncertainty,
    }
    return staged.evaluation(weights, reference, (1 + n_samples, 0), (target, None), record)


def rescore(
    jobs: list[Job],
    proxy_weights: list[np.ndarray],
    fits: list[dict[str, Any]],
    opts: dict[str, Any],
    rngs: list[np.random.Generator],
    stages: tuple[staged.Stages, staged.Stages | None],
) -> list[Evaluation]:
    """Leave-one-out on the target model for the proxy's ``keep`` strongest features."""
    survivors = [np.argsort(-w, kind="stable")[: opts["keep"]] for w in proxy_weights]
    groups = [[np.array([f]) for f in s] for s in survivors]
    target = stages[0]
    drops, scored, _ = target.ablate(jobs, groups, rngs, "ContextCite rescoring")
    return [
        staged.rescored_evaluation(
            job, w, keep, drop, s, (1 + len(keep), 1 + opts["n_samples"]), stages,
            {"fit": {**fit, "model": staged.Role.proxy.value}},
        )
        for job, w, fit, keep, drop, s in zip(
            jobs, proxy_weights, fits, survivors, drops, scored, strict=True
        )
    ]  # fmt: skip
