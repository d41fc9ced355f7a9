"""Template features: slots of a prompt template, grouped by an optional mask."""

from __future__ import annotations

import string
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from .._checks import WrongTypeError
from .._text import check_text
from .base import Encoding, InterpretableInput, Segment
from .baselines import ProductBaselines
from .split import units_with_leading_space

Key = Hashable  # a slot: its position (list values) or its name (dict values)


class TextTemplateInput(InterpretableInput):
    """A prompt template whose slots are features; absent slots take their baseline.

    ``template`` has ``{}`` or ``{name}`` slots (``{{`` and ``}}`` are literal
    braces) or is a callable that renders the values. ``values`` is a list (for
    ``{}``) or a dict (for ``{name}``). ``baselines`` (default ``""``, removal)
    is a list or dict of strings, or a :class:`ProductBaselines` sampled for
    every perturbed prompt. ``mask`` (list or dict of ints) groups slots into one
    feature, e.g. a city with its state.

    Example:
        >>> inp = pla.TextTemplateInput(
        ...     "{name} lives in {city}, {state} and is a {job}.",
        ...     values={"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"},
        ...     baselines={"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"},
        ...     mask={"name": 0, "city": 1, "state": 1, "job": 2},
        ... )
        >>> inp.n_features
        3
    """

    def __init__(
        self,
        template: str | Callable[..., str],
        values: Sequence[str] | Mapping[str, str],
        baselines: Sequence[str] | Mapping[str, str] | ProductBaselines | None = None,
        mask: Sequence[int] | Mapping[str, int] | None = None,
    ) -> None:
        self.keys, self.values = _normalize_values(values)
        self.template = template
        self.parts = None if callable(template) else _parse_template(template, self.keys)
        self.baselines = _normalize_baselines(baselines, self.keys)
        self.feature_of_slot, self.n_features = _normalize_mask(mask, self.keys)

    @classmethod
    def from_text(
        cls, text: str, by: str = "word", baselines: str | None = None
    ) -> TextTemplateInput:
        """Features from plain text: its ``"word"``, ``"clause"``, ``"sentence"``,
        ``"paragraph"`` or ``"character"`` units, in any script.

        The unperturbed prompt renders back to ``text`` exactly. An absent unit is
        removed with the whitespace before it, or replaced by ``baselines`` (one
        string for all units, keeping the whitespace). Sentences end at ``. ! ?``
        before a space and at once after ``。！？``, ``।`` and other scripts' full stops;
        clauses also at ``, ; :`` before a space and at once after ``，；：``.
        Words are the runs between spaces, punctuation included, except in Chinese,
        Japanese and Thai, which BudouX cuts into words and phrases (``pip install
        'pyllmattr[languages]'``; without it those words raise ImportError naming it).

        Example:
            >>> pla.TextTemplateInput.from_text("Dave lives in Palm Coast.").n_features
            5
            >>> pla.TextTemplateInput.from_text("東京は日本の首都です。", by="word").labels
            ['東京は', '日本の', '首都です。']
        """
        if not isinstance(text, str):
            raise WrongTypeError("from_text: text must be a string")
        check_text(text, "from_text: the text")
        lead, units, trail = units_with_leading_space(text, by)
        return cls.from_units(units, before=lead, after=trail, baseline=baselines)

    @classmethod
    def from_units(
        cls,
        units: Sequence[str],
        before: str = "",
        after: str = "",
        baseline: str | None = None,
    ) -> TextTemplateInput:
        """Features from pieces of text, in order, with fixed text ``before`` and ``after``.

        The unperturbed prompt is ``before + "".join(units) + after``; each unit is one
        slot. A unit that starts with whitespace keeps it when replaced: an absent unit
        is removed whole (``baseline=None``) or becomes its whitespace + ``baseline``.

        Example:
            >>> inp = pla.TextTemplateInput.from_units(["Dave", " lives"], after=" {here}")
            >>> inp.n_features, inp.labels
            (2, ['Dave', 'lives'])
        """
        if isinstance(units, str) or not isinstance(units, Sequence):
            raise WrongTypeError("the units must be a list of strings")
        fixed = {"before": before, "after": after, "baseline": "" if baseline is None else baseline}
        for what, text in [*fixed.items(), *((f"unit {i}", u) for i, u in enumerate(units))]:
            if not isinstance(text, str):
                raise WrongTypeError(f"the {what} must be a string, got {type(text).__name__}")
        for what, text in fixed.items():  # the units are checked as the template's values
            check_text(text, f"the {what}")
        values = {f"u{i}": unit for i, unit in enumerate(units)}
        # The pieces become a template (literal braces escaped) with one slot per unit,
        # so the constructor checks and normalizes it like any other template.
        template = escape_braces(before) + "".join(f"{{{k}}}" for k in values)
        template += escape_braces(after)
        if baseline is None:
            base = dict.fromkeys(values, "")
        else:
            base = {k: _leading_space(v) + baseline for k, v in values.items()}
        return cls(template, values, base)

    @property
    def labels(self) -> list[str]:
        groups: list[list[str]] = [[] for _ in range(self.n_features)]
        for key in self.keys:
            groups[self.feature_of_slot[key]].append(self.values[key].strip())
        return [" + ".join(g) for g in groups]

    def render(
        self, present: np.ndarray, baselines: Mapping[Key, str]
    ) -> tuple[str, list[Segment]]:
        """The prompt with absent features' slots replaced; also its segments."""
        chosen: dict[Any, str] = {
            key: self.values[key] if present[self.feature_of_slot[key]] else baselines[key]
            for key in self.keys
        }
        if self.parts is None:  # a callable template (a text one is parsed into parts)
            template = cast(Callable[..., str], self.template)
            args = [chosen[k] for k in self.keys]
            text = template(*args) if isinstance(self.keys[0], int) else template(**chosen)
            if not isinstance(text, str):
                raise WrongTypeError("the template callable must return a string")
            return text, [(text, None)]
        segments: list[Segment] = []
        for kind, item in self.parts:
            if kind == "text":
                segments.append((item, None))
            else:
                segments.append((chosen[item], self.feature_of_slot[item]))
        return "".join(s for s, _ in segments), segments

    @property
    def fixed_baselines(self) -> Mapping[Key, str]:
        """Every slot's baseline where none is sampled: the given ones, or each
        ProductBaselines slot's first alternative."""
        if isinstance(self.baselines, ProductBaselines):
            return self.baselines.first()
        return self.baselines

    def encode(self, model: Any, add_special: bool = True) -> Encoding:
        product = self.baselines if isinstance(self.baselines, ProductBaselines) else None
        fixed = self.fixed_baselines
        all_present = np.ones(self.n_features, dtype=bool)
        text, segments = self.render(all_present, fixed)

        def tokenize(text: str) -> list[int]:
            return model.tokenize(text, add_special=add_special)

        reference = tokenize(text)
        self._check_features_change_tokens(tokenize, reference, fixed)

        def render(mask: np.ndarray, rng: np.random.Generator) -> list[int]:
            baselines = product.sample(rng) if product is not None else fixed
            return tokenize(self.render(mask, baselines)[0])

        positions = _feature_positions(model, reference, segments, self.n_features)
        return Encoding(
            labels=self.labels,
            reference_ids=reference,
            segments=segments,
            feature_tokens=[[int(reference[p]) for p in ps] for ps in positions],
            render=render,
            feature_positions=positions,
        )

    def _check_features_change_tokens(
        self, tokenize: Any, reference: list[int], baselines: Any
    ) -> None:
        for f, label in enumerate(self.labels):
            mask = np.ones(self.n_features, dtype=bool)
            mask[f] = False
            if tokenize(self.render(mask, baselines)[0]) == reference:
                raise ValueError(
                    f"feature {f} ({label!r}) tokenizes the same with its baseline as without it; "
                    "give it a different baseline or merge it into a neighbouring feature"
                )


