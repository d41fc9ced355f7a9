"""Context features: the units of retrieved documents, with the query and template fixed."""

from __future__ import annotations

import copy
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import WrongTypeError
from .._text import check_text
from . import scripts
from .base import Encoding, InterpretableInput
from .split import UNITS, split_units
from .template import TextTemplateInput

# The feature kinds of a context, coarse to fine: each unit lies inside one of the level
# above. Plain text's "character" (split.UNITS) is not one: a retrieved context has
# thousands of characters, too many features to attribute; nor is "clause", so that a
# hierarchical search over words still refines them from sentences.
LEVELS = ("document", *(u for u in UNITS[: UNITS.index("word") + 1] if u != "clause"))
DEFAULT_TEMPLATE = "Context: {context}\n\nQuery: {query}"
DOCUMENT_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class ContextUnit:
    """One unit of the context: its text and where it sits.

    ``start``/``end`` are character offsets into ``ContextInput.context`` (the joined
    documents); ``parents`` maps each coarser level to the index of the unit there
    that contains this one.
    """

    level: str
    index: int
    start: int
    end: int
    text: str
    parents: dict[str, int]


class ContextInput(InterpretableInput):
    """A retrieved context and a query: only the context's units are features.

    ``context`` is one string or a list of documents (joined with a blank line);
    ``template`` places it and the fixed ``query`` (``{context}`` once, ``{query}`` at
    most once; ``{{``/``}}`` are literal braces). Units nest document -> paragraph ->
    sentence -> word, in any script (see ``TextTemplateInput.from_text``; Chinese,
    Japanese and Thai words need the ``languages`` extra); ``by`` picks the level whose
    units are the features, and a level is split when first used. An absent
    unit is removed with the whitespace before it, so removing a paragraph renders the
    same prompt as removing all its sentences. The unperturbed prompt is
    ``template.format(context=inp.context, query=query)`` byte for byte.

    Example:
        >>> inp = pla.ContextInput(
        ...     ["Ravenna Creek is a town. It has a mill.", "Ostrel is a river."],
        ...     "Which town has a mill?",
        ... )
        >>> inp.n_features, [u.parents["document"] for u in inp.units("sentence")]
        (3, [0, 0, 1])
    """

    def __init__(
        self,
        context: str | Sequence[str],
        query: str,
        template: str = DEFAULT_TEMPLATE,
        by: str = "sentence",
    ) -> None:
        self.documents = _documents(context)
        if not isinstance(query, str):
            raise WrongTypeError("ContextInput: query must be a string")
        check_text(query, "ContextInput: the query")
        self.query = query
        self.template = template
        self._before, self._after = _split_template(template, query)
        self.by = _check_level(by)
        self.context = DOCUMENT_SEPARATOR.join(self.documents)
        self._units = _UnitTree(self.documents)
        self._inner = self._template_input(self.by)

    # ------------------------------------------------------------ the hierarchy
    def units(self, level: str | None = None) -> list[ContextUnit]:
        """The units of ``level`` (default: the feature level), in reading order."""
        return list(self._units[_check_level(level or self.by)])

    def parent_index(self, level: str, parent: str) -> np.ndarray:
        """For every unit of ``level``, the index of its enclosing unit at ``parent``.

        Example:
            >>> inp.parent_index("sentence", "document").tolist()  # doctest: +SKIP
            [0, 0, 1]
        """
        level, parent = _check_level(level), _check_level(parent)
        if LEVELS.index(parent) > LEVELS.index(level):
            raise ValueError(f"{parent!r} is finer than {level!r}; a parent must be coarser")
        if parent == level:
            return np.arange(len(self._units[level]))
        return np.array([u.parents[parent] for u in self._units[level]], dtype=int)

    def at(self, by: str) -> ContextInput:
        """The same context and query with the features at another level."""
        other = copy.copy(self)  # the documents, their units and the template are shared
        other.by = _check_level(by)
        other._inner = self._template_input(other.by)
        return other

    @property
    def n_features(self) -> int:
        return len(self._units[self.by])

    @property
    def labels(self) -> list[str]:
        return [u.text for u in self._units[self.by]]

    @property
    def prompt(self) -> str:
        """The unperturbed prompt."""
        return self._before + self.context + self._after

    def render(self, present: np.ndarray) -> str:
        """The prompt with the absent features removed."""
        return self._inner.render(np.asarray(present, dtype=bool), self._inner.fixed_baselines)[0]

    def encode(self, model: Any, add_special: bool = True) -> Encoding:
        return self._inner.encode(model, add_special=add_special)

    # ------------------------------------------------------------ internals
    def _template_input(self, by: str) -> TextTemplateInput:
        """A template input whose slots are this level's units, each with the gap before it."""
        units = self._units[by]
        pieces = [
            self.context[unit.start if i == 0 else units[i - 1].end : unit.end]
            for i, unit in enumerate(units)
        ]
        return TextTemplateInput.from_units(
            pieces,
            before=self._before + self.context[: units[0].start],
            after=self.context[units[-1].end :] + self._after,
        )

    def __repr__(self) -> str:
        return (
            f"ContextInput({len(self.documents)} documents, {self.n_features} {self.by} "
            f"features, query={self.query!r})"
        )


