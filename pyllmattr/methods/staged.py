"""Attributions computed in stages (several engine calls, possibly on two models).

Hierarchical ablation, ContextCite and the proxy variants decide what to score next
from what they scored before, so they cannot build all their prompts up front as
:class:`~pyllmattr.methods.base.PerturbationMethod` does. These helpers give them the
same pieces: the encoded prompt and target, one engine call per stage (the
unperturbed prompt first, then the stage's perturbations), and one result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import chat as chat_prompts
from ..inputs.base import Encoding, InterpretableInput
from ..progress import check_progress, progress_callback
from ..results import AttributionResult
from .base import ATTR_TARGETS, build_result, empty_context, resolve_target, to_outputs

_COUNTS = ("n_decoded", "n_trie", "n_naive", "n_decode_calls", "n_waves", "n_padding")


@dataclass(repr=False)
class StagedResult(AttributionResult):
    """An :class:`AttributionResult` that also says how its values were computed.

    ``levels`` lists each stage: its ``level`` (a unit level or ``"features"``), the
    ``model`` that scored it (``"target"`` or ``"proxy"``), the ``units`` it scored
    and their ``seq_attr``. ``computed_by[i]`` names the model behind ``seq_attr[i]``,
    ``refined[i]`` is False where a feature kept the value of a coarser unit (or of the
    proxy) instead of being scored itself. ``fit`` holds a surrogate's held-out quality.

    Example:
        >>> result = pla.HierarchicalAblation(model).attribute(inp)  # doctest: +SKIP
        >>> [stage["level"] for stage in result.levels]  # doctest: +SKIP
        ['paragraph', 'sentence']
    """

    levels: list[dict[str, Any]] = field(default_factory=list)
    computed_by: list[str] = field(default_factory=list)
    refined: list[bool] = field(default_factory=list)
    fit: dict[str, Any] | None = None


@dataclass
class Job:
    """One attribution's encoded prompt and target on one model."""

    model: Any
    encoding: Encoding
    target_ids: list[int]
    attr_target: str
    progress: Any = None
    cancel: Any = None
    stats: dict[str, Any] = field(default_factory=dict)

    def score(self, masks: np.ndarray, rng: np.random.Generator, what: str) -> np.ndarray:
        """Outputs [whole target, token 1..T] of the unperturbed prompt (row 0) and of
        every mask (rows 1..), all in one engine call."""
        sequences = [self.encoding.reference_ids, *self.encoding.sequences(masks, rng)]
        sequences = [seq or empty_context(self.model) for seq in sequences]
        desc = f"{what}: {len(sequences)} prompts"
        with progress_callback(self.progress, desc) as report:
            scores, stats = self.model.score(
                sequences, self.target_ids, progress=report, cancel=self.cancel, return_stats=True
            )
        self._count(len(sequences), stats)
        if "reference" not in self.stats:
            self.stats["reference"] = scores[0]
        return to_outputs(scores, self.attr_target)

    def _count(self, n_sequences: int, stats: Any) -> None:
        calls = self.stats.setdefault("calls", [])
        calls.append({"n_evaluations": n_sequences, **dataclasses.asdict(stats)})


def start(
    method: Any,
    inp: InterpretableInput,
    target: Any,
    attr_target: str,
    gen_args: Mapping[str, Any] | None,
    chat: Any,
    progress: Any,
    cancel: Any,
) -> tuple[Job, dict[str, Any] | None]:
    """The target model's job, after checking the arguments every method takes."""
    if attr_target not in ATTR_TARGETS:
        raise ValueError(f"attr_target must be one of {ATTR_TARGETS}, got {attr_target!r}")
    check_progress(progress)
    if not isinstance(inp, InterpretableInput):
        raise ValueError(f"inp must be a pyllmattr input, got {type(inp).__name__}")
    settings = chat_prompts.chat_options(chat)
    encoding = chat_prompts.encode(inp, method.model, settings)
    target_ids = resolve_target(method.model, encoding.reference_ids, target, gen_args)
    job = Job(method.model, encoding, target_ids, attr_target, progress, cancel)
    return job, settings