# ---------------------------------------------------------------- normalization


def _literal(text: str) -> tuple[str, str]:
    return ("text", text)


def escape_braces(text: str) -> str:
    """``text`` as literal template text: braces doubled, as str.format reads them."""
    return text.replace("{", "{{").replace("}", "}}")


def _leading_space(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _normalize_values(values: Any) -> tuple[list[Key], dict[Key, str]]:
    if isinstance(values, Mapping):
        pairs = list(values.items())
    elif isinstance(values, Sequence) and not isinstance(values, str):
        pairs = list(enumerate(values))
    else:
        raise WrongTypeError("values must be a list of strings or a dict of slot name -> string")
    if not pairs:
        raise ValueError("values is empty: give at least one slot value to attribute")
    for key, value in pairs:
        if not isinstance(value, str):
            raise WrongTypeError(
                f"value of slot {key!r} must be a string, got {type(value).__name__}"
            )
        if value == "":
            raise ValueError(f"value of slot {key!r} is empty; an empty slot cannot be attributed")
        check_text(value, f"value of slot {key!r}")
    return [k for k, _ in pairs], dict(pairs)


def _parse_template(template: Any, keys: list[Key]) -> list[tuple[str, Any]]:
    if not isinstance(template, str):
        raise WrongTypeError("template must be a string with {} or {name} slots, or a callable")
    check_text(template, "the template")
    named = not isinstance(keys[0], int)
    known = set(keys)
    parts: list[tuple[str, Any]] = []
    auto = 0
    numbering: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"template {template!r} is malformed ({exc}); write literal braces as {{{{ and }}}}"
        ) from exc
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append(_literal(literal))
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"template slot {{{field}...}}: format specs are not supported")
        if field == "":
            key: Key = auto
            auto += 1
        else:
            # Decimal digits index like str.format ("{1}"); "²" is a digit but no index.
            key = int(field) if field.isdecimal() else field
        numbering.add("auto" if field == "" else "manual")
        if len(numbering) > 1:
            raise ValueError(
                f"template {template!r} mixes {{}} and numbered slots like {{0}}; use one kind"
            )
        if named != isinstance(key, str) or key not in known:
            raise ValueError(
                f"template slot {{{field}}} has no value; values has "
                f"{'keys ' + str(keys) if named else str(len(keys)) + ' items'}"
            )
        parts.append(("slot", key))
    used = {item for kind, item in parts if kind == "slot"}
    unused = [k for k in keys if k not in used]
    if unused:
        raise ValueError(f"values {unused} have no slot in the template {template!r}")
    return parts


