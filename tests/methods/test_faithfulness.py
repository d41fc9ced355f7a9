"""pla.evaluate: deletion and insertion curves, comprehensiveness and sufficiency, LDS,
in one engine call, removing features exactly as the method that made the result."""

from __future__ import annotations

import dataclasses
import sys
import warnings

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.methods.context_cite import logit

PROMPT = "Dave lives in Palm Coast, FL and is a"
TARGET = " lawyer"
CHEAP = {"n_random": 2, "n_ablations": 8, "seed": 0}


@pytest.fixture(scope="module", params=["smollm2", "tiny"])
def exact_model(request):
    """SmolLM2 and a generated model, both in the exact default layout of the CPU."""
    model = request.getfixturevalue(request.param)
    assert model.scores_are_exact
    return model


@pytest.fixture(scope="module")
def words():
    return pla.TextTemplateInput.from_text(PROMPT)


def test_the_first_deletion_point_is_the_unperturbed_score_bit_for_bit(exact_model, words):
    fa = pla.FeatureAblation(exact_model).attribute(words, target=TARGET)
    faith = pla.evaluate(fa, exact_model, **CHEAP)
    assert faith.deletion[0] == fa.target_logprob
    # Both ends of the two curves are the same two prompts, scored once.
    assert faith.insertion[-1] == faith.deletion[0]
    assert faith.insertion[0] == faith.deletion[-1]


def test_removing_the_top_feature_is_its_leave_one_out_bit_for_bit(exact_model, words):
    fa = pla.FeatureAblation(exact_model).attribute(words, target=TARGET)
    # Another method's order: its top feature is removed alone, as feature ablation did.
    sampled = pla.ShapleyValueSampling(exact_model).attribute(
        words, target=TARGET, n_samples=3, seed=1
    )
    for result in (fa, sampled):
        faith = pla.evaluate(result, exact_model, **CHEAP)
        top = faith.order[0]
        assert top == int(np.argmax(result.seq_attr))
        assert faith.deletion[0] - faith.deletion[1] == fa.seq_attr[top]
        assert faith.comprehensiveness[0.01] == fa.seq_attr[top]


def test_one_evaluation_is_one_engine_call_within_its_prompt_budget(tiny, words):
    result = pla.ShapleyValueSampling(tiny).attribute(words, target=TARGET, n_samples=4, seed=0)
    n, k, n_random, n_ablations = words.n_features, 3, 3, 20
    faith = pla.evaluate(
        result, tiny, k=k, n_random=n_random, n_ablations=n_ablations, seed=0, progress=False
    )
    assert faith.stats["n_score_calls"] == 1
    assert faith.stats["n_unique"] == faith.n_prompts  # one continuation: pairs are prompts
    # Each curve: k + 1 points and the fractions' counts beyond k (here 0.5 of 9 -> 5).
    beyond = 1
    assert faith.n_prompts <= 2 * (k + 1 + beyond) + 2 * (k + beyond) * n_random + n_ablations
    assert faith.stats["n_decoded"] < faith.stats["n_naive"]  # prefixes shared
    assert len(faith.deletion) == len(faith.insertion) == k + 1
    assert faith.deletion_random.shape == faith.insertion_random_std.shape == (k + 1,)
    # The 50 % fraction reads beyond k: scored too, still in the same call.
    assert -(-n // 2) > k and 0.5 in faith.comprehensiveness


def test_results_on_one_input_share_one_call_and_their_random_prompts(tiny, words):
    fa = pla.FeatureAblation(tiny).attribute(words, target=TARGET)
    lime = pla.Lime(tiny).attribute(words, target=TARGET, n_samples=20, seed=0)
    other = pla.FeatureAblation(tiny).attribute(
        pla.TextTemplateInput.from_text("Maria moved to Tucson to work as a"), target=TARGET
    )
    both = pla.evaluate([fa, lime, other], tiny, **CHEAP)
    assert [f.method for f in both] == ["FeatureAblation", "Lime", "FeatureAblation"]
    assert both[0].stats["n_score_calls"] == 1 and both[0].stats["n_results"] == 3
    # Random orders and ablations of one input are drawn once and scored once.
    assert both[0].stats["n_unique"] < sum(f.n_prompts for f in both)
    np.testing.assert_array_equal(both[0].deletion_random, both[1].deletion_random)
    assert fa.faithfulness is both[0] and other.faithfulness is both[2]
    alone = pla.evaluate(fa, tiny, **CHEAP)
    np.testing.assert_array_equal(alone.deletion, both[0].deletion)
    assert alone.lds == both[0].lds


def test_exact_shapley_values_have_a_higher_lds_than_the_same_values_shuffled(smollm2):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}, {state} and is a {job}. {pronoun} personal interests include",
        {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer", "pronoun": "His"},
        baselines={"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor",
                   "pronoun": "Her"},
    )  # fmt: skip
    exact = pla.ShapleyValues(smollm2).attribute(inp, target=" golf")
    shuffled = dataclasses.replace(
        exact, seq_attr=np.random.default_rng(0).permutation(exact.seq_attr)
    )
    assert not np.array_equal(shuffled.seq_attr, exact.seq_attr)
    faith = pla.evaluate(exact, smollm2, n_ablations=32, seed=0)
    # A copy carries no input: it is given, and checked against the result's features.
    other = pla.evaluate(shuffled, smollm2, n_ablations=32, seed=0, inp=inp)
    assert faith.lds > other.lds
    assert faith.lds > 0.5


