"""The last step of the pipeline: one AttributionResult per job, built once from all
that the evaluation measured (no field is patched afterwards)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results import AttributionResult
from .jobs import Job, Settings
from .origin import attach_origin


@dataclass
class Evaluation:
    """What a method's evaluate step measured for one job.

    ``values`` is (trials, 1 [+ T], features): row 0 of each trial the whole target's
    attribution, the per-target-token rows following when the method computed them.
    ``reference[k]`` holds continuation k's token log-probs after the unperturbed
    prompt, as evaluated (``job.scored_targets`` order: the target first).
    """

    values: np.ndarray
    reference: list[np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)
    baseline_logprob: float | None = None
    completeness_gap: np.ndarray | None = None  # (1 [+ T],), mean over trials
    # (1 [+ T], features): the spread a method measured itself (GradientShap: across
    # its samples); None: the spread across trials.
    spread: np.ndarray | None = None
    # Staged methods return a subclass of AttributionResult; extras are its own fields.
    result_type: type[AttributionResult] = AttributionResult
    extras: dict[str, Any] = field(default_factory=dict)


def build_result(
    method: Any,
    job: Job,
    evaluation: Evaluation,
    floor: np.ndarray | None,
    settings: Settings,
) -> AttributionResult:
    """The AttributionResult of any method for one job."""
    values = evaluation.values
    mean = values.mean(axis=0)
    spread = evaluation.spread
    if spread is None and len(values) > 1:
        spread = values.std(axis=0)
    per_token = mean.shape[0] > 1
    to_str = method.model.token_to_str
    target_lp = np.asarray(evaluation.reference[0], dtype=float)
    contrast = _contrast_fields(job, evaluation, to_str)
    gap = evaluation.completeness_gap
    result = evaluation.result_type(
        seq_attr=mean[0],
        token_attr=mean[1:] if per_token else None,
        input_features=job.encoding.labels,
        output_tokens=[to_str(t) for t in job.target_ids],
        target_logprob=float(target_lp.sum()),
        target_token_logprobs=target_lp,
        method=type(method).__name__,
        attr_target=job.objective.attr_target,
        settings=_settings(settings, len(values)),
        seq_attr_std=None if spread is None else spread[0],
        token_attr_std=None if spread is None or not per_token else spread[1:],
        prompt_segments=job.encoding.segments,
        feature_tokens=[[to_str(t) for t in ts] for ts in job.encoding.feature_tokens],
        target_ids=list(job.target_ids),
        baseline_logprob=evaluation.baseline_logprob,
        noise_floor=None if floor is None else float(floor[0]),
        token_noise_floor=None if floor is None else floor[1:],
        stats=evaluation.stats,
        completeness_gap=None if gap is None or not per_token else gap[1:],
        seq_completeness_gap=None if gap is None else float(gap[0]),
        token_attr_of=job.objective.token_attr_of(job.target_ids),
        quantity=job.objective.describe(),
        **contrast,
        **evaluation.extras,
    )
    return attach_origin(result, job, settings, method)  # for pla.evaluate


def _contrast_fields(job: Job, evaluation: Evaluation, to_str: Any) -> dict[str, Any]:
    if len(job.scored_targets) < 2:
        return {}
    ids = job.scored_targets[1]
    logprobs = np.asarray(evaluation.reference[1], dtype=float)
    return {
        "contrast_tokens": [to_str(t) for t in ids],
        "contrast_ids": list(ids),
        "contrast_logprob": float(logprobs.sum()),
        "contrast_token_logprobs": logprobs,
    }


def _settings(settings: Settings, num_trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {"num_trials": int(num_trials), "seed": settings.seed}
    for key, value in settings.options.items():
        if _jsonable(value):
            out[key] = value
        elif isinstance(value, tuple) and all(map(_jsonable, value)):
            out[key] = list(value)
        elif getattr(value, "path", None) is not None:  # a model option (proxy=): its file
            out[key] = str(value.path)
    if settings.chat is not None:
        out["chat"] = settings.chat or True
    return out


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None)))