def proxy_job(proxy: Any, inp: InterpretableInput, job: Job, chat: Any) -> Job:
    """The same input and target text on the proxy model, re-tokenized by it."""
    if not hasattr(proxy, "score") or not hasattr(proxy, "tokenize"):
        raise ValueError("proxy must be a model from pla.load_gguf or pla.load_torch")
    encoding = chat_prompts.encode(inp, proxy, chat)
    if encoding.n_features != job.encoding.n_features:
        raise ValueError(
            f"the input has {encoding.n_features} features on the proxy but "
            f"{job.encoding.n_features} on the target model; use an input of text units "
            "(TextTemplateInput, ContextInput), not of one model's tokens"
        )
    text = job.model.detokenize(job.target_ids, render_special=False)
    target_ids = proxy.tokenize(text, add_special=False)
    if not target_ids:
        raise ValueError("the target is empty on the proxy model's tokenizer")
    return Job(proxy, encoding, target_ids, job.attr_target, job.progress, job.cancel)


def leave_one_out(job: Job, groups: list[np.ndarray], rng: np.random.Generator, what: str):
    """f(prompt) - f(prompt without group g) for every group of features, one call.

    Returns (n_outputs, n_groups): row 0 the whole target, then each target token.
    """
    masks = np.ones((len(groups), job.encoding.n_features), dtype=bool)
    for row, features in enumerate(groups):
        masks[row, features] = False
    outputs = job.score(masks, rng, what)
    return (outputs[0] - outputs[1:]).T


def finish(
    method: Any,
    job: Job,
    values: np.ndarray,
    options: dict[str, Any],
    seed: int | None,
    chat: dict[str, Any] | None,
    levels: list[dict[str, Any]],
    computed_by: list[str],
    refined: list[bool],
    proxy: Job | None = None,
    fit: dict[str, Any] | None = None,
) -> StagedResult:
    """The result: ``values`` is (1 [+ T], n_features), row 0 the whole target."""
    stats = _stats(job, proxy)
    result = build_result(
        method,
        job.encoding,
        job.target_ids,
        job.stats["reference"],
        values[None],
        stats,
        job.attr_target,
        seed,
        options,
    )
    if chat is not None:
        result.settings["chat"] = chat or True
    if proxy is not None:
        result.settings["proxy"] = str(getattr(proxy.model, "path", None) or proxy.model)
    base = {f.name: getattr(result, f.name) for f in dataclasses.fields(AttributionResult)}
    return StagedResult(
        **base,
        levels=levels,
        computed_by=computed_by,
        refined=[bool(r) for r in refined],
        fit=fit,
    )


def _stats(job: Job, proxy: Job | None) -> dict[str, Any]:
    """Totals over the target model's calls; the proxy's under ``"proxy"``."""

    def total(calls: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: sum(c[k] for c in calls) for k in ("n_evaluations", *_COUNTS)}
        out["seconds"] = float(sum(c["seconds"] for c in calls))
        out["n_calls"] = len(calls)
        return out

    stats = total(job.stats["calls"])
    if proxy is not None and proxy.stats.get("calls"):
        stats["proxy"] = total(proxy.stats["calls"])
    return stats


def level_record(level: str, model: str, units: Any, values: np.ndarray) -> dict[str, Any]:
    return {
        "level": level,
        "model": model,
        "units": [int(u) for u in units],
        "seq_attr": [float(v) for v in values],
    }


def measure_noise_floor(result: AttributionResult, job: Job) -> None:
    """|f(prompt in the first call) - f(prompt alone)|, as PerturbationMethod reports it."""
    n = len(job.target_ids) + 1
    if getattr(job.model, "deterministic", False):
        result.noise_floor, result.token_noise_floor = 0.0, np.zeros(n - 1)
        return
    alone = job.model.score([job.encoding.reference_ids], job.target_ids, share_prefix=False)
    in_batch = job.stats["reference"][None]
    floor = np.abs(to_outputs(in_batch, job.attr_target) - to_outputs(alone, job.attr_target))[0]
    result.noise_floor, result.token_noise_floor = float(floor[0]), floor[1:]
