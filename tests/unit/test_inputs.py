"""Interpretable inputs: features, baselines, grouping, round trips and misuse."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla

TEXT = 'Dave lives in Palm Coast, FL.  He is a lawyer!\n\n"Really?" Yes, {really}.\n'


def rendered(inp, model, mask=None, seed=0):
    encoding = inp.encode(model)
    if mask is None:
        mask = np.ones(encoding.n_features, dtype=bool)
    return model.detokenize(encoding.render(np.asarray(mask), np.random.default_rng(seed)))


@pytest.mark.parametrize("by, n", [("word", 13), ("sentence", 4), ("paragraph", 2)])
def test_from_text_renders_back_byte_for_byte(tiny, by, n):
    inp = pla.TextTemplateInput.from_text(TEXT, by=by)
    assert inp.n_features == n
    text, _ = inp.render(np.ones(n, dtype=bool), inp.baselines)
    assert text == TEXT
    assert rendered(inp, tiny) == TEXT


@pytest.mark.parametrize("baselines", [None, "___"])
@pytest.mark.parametrize("by", ["word", "sentence", "paragraph"])
def test_from_text_is_the_constructor_on_one_slot_per_unit(by, baselines):
    inp = pla.TextTemplateInput.from_text(TEXT, by=by, baselines=baselines)
    units = list(inp.values.values())
    assert "".join(units) == TEXT.strip()
    values = {f"u{i}": unit for i, unit in enumerate(units)}
    if baselines is None:
        base = dict.fromkeys(values, "")
    else:
        base = {k: unit[: len(unit) - len(unit.lstrip())] + "___" for k, unit in values.items()}
    template = "".join(f"{{{k}}}" for k in values) + "\n"
    assert vars(inp) == vars(pla.TextTemplateInput(template, values, base))


def test_from_text_removes_a_word_with_its_space(tiny):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast.")
    assert inp.labels == ["Dave", "lives", "in", "Palm", "Coast."]
    assert rendered(inp, tiny, [1, 1, 0, 1, 1]) == "Dave lives Palm Coast."


def test_from_text_baseline_keeps_the_space(tiny):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast.", baselines="___")
    assert rendered(inp, tiny, [1, 0, 1, 1, 1]) == "Dave ___ in Palm Coast."


def test_named_template_with_baselines(tiny):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}.",
        {"name": "Dave", "city": "Palm Coast"},
        baselines={"name": "Sarah", "city": "Seattle"},
    )
    assert rendered(inp, tiny, [0, 1]) == "Sarah lives in Palm Coast."


def test_positional_template_defaults_to_removal(tiny):
    inp = pla.TextTemplateInput("{} lives in {}.", ["Dave", "Palm Coast"])
    assert rendered(inp, tiny, [1, 0]) == "Dave lives in ."


def test_literal_braces_survive(tiny):
    inp = pla.TextTemplateInput("{{json}}: {}", ["x"])
    assert rendered(inp, tiny) == "{json}: x"


def test_callable_template(tiny):
    inp = pla.TextTemplateInput(
        lambda name, city: f"{name} lives in {city}.", {"name": "Dave", "city": "Palm Coast"}
    )
    assert rendered(inp, tiny, [1, 0]) == "Dave lives in ."


def test_mask_groups_slots_into_one_feature(tiny):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}, {state}.",
        {"name": "Dave", "city": "Palm Coast", "state": "FL"},
        baselines={"name": "Sarah", "city": "Seattle", "state": "WA"},
        mask={"name": 0, "city": 1, "state": 1},
    )
    assert inp.n_features == 2
    assert inp.labels == ["Dave", "Palm Coast + FL"]
    assert rendered(inp, tiny, [1, 0]) == "Dave lives in Seattle, WA."


def test_product_baselines_are_sampled_per_prompt_and_seeded(tiny):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}, {state}.",
        {"name": "Dave", "city": "Palm Coast", "state": "FL"},
        baselines=pla.ProductBaselines(
            {
                "name": ["Sarah", "John"],
                ("city", "state"): [("Seattle", "WA"), ("Boston", "MA")],
            }
        ),
    )
    encoding = inp.encode(tiny)
    rng = np.random.default_rng(3)
    texts = {tiny.detokenize(encoding.render(np.zeros(3, bool), rng)) for _ in range(40)}
    assert texts == {
        f"{n} lives in {c}." for n in ("Sarah", "John") for c in ("Seattle, WA", "Boston, MA")
    }


def test_feature_tokens_follow_the_prompt(tiny):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast.")
    tokens = inp.encode(tiny).feature_tokens
    assert [tiny.detokenize(t) for t in tokens] == ["Dave", " lives", " in", " Palm", " Coast."]


def test_token_input_replaces_or_removes_tokens(tiny):
    text = "Dave lives in Palm Coast"
    ids = tiny.tokenize(text)
    replaced = pla.TextTokenInput(text, tiny, baselines=0).encode(tiny)
    removed = pla.TextTokenInput(text, tiny, baselines=None).encode(tiny)
    mask = np.ones(len(ids), dtype=bool)
    mask[1] = False
    rng = np.random.default_rng(0)
    assert replaced.render(mask, rng) == ids[:1] + [0] + ids[2:]
    assert removed.render(mask, rng) == ids[:1] + ids[2:]


def test_token_input_skips_tokens(tiny):
    inp = pla.TextTokenInput("Dave lives in Palm Coast", tiny, skip_tokens=[" in"])
    assert " in" not in inp.encode(tiny).labels


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(template="{} {}", values=["a", "b"], baselines=["x"]), "1 baselines for 2 values"),
        (
            dict(template="{a} {b}", values={"a": "x", "b": "y"}, baselines={"a": "1", "c": "2"}),
            "do not match",
        ),
        (dict(template="{a} {c}", values={"a": "x", "b": "y"}), "has no value"),
        (dict(template="{a}", values={"a": "x", "b": "y"}), "have no slot"),
        (dict(template="{} {}", values=["a", "b"], mask=[0]), "mask has 1 entries"),
        (dict(template="{}", values=[]), "values is empty"),
        (dict(template="{}", values=[""]), "is empty"),
        (dict(template="{:>5}", values=["a"]), "format specs"),
        (dict(template="{", values=["a"]), "malformed"),
        (
            dict(template="{a}", values={"a": "x"}, baselines=pla.ProductBaselines({"b": ["y"]})),
            "unknown",
        ),
    ],
)
def test_template_misuse_is_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pla.TextTemplateInput(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(template=5, values=["a"]), "template must be a string"),
        (dict(template="{}", values="a"), "values must be a list"),
        (dict(template="{}", values=[3]), "must be a string, got int"),
        (dict(template="{}", values=["a"], baselines=3), "baselines must be a list"),
        (dict(template="{}", values=["a"], baselines=[3]), "baseline of slot 0 must be a string"),
        (dict(template="{}", values=["a"], mask=["x"]), "mask entries must be integers"),
    ],
)
def test_template_arguments_of_the_wrong_type_are_type_errors(kwargs, message):
    with pytest.raises(TypeError, match=message):
        pla.TextTemplateInput(**kwargs)


def test_from_units_keeps_fixed_text_around_the_units():
    inp = pla.TextTemplateInput.from_units(
        ["Dave", " lives {here}"], before="{Q} ", after=" now.", baseline="_"
    )
    assert inp.labels == ["Dave", "lives {here}"]
    assert inp.render(np.array([True, False]), inp.baselines)[0] == "{Q} Dave _ now."
    removal = pla.TextTemplateInput.from_units(["a", " b"])
    assert removal.render(np.array([True, False]), removal.baselines)[0] == "a"
    with pytest.raises(TypeError, match="unit 1 must be a string"):
        pla.TextTemplateInput.from_units(["a", 2])


def test_feature_that_does_not_change_the_tokens_is_refused(tiny):
    inp = pla.TextTemplateInput("{} lives here.", ["Dave"], baselines=["Dave"])
    with pytest.raises(ValueError, match="tokenizes the same"):
        inp.encode(tiny)


def test_multi_token_baseline_is_refused(tiny):
    with pytest.raises(ValueError, match="not one"):
        pla.TextTokenInput("Dave lives", tiny, baselines="Palm Coast Florida")


def test_from_text_needs_words():
    with pytest.raises(ValueError, match="no words"):
        pla.TextTemplateInput.from_text("   \n ")
    with pytest.raises(ValueError, match="by must be"):
        pla.TextTemplateInput.from_text("a b", by="letter")
