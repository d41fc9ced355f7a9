"""The shared attribution loop: perturb, score everything in one call, solve."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import chat as chat_prompts
from ..inputs.base import Encoding, InterpretableInput
from ..progress import check_progress, progress_callback
from ..results import AttributionResult

ATTR_TARGETS = ("log_prob", "prob")


def _one_at_a_time_per_model(attribute: Callable) -> Callable:
    """Holds the model's attribution lock for the whole attribution, so attributions
    from several threads run one after the other (the engine already serializes
    single calls; this keeps an attribution's calls together)."""

    @functools.wraps(attribute)
    def locked(self: PerturbationMethod, *args: Any, **kwargs: Any) -> AttributionResult:
        lock = getattr(self.model, "_attribution_lock", None)
        with lock if lock is not None else contextlib.nullcontext():
            return attribute(self, *args, **kwargs)

    return locked


GEN_ARGS = {"max_new_tokens", "temperature", "top_k", "top_p", "seed", "do_sample"}


class PerturbationMethod:
    """Base of the perturbation methods: subclasses choose masks and solve for attributions.

    A subclass defines ``name``, ``defaults`` (its options), ``masks(n_features, rng,
    **options)`` returning a boolean (n_evaluations, n_features) array (True: the
    feature keeps its value), and ``solve(masks, outputs, **options)`` turning the
    model outputs (n_evaluations, n_outputs) into attributions (n_outputs, n_features).
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "score") or not hasattr(model, "tokenize"):
            raise ValueError(
                f"{type(self).__name__} needs a model from pla.load_gguf or pla.load_torch"
            )
        self.model = model

    def masks(self, n_features: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def check_design(self, n_features: int, **options: Any) -> None:
        """Warn about option choices that make the result meaningless (before scoring)."""

    @_one_at_a_time_per_model
    def attribute(
        self,
        inp: InterpretableInput,
        target: str | Sequence[int] | None = None,
        attr_target: str = "log_prob",
        gen_args: Mapping[str, Any] | None = None,
        num_trials: int = 1,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        noise_floor: bool = True,
        chat: bool | Mapping[str, str] = False,
        **options: Any,
    ) -> AttributionResult:
        """Attribute the target's (log-)probability to the input's features.

        ``target=None`` generates it greedily from the unperturbed prompt (``gen_args``,
        default ``max_new_tokens=25``). ``num_trials > 1`` repeats the sampling
        (perturbations and sampled baselines) and reports the mean and the spread.
        All perturbed prompts of all trials are scored in one ``model.score`` call.
        ``noise_floor`` re-scores the unperturbed prompt alone to measure how much
        batch layout moves the numbers (``result.noise_floor``; exactly 0 without
        measuring on a model loaded with ``deterministic=True``).

        ``progress``: None shows a tqdm bar in terminals and notebooks for
        attributions longer than 2 s (when tqdm is installed), False none, True
        always; a callable ``progress(done, total)`` gets token counts (see
        :mod:`pyllmattr.progress`). ``chat=True`` puts the prompt inside the model's
        chat template as the user's message (``chat={"system": "..."}`` adds a system
        message); features cover only the user's text and the target is the
        assistant's reply (see :mod:`pyllmattr.chat`).

        Attributions on one model from several threads run one after the other.
        """
        options = self._check_options(options)
        if attr_target not in ATTR_TARGETS:
            raise ValueError(f"attr_target must be one of {ATTR_TARGETS}, got {attr_target!r}")
        check_positive_int("num_trials", num_trials)
        check_progress(progress)
        if not isinstance(inp, InterpretableInput):
            raise ValueError(
                "inp must be a pla.TextTokenInput or pla.TextTemplateInput, "
                f"got {type(inp).__name__}"
            )
        chat_settings = chat_prompts.chat_options(chat)
        encoding = chat_prompts.encode(inp, self.model, chat_settings)
        target_ids = resolve_target(self.model, encoding.reference_ids, target, gen_args)
        rng = np.random.default_rng(seed)
        self.check_design(encoding.n_features, **options)

        trial_masks = [self.masks(encoding.n_features, rng, **options) for _ in range(num_trials)]
        sequences = [encoding.reference_ids]
        for masks in trial_masks:
            sequences += encoding.sequences(masks, rng)
        sequences = [seq or empty_context(self.model) for seq in sequences]
        desc = f"{type(self).__name__}: {len(sequences)} prompts"
        with progress_callback(progress, desc) as report:
            scores, stats = self.model.score(
                sequences, target_ids, progress=report, cancel=cancel, return_stats=True
            )
        attributions = []
        row = 1
        for masks in trial_masks:
            outputs = to_outputs(scores[row : row + len(masks)], attr_target)
            attributions.append(self.solve(masks, outputs, **options))
            row += len(masks)
        stats = {"n_evaluations": len(sequences), **dataclasses.asdict(stats)}
        result = build_result(
            self,
            encoding,
            target_ids,
            scores[0],
            np.stack(attributions),
            stats,
            attr_target,
            seed,
            options,
        )
        if chat_settings is not None:
            result.settings["chat"] = chat_settings or True
        empty = np.flatnonzero(~trial_masks[0].any(axis=1))
        if empty.size:  # the method scored the all-baseline prompt: report it
            result.baseline_logprob = float(scores[1 + empty[0]].sum())
        if noise_floor:
            floor = self._noise_floor(encoding.reference_ids, target_ids, scores[0], attr_target)
            result.noise_floor, result.token_noise_floor = float(floor[0]), floor[1:]
        return result

    def _noise_floor(
        self, reference: list[int], target_ids: list[int], in_batch: np.ndarray, attr_target: str
    ) -> np.ndarray:
        """|f(reference in the batch) - f(reference alone)| for [whole target, each token]."""
        if getattr(self.model, "deterministic", False):
            return np.zeros(len(target_ids) + 1)
        alone = self.model.score([reference], target_ids, share_prefix=False)
        floor = to_outputs(in_batch[None], attr_target) - to_outputs(alone, attr_target)
        return np.abs(floor[0])

    # ------------------------------------------------------------ helpers
    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise ValueError(
                f"{type(self).__name__}.attribute got unknown option(s) {unknown}; "
                f"its options are: {known}"
            )
        return {**self.defaults, **options}


def build_result(
    method: Any,
    encoding: Encoding,
    target_ids: list[int],
    reference: np.ndarray,
    trial_values: np.ndarray,
    stats: dict[str, Any],
    attr_target: str,
    seed: int | None,
    options: dict[str, Any],
) -> AttributionResult:
    """The AttributionResult of any method: trial_values is (trials, 1 [+ targets], features).

    Row 0 of each trial is the sequence attribution; the per-target-token rows follow when
    the method computed them. reference holds the unperturbed prompt's target log-probs.
    """
    num_trials = len(trial_values)
    mean = trial_values.mean(axis=0)
    spread = trial_values.std(axis=0) if num_trials > 1 else None
    per_token = mean.shape[0] > 1
    to_str = method.model.token_to_str
    return AttributionResult(
        seq_attr=mean[0],
        token_attr=mean[1:] if per_token else None,
        input_features=encoding.labels,
        output_tokens=[to_str(t) for t in target_ids],
        target_logprob=float(reference.sum()),
        target_token_logprobs=reference,
        method=type(method).__name__,
        attr_target=attr_target,
        settings={
            "num_trials": int(num_trials),
            "seed": seed,
            **{k: v for k, v in options.items() if _jsonable(v)},
        },
        seq_attr_std=None if spread is None else spread[0],
        token_attr_std=None if spread is None or not per_token else spread[1:],
        prompt_segments=encoding.segments,
        feature_tokens=[[to_str(t) for t in ts] for ts in encoding.feature_tokens],
        target_ids=list(target_ids),
        stats=stats,
    )


def check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def to_outputs(logprobs: np.ndarray, attr_target: str) -> np.ndarray:
    """Columns [whole target, token 1, ..., token T] of log-probs or probabilities."""
    outputs = np.column_stack([logprobs.sum(axis=1), logprobs])
    return np.exp(outputs) if attr_target == "prob" else outputs


def empty_context(model: Any) -> list[int]:
    """The prompt of a perturbation that removed everything: the model's start token
    (BOS, or EOS for models that separate documents with it), so the model predicts
    the target from no context."""
    for token in (model.bos_token_id, model.eos_token_id):
        if token is not None:
            return [token]
    raise ValueError(
        "a perturbation removed the whole prompt and the model has no BOS/EOS "
        "token to stand for an empty context; keep part of the prompt fixed"
    )


def resolve_target(
    model: Any, prompt_ids: list[int], target: Any, gen_args: Mapping[str, Any] | None
) -> list[int]:
    if target is None:
        args = dict(gen_args or {})
        unknown = sorted(set(args) - GEN_ARGS)
        if unknown:
            raise ValueError(f"unknown gen_args {unknown}; supported: {sorted(GEN_ARGS)}")
        if args.pop("do_sample", None) is False:
            args["temperature"] = 0.0
        args.setdefault("max_new_tokens", 25)
        ids = model.generate(prompt_ids, **args)
        if not ids:
            raise ValueError("the model generated no target (it stopped at once); pass target=")
        return list(ids)
    if isinstance(target, str):
        ids = model.tokenize(target, add_special=False)
        if not ids:
            raise ValueError(f"the target {target!r} tokenizes to nothing; give a non-empty target")
        return ids
    ids = [int(t) for t in np.asarray(target).reshape(-1)]
    if not ids:
        raise ValueError("the target is empty; give at least one target token")
    return ids


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None)))
