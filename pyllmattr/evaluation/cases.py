"""A result to evaluate, bound to the evaluating model: its input encoded again, its
target and objective, and how a removed feature looks (as in the method that made it).

Perturbation results remove features through the input's own masking path
(``Encoding.render``: its baselines, a ``ProductBaselines`` sampled per prompt).
Gradient results remove them as their path started: the input's baselines
(``baselines=None``), a token id at every token of the feature, or a whole baseline
prompt of the prompt's length, position by position; zero embeddings have no tokens,
so a ``baselines="zero"`` result cannot be evaluated in prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import chat as chat_prompts
from ..methods import GRADIENT_METHODS
from ..methods.context_cite import LogitProb
from ..methods.gradient_shap import baseline_distribution
from ..models.interface import token_list
from ..objectives import Contrast, LogProb, Objective, Prob
from ..pipeline import Job
from ..pipeline.jobs import check_context
from ..pipeline.origin import Origin, origin_of
from ..pipeline.scoring import empty_context
from ..results import AttributionResult

Render = Callable[[np.ndarray, np.random.Generator], list[int]]
GRADIENT_CLASSES = {cls.__name__ for cls in GRADIENT_METHODS.values()}


@dataclass
class Case:
    """One result ready to evaluate on one model.

    ``key`` is equal for results whose prompts are the same (same input, target,
    objective and way of removing features): they share their random orders and
    ablations, and each distinct prompt is scored once.
    """

    result: AttributionResult
    job: Job
    render: Render
    key: tuple[Any, ...]

    def prompt(self, model: Any, mask: np.ndarray, rng: np.random.Generator) -> list[int]:
        """The prompt with the features of ``mask`` (True: kept) in place."""
        return self.render(mask, rng) or empty_context(model)


def case_for(result: Any, model: Any, inp: Any) -> Case:
    """``result`` bound to ``model`` (ValueError when it cannot be evaluated there)."""
    if not isinstance(result, AttributionResult):
        raise ValueError(
            f"evaluate takes AttributionResults (from a method's attribute), got "
            f"{type(result).__name__}"
        )
    origin = _origin(result, inp)
    frame = None
    if origin.chat is not None:
        frame = chat_prompts.chat_frame(
            model, origin.chat.get("system"), origin.chat.get("template")
        )
    encoding = chat_prompts.encode_in_frame(origin.source, model, frame)
    _check_same_input(result, encoding)
    if origin.reference_ids is not None and tuple(encoding.reference_ids) != origin.reference_ids:
        raise ValueError(
            "this model tokenizes the result's prompt differently from the model that "
            "computed it; evaluate on a model with the same tokenizer (e.g. the same GGUF "
            "through pla.load_gguf or pla.load_torch_gguf)"
        )
    target_ids = token_list(result.target_ids, model.n_vocab, "the result's target")
    job = Job(0, encoding, target_ids, _bound(origin.objective, model), frame, origin.source)
    check_context(model, job)
    render, how = _removal(model, job, origin)
    key = (id(origin.source), repr(origin.chat), tuple(map(tuple, job.scored_targets)),
           type(job.objective).__name__, how)  # fmt: skip
    return Case(result, job, render, key)


def _origin(result: AttributionResult, inp: Any) -> Origin:
    """The result's origin; with ``inp`` given, rebuilt around it from the fields."""
    attached = origin_of(result)
    if inp is None:
        if attached is None:
            raise ValueError(
                "this result does not carry its input (it was loaded from JSON, pickled or "
                "copied): pass inp=, the input it was computed on"
            )
        return attached
    if attached is not None:
        return Origin(inp, attached.objective, attached.chat, attached.options,
                      attached.gradient, attached.reference_ids)  # fmt: skip
    chat = result.settings.get("chat")
    gradient = result.method in GRADIENT_CLASSES
    options = {"baselines": result.settings.get("baselines")} if gradient else {}
    return Origin(inp, _objective_from_fields(result), None if not chat else
                  chat_prompts.chat_options(chat), options, gradient)  # fmt: skip


