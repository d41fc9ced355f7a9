"""ContextInput: retrieved documents as features, the query and template fixed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odd_inputs import check_encoding, is_text, odd_text

import pyllmattr as pla
from pyllmattr.inputs.context import LEVELS

DOCS = [
    "Harrowgate is a mill town on the Ostrel. It was founded in 1742.\n\n"
    "Its mill closed in 1911. The town now makes glass.",
    "The Ostrel is a slow river. Barges carry coal on it!",
    "  Brindle Moss is a fern.  ",
]
QUERY = "When was Harrowgate founded?"


def make(by: str = "sentence", **kwargs) -> pla.ContextInput:
    return pla.ContextInput(DOCS, QUERY, by=by, **kwargs)


def test_the_unperturbed_prompt_is_the_template_filled_in_byte_for_byte():
    inp = make()
    assert inp.context == "\n\n".join(DOCS)
    assert inp.prompt == f"Context: {inp.context}\n\nQuery: {QUERY}"
    for level in LEVELS:
        assert inp.at(level).render(np.ones(inp.at(level).n_features, bool)) == inp.prompt


def test_each_level_has_its_units_as_features():
    counts = {level: make(level).n_features for level in LEVELS}
    assert counts == {"document": 3, "paragraph": 4, "sentence": 7, "word": 39}
    assert make("paragraph").labels[1] == "Its mill closed in 1911. The town now makes glass."
    assert make("document").labels[2] == "Brindle Moss is a fern."


def test_units_know_their_parents_and_their_place_in_the_context():
    inp = make()
    for unit in inp.units("word"):
        assert inp.context[unit.start : unit.end] == unit.text
        for level, index in unit.parents.items():
            parent = inp.units(level)[index]
            assert parent.start <= unit.start < unit.end <= parent.end
    assert inp.parent_index("sentence", "paragraph").tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert inp.parent_index("paragraph", "document").tolist() == [0, 0, 1, 2]


def test_removing_a_paragraph_renders_as_removing_all_its_sentences():
    sentences, paragraphs = make("sentence"), make("paragraph")
    for p in range(paragraphs.n_features):
        coarse = np.ones(paragraphs.n_features, bool)
        coarse[p] = False
        fine = sentences.parent_index("sentence", "paragraph") != p
        assert sentences.render(fine) == paragraphs.render(coarse)


def test_an_absent_unit_takes_the_whitespace_before_it():
    inp = make()
    present = np.ones(inp.n_features, bool)
    present[1] = False  # "It was founded in 1742."
    assert "on the Ostrel.\n\nIts mill" in inp.render(present)


def test_the_query_and_template_are_never_features(tiny):
    inp = make()
    encoding = inp.encode(tiny)
    assert encoding.reference_ids == tiny.tokenize(inp.prompt)
    fixed = "".join(text for text, feature in encoding.segments if feature is None)
    assert fixed.startswith("Context: ") and fixed.endswith(f"\n\nQuery: {QUERY}")
    assert all(QUERY not in label for label in encoding.labels)


def test_a_string_context_is_one_document():
    inp = pla.ContextInput("One town. Two rivers.", "How many rivers?", by="document")
    assert inp.labels == ["One town. Two rivers."]


def test_a_custom_template_keeps_literal_braces_and_may_omit_the_query():
    inp = pla.ContextInput(["A {b} c."], "q", template="{{docs}}: {context} | {query} {{}}")
    assert inp.prompt == "{docs}: A {b} c. | q {}"
    assert pla.ContextInput(["A."], "unused", template="<{context}>").prompt == "<A.>"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"context": [], "query": "q"}, "no documents"),
        ({"context": ["a.", "  \n"], "query": "q"}, "document 1 is empty"),
        ({"context": ["a."], "query": "q", "template": "{query}"}, r"\{context\} exactly once"),
        ({"context": ["a."], "query": "q", "template": "{context}{title}"}, "not allowed"),
        ({"context": ["a."], "query": "q", "template": "{context"}, "malformed"),
        ({"context": ["a."], "query": "q", "by": "token"}, "level must be one of"),
    ],
)
def test_bad_arguments_are_refused_with_advice(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pla.ContextInput(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"context": 3, "query": "q"}, "string or a list"),
        ({"context": ["a."], "query": None}, "query must be a string"),
        ({"context": ["a."], "query": "q", "template": 5}, "template must be a string"),
    ],
)
def test_arguments_of_the_wrong_type_are_type_errors(kwargs, message):
    with pytest.raises(TypeError, match=message):
        pla.ContextInput(**kwargs)
    with pytest.raises(ValueError, match=message):  # as they always were: code catching it works
        pla.ContextInput(**kwargs)


def test_the_units_are_the_slots_of_a_checked_template_input():
    inp = pla.ContextInput(["Ravenna {Creek} is a town. It has a mill.", "Ostrel."], "Q?")
    inner = inp._inner  # built by TextTemplateInput.from_units: validated like any other
    assert isinstance(inner, pla.TextTemplateInput) and inner.n_features == inp.n_features == 3
    assert inner.render(np.ones(3, dtype=bool), inner.baselines)[0] == inp.prompt
    assert inp.render(np.array([True, False, True])) == (
        "Context: Ravenna {Creek} is a town.\n\nOstrel.\n\nQuery: Q?"
    )


def test_a_parent_must_be_coarser():
    with pytest.raises(ValueError, match="must be coarser"):
        make().parent_index("paragraph", "word")


def test_chat_puts_the_whole_prompt_in_the_users_message(smollm2):
    inp = pla.ContextInput(["Harrowgate was founded in 1742.", "It makes glass."], QUERY)
    result = pla.FeatureAblation(smollm2).attribute(
        inp, target=" 1742", chat=True, noise_floor=False
    )
    messages = [{"role": "user", "content": inp.prompt}]
    assert result.prompt == smollm2.apply_chat_template(messages)
    assert result.input_features == inp.labels
    assert len(result.seq_attr) == 2


documents = st.lists(odd_text.filter(lambda t: is_text(t) and t.strip()), min_size=1, max_size=4)


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(docs=documents, query=odd_text, by=st.sampled_from(LEVELS))
def test_any_documents_render_back_and_nest(tiny, docs, query, by):
    try:
        inp = pla.ContextInput(docs, query, by=by)
    except ValueError as exc:
        assert not is_text(query), exc
        return
    assert inp.render(np.ones(inp.n_features, bool)) == inp.prompt
    assert inp.prompt == f"Context: {inp.context}\n\nQuery: {query}"
    for unit in inp.units(by):
        assert inp.context[unit.start : unit.end] == unit.text == unit.text.strip()
    finest = inp.at("word")
    for level in LEVELS:
        parents = finest.parent_index("word", level)
        coarse = inp.at(level)
        for u in range(coarse.n_features):
            removed = np.ones(coarse.n_features, bool)
            removed[u] = False
            assert finest.render(parents != u) == coarse.render(removed)
    if len(inp.prompt) < 200:
        check_encoding(tiny, inp, inp.prompt)