def _check_level(level: Any) -> str:
    if level not in LEVELS:
        raise ValueError(f"ContextInput: level must be one of {list(LEVELS)}, got {level!r}")
    return level


def _documents(context: Any) -> list[str]:
    if isinstance(context, str):
        documents = [context]
    elif isinstance(context, Sequence) and all(isinstance(d, str) for d in context):
        documents = list(context)
    else:
        raise WrongTypeError("ContextInput: context must be a string or a list of strings")
    if not documents:
        raise ValueError("ContextInput: the context has no documents; give at least one")
    for i, doc in enumerate(documents):
        check_text(doc, f"ContextInput: document {i}")
        if not doc.strip():
            raise ValueError(
                f"ContextInput: document {i} is empty; leave it out or give it some text"
            )
    return documents


def _split_template(template: Any, query: str) -> tuple[str, str]:
    """The template's text before and after ``{context}``, with the query filled in."""
    if not isinstance(template, str):
        raise WrongTypeError("ContextInput: template must be a string with a {context} slot")
    check_text(template, "ContextInput: the template")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"ContextInput: template {template!r} is malformed ({exc}); "
            "write literal braces as {{ and }}"
        ) from exc
    pieces: list[str | None] = []  # None marks the context slot
    for literal, field, spec, conversion in parsed:
        pieces.append(literal)
        if field is None:
            continue
        if field not in ("context", "query") or spec or conversion:
            raise ValueError(
                f"ContextInput: template slot {{{field}}} is not allowed; "
                "use {context} and {query} only"
            )
        pieces.append(None if field == "context" else query)
    fields = [f for _, f, _, _ in parsed if f is not None]
    if fields.count("context") != 1 or fields.count("query") > 1:
        raise ValueError(
            "ContextInput: the template needs {context} exactly once and {query} at most once"
        )
    cut = pieces.index(None)
    return "".join(pieces[:cut]), "".join(pieces[cut + 1 :])  # type: ignore[arg-type]


class _UnitTree(dict):
    """Every level's units, each level split inside the units of the level above (so
    the levels nest), computed when first asked for: a long context's words, or those
    of a language whose segmenter is not installed, cost nothing until used."""

    def __init__(self, documents: list[str]) -> None:
        super().__init__()
        self.documents = documents
        self.languages: dict[int, str | None] = {}
        units, offset = [], 0
        for d, doc in enumerate(documents):
            start = offset + len(doc) - len(doc.lstrip())
            units.append(
                ContextUnit("document", d, start, offset + len(doc.rstrip()), doc.strip(), {})
            )
            offset += len(doc) + len(DOCUMENT_SEPARATOR)
        self["document"] = units

    def __missing__(self, level: str) -> list[ContextUnit]:
        parent = LEVELS[LEVELS.index(level) - 1]
        units: list[ContextUnit] = []
        for unit in self[parent]:
            parents = {**unit.parents, parent: unit.index}
            language = self._language(parents["document"]) if level == "word" else None
            for start, end in split_units(unit.text, level, language):
                text = unit.text[start:end]
                units.append(
                    ContextUnit(
                        level, len(units), unit.start + start, unit.start + end, text, dict(parents)
                    )
                )
        self[level] = units
        return units

    def _language(self, document: int) -> str | None:
        """How to read the document's Chinese characters (told once from all of it)."""
        if document not in self.languages:
            self.languages[document] = scripts.han_language(self.documents[document])
        return self.languages[document]
