"""Steps 1-3 of the pipeline: check the options, encode every input, resolve its targets.

A :class:`Job` is one input ready to evaluate: its encoding (inside the chat frame
when ``chat=`` is given), its target ids and its bound objective (which continuations
to score, and how their log-probs become outputs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import chat as chat_prompts
from .._checks import WrongTypeError, check_positive_int, naming
from ..inputs.base import Encoding, InterpretableInput
from ..objectives import ATTR_TARGETS, Objective, objective_for
from ..progress import check_progress

GEN_ARGS = {"max_new_tokens", "temperature", "top_k", "top_p", "seed", "do_sample"}


@dataclass
class Settings:
    """The options every method shares, checked once before any work."""

    attr_target: Any = "log_prob"
    gen_args: Mapping[str, Any] | None = None
    num_trials: int = 1
    seed: int | None = None
    progress: Any = None
    cancel: Any = None
    noise_floor: bool = True
    chat: dict[str, Any] | None = None  # normalized by chat.chat_options
    options: dict[str, Any] = field(default_factory=dict)  # the method's own, with defaults
    batch: bool = False  # attribute_batch: errors name the input's index

    def check(self) -> None:
        if not isinstance(self.attr_target, Objective) and self.attr_target not in ATTR_TARGETS:
            raise ValueError(
                f"attr_target must be one of {ATTR_TARGETS} or a pyllmattr.objectives."
                f"Objective, got {self.attr_target!r}"
            )
        check_positive_int("num_trials", self.num_trials)
        check_progress(self.progress)

    def rng(self) -> np.random.Generator:
        """A new generator for one input, seeded with ``seed``: every input of a batch
        samples its perturbations and baselines as it would alone."""
        return np.random.default_rng(self.seed)


@dataclass
class Job:
    """One input of an attribution, encoded, with its target and objective resolved."""

    index: int
    encoding: Encoding
    target_ids: list[int]
    objective: Objective
    frame: chat_prompts.ChatFrame | None  # the chat frame around the prompt, if any
    source: InterpretableInput  # the input as given (staged methods re-encode it)

    @property
    def scored_targets(self) -> list[list[int]]:
        """The continuations scored after every prompt of this job, the target first."""
        return self.objective.targets(self.target_ids)

    def prompt_ids(self, user_ids: list[int]) -> list[int]:
        """A whole prompt from the user's part of it (the chat frame around it, if any)."""
        return self.frame.wrap_ids(user_ids) if self.frame is not None else list(user_ids)

    def tokenize_prompt(self, model: Any, text: str) -> list[int]:
        """Tokens of a prompt text as this job's prompt is tokenized (chat frame included)."""
        if self.frame is None:
            return model.tokenize(text)
        return self.frame.wrap_ids(model.tokenize(text, add_special=False))


@contextmanager
def naming_input(index: int, batch: bool) -> Iterator[None]:
    """In a batch, a ValueError about one input says which input it was."""
    try:
        yield
    except ValueError as exc:
        if not batch:
            raise
        raise naming(f"inputs[{index}]: ", exc) from exc


def prepare(
    model: Any,
    inputs: Sequence[Any],
    targets: Sequence[Any],
    contrasts: Sequence[Any],
    settings: Settings,
) -> list[Job]:
    """Encode every input and resolve its target (generated when None) and objective."""
    frame = None
    if settings.chat is not None:
        frame = chat_prompts.chat_frame(
            model, settings.chat.get("system"), settings.chat.get("template")
        )
    jobs = []
    for i, (inp, target, contrast) in enumerate(zip(inputs, targets, contrasts, strict=True)):
        with naming_input(i, settings.batch):
            if not isinstance(inp, InterpretableInput):
                raise WrongTypeError(
                    "inp must be a pla.TextTokenInput or pla.TextTemplateInput, "
                    f"got {type(inp).__name__}"
                )
            objective = objective_for(settings.attr_target, contrast, model)
            encoding = chat_prompts.encode_in_frame(inp, model, frame)
            target_ids = resolve_target(model, encoding.reference_ids, target, settings.gen_args)
            job = Job(i, encoding, target_ids, objective, frame, inp)
            check_context(model, job)
        jobs.append(job)
    return jobs


def check_context(model: Any, job: Job) -> None:
    """The unperturbed prompt and its longest continuation must fit the model's context."""
    n_tokens = len(job.encoding.reference_ids) + max(map(len, job.scored_targets))
    if n_tokens > model.n_ctx:
        raise ValueError(
            f"the prompt and target ({n_tokens} tokens) exceed the model's context of "
            f"{model.n_ctx} tokens; shorten the prompt or the target, or load the model "
            "with a larger n_ctx"
        )


def resolve_target(
    model: Any, prompt_ids: list[int], target: Any, gen_args: Mapping[str, Any] | None
) -> list[int]:
    """Target ids from a text or ids, or generated greedily after the prompt when None."""
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


def per_input(name: str, values: Any, n_inputs: int) -> list[Any]:
    """``targets=`` / ``contrasts=`` of attribute_batch as one entry per input."""
    if values is None:
        return [None] * n_inputs
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(
            f"{name} must be a list with one entry per input (None: "
            f"{'generate each target' if name == 'targets' else 'no contrast'})"
        )
    if len(values) != n_inputs:
        raise ValueError(f"{name} has {len(values)} entries for {n_inputs} inputs; give one each")
    return list(values)