def _objective_from_fields(result: AttributionResult) -> Objective:
    if result.contrast_ids is not None:
        return Contrast(tuple(result.contrast_ids))
    named: dict[str, Callable[[], Objective]] = {
        "log_prob": LogProb,
        "prob": Prob,
        "logit_prob": LogitProb,
    }
    if result.attr_target not in named:
        raise ValueError(
            f"the result attributes a custom objective ({result.attr_target!r}) that its "
            "fields do not describe; evaluate the result object attribute returned (it "
            "carries its objective)"
        )
    return named[result.attr_target]()


def _bound(objective: Objective, model: Any) -> Objective:
    """The objective on the evaluating model (a contrast's ids checked against its vocabulary)."""
    if isinstance(objective, Contrast):
        return Contrast(tuple(objective.contrast_ids or objective.contrast)).bind(model)
    return objective.bind(model)


def _check_same_input(result: AttributionResult, encoding: Any) -> None:
    if list(encoding.labels) != list(result.input_features):
        raise ValueError(
            f"the result was computed on another input: its {len(result.input_features)} "
            f"features {_preview(result.input_features)} differ from this input's "
            f"{encoding.n_features} {_preview(encoding.labels)}; pass the input the result "
            "was computed on"
        )


def _preview(labels: list[str], n: int = 4) -> str:
    shown = ", ".join(repr(label) for label in labels[:n])
    return f"[{shown}{', ...' if len(labels) > n else ''}]"


# ---------------------------------------------------------------- removing features


def _removal(model: Any, job: Job, origin: Origin) -> tuple[Render, Any]:
    """How a removed feature looks, and a key saying so (for sharing prompts)."""
    if not origin.gradient:
        return job.encoding.render, "input"
    baselines = origin.options.get("baselines")
    choices = [_token_baseline(model, job, b) for b in baseline_distribution(baselines)]
    if len(choices) == 1:
        return choices[0], ("gradient", repr(baselines))

    def render(mask: np.ndarray, rng: np.random.Generator) -> list[int]:
        # GradientShap's distribution of baselines: one drawn per prompt, as per sample.
        return choices[int(rng.integers(len(choices)))](mask, rng)

    return render, ("gradient", repr(baselines))


def _token_baseline(model: Any, job: Job, baseline: Any) -> Render:
    """A gradient method's baseline as tokens: None (the input's own), a token id, a
    text or a list of ids (a prompt of the prompt's length)."""
    encoding = job.encoding
    if baseline is None:
        return encoding.render
    if isinstance(baseline, str) and baseline == "zero":
        raise ValueError(
            "this result's path started at zero embeddings (baselines='zero'), which no "
            "tokens can stand for, so its features cannot be removed in a prompt; attribute "
            "with baselines=<token id> or None (the input's baselines) to evaluate it"
        )
    reference = np.asarray(encoding.reference_ids)
    if isinstance(baseline, (int, np.integer)) and not isinstance(baseline, bool):
        base = np.full(len(reference), token_list([baseline], model.n_vocab, "baselines")[0])
    elif isinstance(baseline, str):
        base = np.asarray(job.tokenize_prompt(model, baseline))
    else:
        base = np.asarray(job.prompt_ids(token_list(baseline, model.n_vocab, "baselines")))
    if len(base) != len(reference):
        raise ValueError(
            f"the result's baseline prompt has {len(base)} tokens on this model, the prompt "
            f"{len(reference)}; evaluate on the model that computed it (or one with the "
            "same tokenizer)"
        )
    owners = _owners(encoding.feature_positions, len(reference))

    def render(mask: np.ndarray, rng: np.random.Generator) -> list[int]:
        # A token shared by two features takes its baseline when either is removed.
        removed = np.array([any(not mask[f] for f in fs) for fs in owners])
        return np.where(removed, base, reference).tolist()

    return render


def _owners(positions: list[list[int]] | None, n_tokens: int) -> list[list[int]]:
    """For every prompt token, the features it belongs to."""
    owners: list[list[int]] = [[] for _ in range(n_tokens)]
    for feature, tokens in enumerate(positions or []):
        for p in tokens:
            owners[p].append(feature)
    return owners