def test_a_contrast_is_evaluated_on_the_same_objective(tiny, words):
    fa = pla.FeatureAblation(tiny).attribute(words, target=TARGET, contrast=" doctor")
    faith = pla.evaluate(fa, tiny, **CHEAP)
    assert faith.quantity == fa.quantity and "contrast" in faith.quantity
    assert faith.deletion[0] == fa.target_logprob - fa.contrast_logprob
    assert faith.deletion[0] - faith.deletion[1] == fa.seq_attr[faith.order[0]]


def test_chat_results_and_context_cite_are_evaluated_on_their_own_terms(tiny, words):
    chat = pla.FeatureAblation(tiny).attribute(words, target=TARGET, chat=True)
    faith = pla.evaluate(chat, tiny, **CHEAP)
    assert faith.deletion[0] == chat.target_logprob  # inside the same chat frame
    inp = pla.ContextInput(
        ["Ravenna Creek is a town. It has a mill.", "Ostrel is a river. It is long."],
        "Which town has a mill?",
    )
    cited = pla.ContextCite(tiny).attribute(inp, target=" Ravenna", n_samples=16, seed=0)
    faith = pla.evaluate(cited, tiny, **CHEAP)
    # ContextCite regresses the logit of the target's probability: so is f here.
    assert faith.quantity == cited.quantity
    assert faith.deletion[0] == logit(np.array([cited.target_logprob]))[0]


def test_per_token_curves_use_each_tokens_own_attributions(tiny, words):
    fa = pla.FeatureAblation(tiny).attribute(words, target=" a lawyer")
    faith = pla.evaluate(fa, tiny, per_token=True, **CHEAP)
    n_tokens, n = fa.token_attr.shape
    assert faith.token_deletion.shape == faith.token_insertion.shape == (n_tokens, n + 1)
    np.testing.assert_array_equal(faith.token_deletion[:, 0], fa.target_token_logprobs)
    for t in range(n_tokens):
        top = faith.token_order[t][0]
        assert top == int(np.argmax(fa.token_attr[t]))
        assert faith.token_deletion[t, 0] - faith.token_deletion[t, 1] == fa.token_attr[t, top]
    assert faith.token_lds.shape == (n_tokens,)
    assert pla.evaluate(fa, tiny, **CHEAP).token_deletion is None  # per_token is asked for


def test_sampled_baselines_are_seeded(tiny):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a",
        {"name": "Dave", "city": "Palm Coast"},
        baselines=pla.ProductBaselines({"name": ["Sarah", "John"], "city": ["Seattle", "Rome"]}),
    )
    result = pla.FeatureAblation(tiny).attribute(inp, target=TARGET, seed=0)
    first, again = (pla.evaluate(result, tiny, **CHEAP) for _ in range(2))
    np.testing.assert_array_equal(first.deletion, again.deletion)
    np.testing.assert_array_equal(first.deletion_random, again.deletion_random)


