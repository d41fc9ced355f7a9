"""Fuzzing the input layer: odd text gives a correct input or a clean ValueError.

Inputs are built from pieces that break naive text handling: combining marks,
right-to-left text and overrides, emoji sequences, NUL, lone surrogates (not
valid text: they must be refused with ValueError), braces, whitespace, empty
strings and long repeats. Whatever comes out must satisfy the inputs' contract
on the tiny model's real tokenizer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from odd_inputs import FUZZ, any_text, check_encoding, is_text, odd_text

import pyllmattr as pla


@FUZZ
@given(text=any_text, by=st.sampled_from(["word", "sentence", "paragraph"]))
def test_from_text_renders_back_exactly_or_refuses(tiny, text, by):
    try:
        inp = pla.TextTemplateInput.from_text(text, by=by)
    except ValueError as exc:
        assert not is_text(text) or not text.strip(), exc
        return
    assert is_text(text)
    rendered, segments = inp.render(np.ones(inp.n_features, dtype=bool), inp.baselines)
    assert rendered == text
    assert "".join(s for s, _ in segments) == text
    assert inp.n_features == len(inp.labels) == len({f for _, f in segments if f is not None})
    if len(text) < 200:  # encoding tokenizes once per feature
        check_encoding(tiny, inp, text)


@FUZZ
@given(literals=st.lists(odd_text, min_size=1, max_size=5), values=st.lists(any_text, max_size=4))
def test_escaped_template_renders_its_values_or_refuses(tiny, literals, values):
    # A template whose literal text is escaped: it must render literally.
    n = min(len(literals) - 1, len(values))
    values = values[:n]
    escaped = [lit.replace("{", "{{").replace("}", "}}") for lit in literals[: n + 1]]
    template = "{}".join(escaped)
    expected = "".join(lit + val for lit, val in zip(literals, [*values, ""], strict=False))
    try:
        inp = pla.TextTemplateInput(template, values)
    except ValueError as exc:
        assert not values or "" in values or not all(map(is_text, [template, *values])), exc
        return
    rendered, _ = inp.render(np.ones(inp.n_features, dtype=bool), inp.baselines)
    assert rendered == expected == template.format(*values)
    if len(expected) < 200:
        check_encoding(tiny, inp, expected)


@FUZZ
@given(template=odd_text, values=st.lists(odd_text, min_size=1, max_size=3))
@example(template="{0}{}", values=["a"])
@example(template="{}{0}", values=["a"])
@example(template="{\u0663}", values=["a", "b", "c", "d"])  # Arabic-Indic 3
@example(template="{\u00b2}", values=["a"])  # superscript 2: a digit, not an index
@example(template="{01} {0}", values=["a", "b"])
@example(template="{a.b} {0[1]}", values=["a"])
def test_raw_template_agrees_with_str_format_or_refuses(template, values):
    # Unescaped braces anywhere: a clean ValueError, or the text str.format gives.
    try:
        inp = pla.TextTemplateInput(template, values)
    except ValueError:
        return
    rendered, _ = inp.render(np.ones(inp.n_features, dtype=bool), inp.baselines)
    assert rendered == template.format(*values)


@FUZZ
@given(
    text=odd_text,
    baseline=st.one_of(st.none(), st.integers(-5, 60_000), odd_text),
    skip=st.one_of(st.none(), st.lists(st.one_of(st.integers(-5, 60_000), odd_text), max_size=3)),
)
def test_token_input_keeps_its_contract_or_refuses(tiny, text, baseline, skip):
    try:
        inp = pla.TextTokenInput(text, tiny, baselines=baseline, skip_tokens=skip)
        encoding = inp.encode(tiny)
    except ValueError:
        return
    ids = tiny.tokenize(text)
    assert encoding.reference_ids == ids
    assert encoding.n_features == sum(t not in inp.skip_ids for t in ids) > 0
    check_encoding(tiny, inp, text)


slot_names = st.sampled_from(["a", "b", "c", "name", "\u05e9", "{x}", ""])


@FUZZ
@given(
    alternatives=st.dictionaries(
        st.one_of(slot_names, st.tuples(slot_names, slot_names)),
        st.lists(st.one_of(odd_text, st.tuples(odd_text, odd_text)), max_size=3),
        max_size=3,
    )
)
def test_product_baselines_sample_their_alternatives_or_refuse(tiny, alternatives):
    try:
        baselines = pla.ProductBaselines(alternatives)
    except ValueError:
        return
    rng = np.random.default_rng(0)
    for _ in range(3):
        chosen = baselines.sample(rng)
        assert sorted(chosen, key=str) == sorted(baselines.slots, key=str)
        for keys, rows in baselines.alternatives.items():
            assert tuple(chosen[k] for k in keys) in rows
    slots = [s for s in dict.fromkeys(baselines.slots) if isinstance(s, str) and s.isidentifier()]
    if len(slots) != len(baselines.slots):
        return  # not usable as {name} slots; the mapping itself is what was tested
    template = " ".join("{" + s + "}" for s in slots) + " end"
    try:
        inp = pla.TextTemplateInput(template, {s: "Dave" for s in slots}, baselines=baselines)
    except ValueError:
        assert not all(
            is_text(v) for rows in baselines.alternatives.values() for r in rows for v in r
        )
        return
    check_encoding(tiny, inp)


def test_lone_surrogates_are_refused_with_advice(tiny):
    with pytest.raises(ValueError, match="lone surrogate"):
        tiny.tokenize("caf\udce9")
    with pytest.raises(ValueError, match="lone surrogate"):
        pla.TextTemplateInput.from_text("caf\udce9 au lait")
    with pytest.raises(ValueError, match="lone surrogate"):
        pla.TextTemplateInput("{} lives here", ["D\ud800ave"])
    with pytest.raises(ValueError, match="lone surrogate"):
        pla.TextTokenInput("caf\udce9", tiny)


def test_a_huge_text_splits_and_renders_back(tiny):
    text = " ".join(f"w{i}" for i in range(20_000)) + "."
    inp = pla.TextTemplateInput.from_text(text)
    assert inp.n_features == 20_000
    assert inp.render(np.ones(inp.n_features, dtype=bool), inp.baselines)[0] == text


def test_a_prompt_longer_than_the_context_is_refused_before_scoring(exact):
    inp = pla.TextTokenInput("word " * 600, exact)  # 600+ tokens; n_ctx is 512
    with pytest.raises(ValueError, match="larger n_ctx"):
        pla.FeatureAblation(exact).attribute(inp, target=" end")
