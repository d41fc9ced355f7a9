"""Dataset inputs: records (one JSON object per line) and Python objects, made into tasks.

A record is either a prompt::

    {"id": 1, "prompt": "Dave lives in Palm Coast, FL and is a", "target": " lawyer",
     "features": "word", "baseline": "_", "contrast": " doctor"}

or a template::

    {"id": 2, "template": "{a}\\n{b}\\nItaly:", "values": {"a": "France: Paris", ...},
     "baselines": {...}, "mask": {...}, "fixed": {...}, "target": " Rome"}

``features`` (token, word, sentence or paragraph), ``baseline``, ``baselines``,
``mask``, ``fixed``, ``target`` and ``contrast`` (attribute log p(target) -
log p(contrast), as ``attribute(..., contrast=)``) are optional. ``fixed`` fills template slots with
text that is not a feature (a query after few-shot examples), so results over many
queries share their features. Everything is checked without a model; a token input
is tokenized on the worker that runs it (a :class:`pyllmattr.frontend.PromptSpec`
until then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import WrongTypeError, naming
from ..frontend import PromptSpec, build_input, check_features, prompt_input, template_input
from ..inputs import InterpretableInput, ProductBaselines, TextTemplateInput, TextTokenInput

PROMPT_KEYS = {"id", "prompt", "target", "contrast", "features", "baseline"}
TEMPLATE_KEYS = {"id", "template", "values", "baselines", "mask", "fixed", "target", "contrast"}


@dataclass
class Task:
    """One input of a dataset to attribute: its position, id, input (or the spec of a
    token input), target and contrast (None: attribute log p(target) alone).

    Example:
        >>> task = make_tasks(["Paris is the capital of"], [" France"])[0]
        >>> task.index, task.target, task.prefix
        (0, ' France', 'Paris is the capital of')
    """

    index: int
    id: Any
    input: InterpretableInput | PromptSpec
    target: str | list[int] | None = None
    prefix: str = ""  # the unperturbed prompt's text, for keeping shared prefixes together
    contrast: str | list[int] | None = None

    def build(self, model: Any) -> InterpretableInput:
        return build_input(self.input, model)

    def portable(self) -> Task:
        """The task in a form that can travel to another process (no model inside)."""
        inp = self.input
        if isinstance(inp, TextTokenInput):
            return dataclasses.replace(self, input=PromptSpec.of(inp))
        return self


def parse_record(
    record: Any, *, features: str = "word", template: str | None = None
) -> tuple[InterpretableInput | PromptSpec, str | list[int] | None]:
    """The input and target of one record; ValueError says what is wrong with it.

    ``template`` is used by template records that have no "template" of their own.
    A record's "contrast" is read by :func:`record_contrast`.

    Example:
        >>> inp, target = parse_record({"prompt": "Dave lives in Palm Coast", "target": " FL"})
        >>> inp.n_features, target
        (5, ' FL')
    """
    if not isinstance(record, Mapping):
        raise WrongTypeError(f"expected a JSON object, got {type(record).__name__}")
    target = _target(record.get("target"))
    record_contrast(record)  # checked here too, so a bad line fails before any work
    if "prompt" in record:
        _check_keys(record, PROMPT_KEYS, "a prompt record")
        return _prompt_input(record, features), target
    if "template" in record or "values" in record:
        _check_keys(record, TEMPLATE_KEYS, "a template record")
        return _template_input(record, template), target
    raise ValueError(
        'a record needs "prompt" (text whose words/sentences/tokens are the features) or '
        f'"template" and "values" (slots are the features); this one has {sorted(record)}'
    )


def record_contrast(record: Any) -> str | list[int] | None:
    """A record's "contrast" (text or token ids), or None; ValueError if malformed.

    Example:
        >>> record_contrast({"prompt": "The sky is", "target": " blue", "contrast": " red"})
        ' red'
    """
    if not isinstance(record, Mapping):
        return None
    return _target(record.get("contrast"), "contrast")


def make_tasks(
    inputs: Sequence[Any],
    targets: Sequence[Any] | None = None,
    *,
    contrasts: Sequence[Any] | None = None,
    features: str = "word",
    ids: Sequence[Any] | None = None,
) -> list[Task]:
    """Tasks from Python inputs: InterpretableInputs, prompt strings or records.

    ``targets`` and ``contrasts`` (one per input) override the records' own; None
    entries generate the target / keep the record's contrast (or none).
    """
    if isinstance(inputs, (str, Mapping, InterpretableInput)):
        raise WrongTypeError(
            "inputs must be a list of inputs, prompts or records, not a single one"
        )
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs is empty: give at least one input to attribute")
    targets = _one_each("targets", targets, len(inputs))
    contrasts = _one_each("contrasts", contrasts, len(inputs))
    check_features(features)
    tasks = []
    for i, item in enumerate(inputs):
        try:
            inp, own_target = _python_input(item, features)
            target = _target(own_target if targets[i] is None else targets[i])
            contrast = record_contrast(item) if contrasts[i] is None else contrasts[i]
            contrast = _target(contrast, "contrast")
        except ValueError as exc:
            raise naming(f"input {i}: ", exc) from exc
        task_id = ids[i] if ids is not None else i
        tasks.append(Task(i, task_id, inp, target, prefix_text(inp), contrast))
    return tasks


def _one_each(name: str, values: Sequence[Any] | None, n_inputs: int) -> list[Any]:
    if values is None:
        return [None] * n_inputs
    if isinstance(values, (str, Mapping)):
        raise WrongTypeError(f"{name} must be a list with one entry per input")
    values = list(values)
    if len(values) != n_inputs:
        raise ValueError(f"{len(values)} {name} for {n_inputs} inputs; give one each")
    return values


def prefix_text(inp: Any) -> str:
    """The unperturbed prompt's text (a template's literal text for callable templates)."""
    if isinstance(inp, (PromptSpec, TextTokenInput)):
        return inp.text
    if isinstance(inp, TextTemplateInput) and inp.parts is not None:
        base = inp.baselines
        fixed = base.first() if isinstance(base, ProductBaselines) else base
        return inp.render(np.ones(inp.n_features, dtype=bool), fixed)[0]
    return ""


# ---------------------------------------------------------------- helpers


def _python_input(item: Any, features: str) -> tuple[Any, Any]:
    if isinstance(item, (InterpretableInput, PromptSpec)):
        return item, None
    if isinstance(item, str):
        return _prompt_input({"prompt": item}, features), None
    if isinstance(item, Mapping):
        return parse_record(item, features=features)
    raise WrongTypeError(
        f"expected a pla.TextTemplateInput/TextTokenInput, a prompt string or a record dict, "
        f"got {type(item).__name__}"
    )


def _check_keys(record: Mapping, known: set[str], what: str) -> None:
    unknown = sorted(set(record) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {what}; its keys are {sorted(known)}")


def _prompt_input(record: Mapping, default_features: str) -> Any:
    prompt = record["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError('"prompt" must be a non-empty string')
    return prompt_input(prompt, record.get("features", default_features), record.get("baseline"))


def _template_input(record: Mapping, default_template: str | None) -> TextTemplateInput:
    template = record.get("template", default_template)
    if template is None:
        raise ValueError('a template record needs "template" (or the command\'s --template)')
    if "values" not in record:
        raise ValueError('a template record needs "values" (the text of each slot)')
    return template_input(
        template,
        record["values"],
        baselines=record.get("baselines"),
        mask=record.get("mask"),
        fixed=record.get("fixed"),
    )


def _target(target: Any, name: str = "target") -> str | list[int] | None:
    """A target or contrast: text or token ids (None: none given)."""
    if target is None:
        return None
    if isinstance(target, str):
        if not target:
            what = "the continuation to explain" if name == "target" else "the alternative"
            raise ValueError(f'"{name}" is empty; give {what}, or leave it out')
        return target
    if isinstance(target, Sequence) and all(
        isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in target
    ):
        if not target:
            raise ValueError(f'"{name}" is an empty list of token ids')
        return [int(t) for t in target]
    raise WrongTypeError(f'"{name}" must be a string or a list of token ids')