def test_a_pytorch_gradient_result_is_evaluated_on_llama_cpp(smollm2, smollm2_torch):
    inp = pla.TextTemplateInput("{} works as a {} in {} and every day walks to the",
                                ["Dave", "lawyer", "Palm Coast"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4 steps: not converged, and not the point here
        result = pla.IntegratedGradients(smollm2_torch).attribute(
            inp, target=" shop", baselines=0, n_steps=4
        )
    faith = pla.evaluate(result, smollm2, **CHEAP)
    # Removed features become token 0 at every one of their tokens, as the path's start.
    encoding = inp.encode(smollm2)
    ids = np.array(encoding.reference_ids)
    for tokens in encoding.feature_positions:
        ids[tokens] = 0
    target = smollm2.tokenize(" shop", add_special=False)
    all_removed = smollm2.score([ids.tolist()], target)[0].sum()
    assert faith.deletion[-1] == all_removed
    assert faith.deletion[0] == smollm2.score([encoding.reference_ids], target)[0].sum()
    # The model that computed it can evaluate it too (within float32 of llama.cpp's).
    on_torch = pla.evaluate(result, smollm2_torch, **CHEAP)
    np.testing.assert_allclose(on_torch.deletion, faith.deletion, atol=0.5)
    np.testing.assert_array_equal(on_torch.order, faith.order)


def test_views_and_serialization(tiny, words, monkeypatch):
    fa = pla.FeatureAblation(tiny).attribute(words, target=TARGET)
    faith = pla.evaluate(fa, tiny, **CHEAP)
    page = fa.to_html()
    assert "pla-faithfulness" in page and "<svg" in page and "pla-random-band" in page
    bare = pla.AttributionResult.from_json(fa.to_json())
    assert isinstance(bare.faithfulness, pla.Faithfulness)
    assert bare.faithfulness.lds == faith.lds
    np.testing.assert_array_equal(bare.faithfulness.order, faith.order)
    assert bare.faithfulness.comprehensiveness == faith.comprehensiveness
    again = pla.Faithfulness.from_json(faith.to_json())
    for name in ("deletion", "insertion", "deletion_random_std"):
        np.testing.assert_array_equal(getattr(again, name), getattr(faith, name))
    assert "pla-faithfulness" in bare.to_html(faithfulness=again)
    import matplotlib

    matplotlib.use("Agg")
    fig, axes = faith.plot()
    assert len(axes) == 2 and axes[0].get_ylabel() == faith.quantity
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pyllmattr\[plot\]"):
        faith.plot()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 99}, "larger than the result's 9 features"),
        ({"k": 0}, "k must be a positive integer"),
        ({"fractions": (0.0, 0.5)}, r"fractions must lie in \(0, 1\]"),
        ({"fractions": (1.5,)}, r"fractions must lie in \(0, 1\]"),
        ({"fractions": ()}, "fractions must be a non-empty list"),
        ({"n_ablations": 2}, "n_ablations must be 0"),
    ],
)
def test_bad_settings_say_what_to_do(tiny, words, kwargs, message):
    fa = pla.FeatureAblation(tiny).attribute(words, target=TARGET)
    with pytest.raises(ValueError, match=message):
        pla.evaluate(fa, tiny, **kwargs)


def test_bad_inputs_say_what_to_do(tiny, words):
    fa = pla.FeatureAblation(tiny).attribute(words, target=TARGET)
    with pytest.raises(ValueError, match="needs a scoring model"):
        pla.evaluate(fa, object())
    other = pla.TextTemplateInput.from_text("Maria moved to Tucson to work as a")
    with pytest.raises(ValueError, match="computed on another input"):
        pla.evaluate(fa, tiny, inp=other)
    loaded = pla.AttributionResult.from_json(fa.to_json())
    with pytest.raises(ValueError, match="pass inp="):
        pla.evaluate(loaded, tiny)
    with pytest.raises(ValueError, match="AttributionResult"):
        pla.evaluate([fa, "not a result"], tiny)
    zero = dataclasses.replace(
        fa, method="IntegratedGradients", settings={"baselines": "zero", "n_steps": 8}
    )
    with pytest.raises(ValueError, match="zero embeddings"):
        pla.evaluate(zero, tiny, inp=words)
