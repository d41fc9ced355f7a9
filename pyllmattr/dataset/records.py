"""Dataset inputs: records (one JSON object per line) and Python objects, made into jobs.

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
is tokenized on the worker that runs it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..inputs import InterpretableInput, ProductBaselines, TextTemplateInput, TextTokenInput

FEATURE_KINDS = ("token", "word", "sentence", "paragraph")
PROMPT_KEYS = {"id", "prompt", "target", "contrast", "features", "baseline"}
TEMPLATE_KEYS = {"id", "template", "values", "baselines", "mask", "fixed", "target", "contrast"}


@dataclass(frozen=True)
class TokenSpec:
    """A token-feature input, built with the model of whichever worker runs it."""

    text: str
    baseline: int | str | None = 0
    skip_tokens: tuple[int | str, ...] | None = None

    def build(self, model: Any) -> TextTokenInput:
        skip = None if self.skip_tokens is None else list(self.skip_tokens)
        return TextTokenInput(self.text, model, baselines=self.baseline, skip_tokens=skip)


@dataclass
class Job:
    """One input of a dataset: its position, id, input (or TokenSpec), target and
    contrast (None: attribute log p(target) alone)."""

    index: int
    id: Any
    input: InterpretableInput | TokenSpec
    target: str | list[int] | None = None
    prefix: str = ""  # the unperturbed prompt's text, for keeping shared prefixes together
    contrast: str | list[int] | None = None

    def build(self, model: Any) -> InterpretableInput:
        return self.input.build(model) if isinstance(self.input, TokenSpec) else self.input


def parse_record(
    record: Any, *, features: str = "word", template: str | None = None
) -> tuple[InterpretableInput | TokenSpec, str | list[int] | None]:
    """The input and target of one record; ValueError says what is wrong with it.

    ``template`` is used by template records that have no "template" of their own.
    A record's "contrast" is read by :func:`record_contrast`.

    Example:
        >>> inp, target = parse_record({"prompt": "Dave lives in Palm Coast", "target": " FL"})
        >>> inp.n_features, target
        (5, ' FL')
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
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


def make_jobs(
    inputs: Sequence[Any],
    targets: Sequence[Any] | None = None,
    *,
    contrasts: Sequence[Any] | None = None,
    features: str = "word",
    ids: Sequence[Any] | None = None,
) -> list[Job]:
    """Jobs from Python inputs: InterpretableInputs, prompt strings or records.

    ``targets`` and ``contrasts`` (one per input) override the records' own; None
    entries generate the target / keep the record's contrast (or none).
    """
    if isinstance(inputs, (str, Mapping, InterpretableInput)):
        raise ValueError("inputs must be a list of inputs, prompts or records, not a single one")
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs is empty: give at least one input to attribute")
    targets = _one_each("targets", targets, len(inputs))
    contrasts = _one_each("contrasts", contrasts, len(inputs))
    check_features(features)
    jobs = []
    for i, item in enumerate(inputs):
        try:
            inp, own_target = _python_input(item, features)
            target = _target(own_target if targets[i] is None else targets[i])
            contrast = record_contrast(item) if contrasts[i] is None else contrasts[i]
            contrast = _target(contrast, "contrast")
        except ValueError as exc:
            raise ValueError(f"input {i}: {exc}") from exc
        job_id = ids[i] if ids is not None else i
        jobs.append(Job(i, job_id, inp, target, prefix_text(inp), contrast))
    return jobs


def _one_each(name: str, values: Sequence[Any] | None, n_inputs: int) -> list[Any]:
    if values is None:
        return [None] * n_inputs
    if isinstance(values, (str, Mapping)):
        raise ValueError(f"{name} must be a list with one entry per input")
    values = list(values)
    if len(values) != n_inputs:
        raise ValueError(f"{len(values)} {name} for {n_inputs} inputs; give one each")
    return values


def check_features(features: str) -> None:
    if features not in FEATURE_KINDS:
        raise ValueError(f"features must be one of {FEATURE_KINDS}, got {features!r}")


def prefix_text(inp: Any) -> str:
    """The unperturbed prompt's text (a template's literal text for callable templates)."""
    if isinstance(inp, TokenSpec):
        return inp.text
    if isinstance(inp, TextTokenInput):
        return inp.text
    if isinstance(inp, TextTemplateInput) and inp.parts is not None:
        base = inp.baselines
        fixed = base.first() if isinstance(base, ProductBaselines) else base
        return inp.render(np.ones(inp.n_features, dtype=bool), fixed)[0]
    return ""


def portable(inp: Any) -> Any:
    """The input in a form that can travel to another process (no model inside)."""
    if isinstance(inp, TextTokenInput):
        return TokenSpec(inp.text, inp.baseline_id, tuple(sorted(inp.skip_ids)))
    return inp


# ---------------------------------------------------------------- helpers


def _python_input(item: Any, features: str) -> tuple[Any, Any]:
    if isinstance(item, (InterpretableInput, TokenSpec)):
        return item, None
    if isinstance(item, str):
        return _prompt_input({"prompt": item}, features), None
    if isinstance(item, Mapping):
        return parse_record(item, features=features)
    raise ValueError(
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
    features = record.get("features", default_features)
    check_features(features)
    baseline = record.get("baseline")
    if features == "token":
        if baseline is not None and not isinstance(baseline, (int, str)):
            raise ValueError('"baseline" of token features must be a token id or a string')
        return TokenSpec(prompt, 0 if baseline is None else baseline)
    if baseline is not None and not isinstance(baseline, str):
        raise ValueError('"baseline" must be a string (what each absent unit becomes)')
    return TextTemplateInput.from_text(prompt, by=features, baselines=baseline)


def _template_input(record: Mapping, default_template: str | None) -> TextTemplateInput:
    template = record.get("template", default_template)
    if template is None:
        raise ValueError('a template record needs "template" (or the command\'s --template)')
    if not isinstance(template, str):
        raise ValueError('"template" must be a string with {name} or {} slots')
    if "values" not in record:
        raise ValueError('a template record needs "values" (the text of each slot)')
    fixed = record.get("fixed")
    if fixed is not None:
        template = _fill_fixed(template, fixed)
    return TextTemplateInput(
        template, record["values"], baselines=record.get("baselines"), mask=record.get("mask")
    )


def _fill_fixed(template: str, fixed: Any) -> str:
    """The template with the ``fixed`` slots written in as literal text."""
    if not isinstance(fixed, Mapping) or not all(isinstance(v, str) for v in fixed.values()):
        raise ValueError('"fixed" must be an object of slot name -> text')
    out = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is malformed ({exc})") from exc
    for literal, field, spec, conversion in parsed:
        out.append(_escape(literal))
        if field is None:
            continue
        if field in fixed:
            out.append(_escape(fixed[field]))
        else:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            out.append("{" + field + suffix + "}")
    unused = sorted(set(fixed) - {f for _, f, _, _ in parsed if f})
    if unused:
        raise ValueError(f'"fixed" slot(s) {unused} are not in the template')
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


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
    raise ValueError(f'"{name}" must be a string or a list of token ids')