def _normalize_baselines(baselines: Any, keys: list[Key]) -> dict[Key, str] | ProductBaselines:
    if baselines is None:
        return dict.fromkeys(keys, "")
    if isinstance(baselines, ProductBaselines):
        unknown = [k for k in baselines.slots if k not in keys]
        missing = [k for k in keys if k not in baselines.slots]
        if unknown or missing:
            raise ValueError(
                "ProductBaselines slots must match the values: "
                f"unknown {unknown}, missing {missing}"
            )
        return baselines
    if isinstance(baselines, Mapping):
        if set(baselines) != set(keys):
            raise ValueError(
                f"baselines keys {sorted(map(str, baselines))} do not match the values' slots "
                f"{sorted(map(str, keys))}"
            )
        out = dict(baselines)
    elif isinstance(baselines, Sequence) and not isinstance(baselines, str):
        if len(baselines) != len(keys):
            raise ValueError(f"{len(baselines)} baselines for {len(keys)} values; give one each")
        out = dict(zip(keys, baselines, strict=True))
    else:
        raise WrongTypeError("baselines must be a list, a dict, a ProductBaselines or None")
    for key, value in out.items():
        if not isinstance(value, str):
            raise WrongTypeError(f"baseline of slot {key!r} must be a string")
        check_text(value, f"baseline of slot {key!r}")
    return out


def _normalize_mask(mask: Any, keys: list[Key]) -> tuple[dict[Key, int], int]:
    if mask is None:
        return {k: i for i, k in enumerate(keys)}, len(keys)
    if isinstance(mask, Mapping):
        if set(mask) != set(keys):
            raise ValueError("mask must give a feature id for every slot, and only for them")
        ids = [mask[k] for k in keys]
    else:
        if len(mask) != len(keys):
            raise ValueError(f"mask has {len(mask)} entries for {len(keys)} values")
        ids = list(mask)
    if not all(isinstance(i, (int, np.integer)) for i in ids):
        raise WrongTypeError(
            "mask entries must be integers (slots with equal ids form one feature)"
        )
    order = {v: i for i, v in enumerate(sorted(set(ids)))}
    return {k: order[i] for k, i in zip(keys, ids, strict=True)}, len(order)


def _feature_positions(
    model: Any, ids: list[int], segments: list[Segment], n: int
) -> list[list[int]]:
    """Positions of the reference prompt's tokens that overlap each feature's bytes."""
    ends = np.cumsum([len(model.token_to_bytes(t, render_special=False)) for t in ids])
    starts = np.concatenate([[0], ends[:-1]])
    out: list[list[int]] = [[] for _ in range(n)]
    position = 0
    for text, feature in segments:
        begin, position = position, position + len(text.encode("utf-8"))
        if feature is None:
            continue
        overlap = (starts < position) & (ends > begin)
        out[feature].extend(int(i) for i in np.flatnonzero(overlap))
    return [sorted(set(ps)) for ps in out]  # a feature's slots may share a token
