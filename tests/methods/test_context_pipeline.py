"""The long-context methods run on the shared pipeline: contrast, chat, batches, chunked
scoring and the noise floor behave as for every other method."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla
import pyllmattr.pipeline.scoring

DOCS = [
    "Harrowgate is a mill town. It was founded in 1742.\n\nIts mill closed. The town makes glass.",
    "The Ostrel is a river. Barges carry coal on it.\n\nIt floods in spring.",
    "Brindle Moss is a fern. It grows on old walls.",
]
OTHER = ["Ostrel Bridge opened in 1802. It is made of stone.", "Tolley is a village."]
TARGET, CONTRAST = " 1742", " 1802"


def inp():
    return pla.ContextInput(DOCS, "When was Harrowgate founded?")


def other():
    return pla.ContextInput(OTHER, "When did Ostrel Bridge open?")


def count_engine_calls(monkeypatch, model):
    calls = []
    original = model.score_pairs

    def counting(sequences, targets, share_prefix=True, **kwargs):
        calls.append(len(sequences))
        return original(sequences, targets, share_prefix, **kwargs)

    monkeypatch.setattr(model, "score_pairs", counting)
    return calls


def all_refined(model, **kwargs):
    """Hierarchical ablation that refines every unit: sentence leave-one-out."""
    return pla.HierarchicalAblation(model).attribute(inp(), keep=9, noise_floor=False, **kwargs)


def test_a_hierarchical_contrast_refined_everywhere_is_the_contrastive_ablation(exact):
    got = all_refined(exact, target=TARGET, contrast=CONTRAST)
    want = pla.FeatureAblation(exact).attribute(
        inp(), target=TARGET, contrast=CONTRAST, noise_floor=False
    )
    np.testing.assert_allclose(got.seq_attr, want.seq_attr, atol=1e-4)
    np.testing.assert_allclose(got.token_attr, want.token_attr, atol=1e-4)
    assert got.contrast_logprob == pytest.approx(want.contrast_logprob, abs=1e-4)


def test_a_hierarchical_chat_attribution_refined_everywhere_is_the_chat_ablation(exact):
    got = all_refined(exact, target=TARGET, chat={"system": "Answer briefly."})
    want = pla.FeatureAblation(exact).attribute(
        inp(), target=TARGET, chat={"system": "Answer briefly."}, noise_floor=False
    )
    np.testing.assert_allclose(got.seq_attr, want.seq_attr, atol=1e-4)
    assert got.settings["chat"] == {"system": "Answer briefly."}


def test_each_level_of_a_batch_is_one_engine_call_for_all_inputs(exact, monkeypatch):
    method = pla.HierarchicalAblation(exact)
    alone = [
        method.attribute(x, target=t, keep=1, noise_floor=False)
        for x, t in ((inp(), TARGET), (other(), CONTRAST))
    ]
    calls = count_engine_calls(monkeypatch, exact)
    batch = method.attribute_batch(
        [inp(), other()], targets=[TARGET, CONTRAST], keep=1, noise_floor=False
    )
    assert len(calls) == 2  # paragraphs of both inputs, then sentences of both
    for got, want in zip(batch, alone, strict=True):
        np.testing.assert_allclose(got.seq_attr, want.seq_attr, atol=1e-4)
        assert got.levels[1]["units"] == want.levels[1]["units"]
        assert got.stats["n_inputs"] == 2


def test_small_chunks_give_the_same_hierarchical_result(exact, monkeypatch):
    whole = pla.HierarchicalAblation(exact).attribute(inp(), target=TARGET, keep=1)
    monkeypatch.setattr(pyllmattr.pipeline.scoring, "CHUNK_TOKENS", 200)
    chunked = pla.HierarchicalAblation(exact).attribute(inp(), target=TARGET, keep=1)
    assert chunked.stats["n_score_calls"] > chunked.stats["n_calls"] == 2
    np.testing.assert_allclose(chunked.seq_attr, whole.seq_attr, atol=1e-4)


def test_the_noise_floor_is_measured_on_the_target_model(exact):
    result = pla.HierarchicalAblation(exact).attribute(inp(), target=TARGET, keep=1)
    alone = exact.score_pairs([exact.tokenize(result.prompt)], [TARGET], share_prefix=False)[0]
    assert result.noise_floor == pytest.approx(abs(result.target_logprob - alone.sum()))
    assert result.token_noise_floor.shape == (len(result.target_ids),)


def test_context_cite_batch_results_equal_each_input_alone(exact):
    method = pla.ContextCite(exact)
    options = {"n_samples": 16, "folds": 2, "seed": 5, "noise_floor": False}
    batch = method.attribute_batch([inp(), other()], targets=[TARGET, CONTRAST], **options)
    for x, t, got in zip((inp(), other()), (TARGET, CONTRAST), batch, strict=True):
        want = method.attribute(x, target=t, **options)
        np.testing.assert_allclose(got.seq_attr, want.seq_attr, atol=1e-4)


def test_context_cite_regresses_a_contrast_when_asked_to(exact):
    result = pla.ContextCite(exact).attribute(
        inp(), target=TARGET, contrast=CONTRAST, output="attr_target", n_samples=16, folds=2,
        seed=0, noise_floor=False,
    )  # fmt: skip
    assert result.contrast_tokens is not None and result.attr_target == "log_prob"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"contrast": CONTRAST}, "with contrast= pass output='attr_target'"),
        ({"attr_target": "prob"}, "pass output='attr_target'"),
        ({"num_trials": 2}, "num_trials must be 1"),
    ],
)
def test_context_cite_misuse_is_explained(exact, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pla.ContextCite(exact).attribute(inp(), target=TARGET, n_samples=16, **kwargs)


def test_a_proxy_that_is_the_target_model_is_refused(exact):
    with pytest.raises(ValueError, match="proxy is the target model itself"):
        pla.HierarchicalAblation(exact).attribute(inp(), target=TARGET, proxy=exact)


def test_hierarchical_ablation_is_deterministic_so_one_trial(exact):
    with pytest.raises(ValueError, match="num_trials must be 1"):
        pla.HierarchicalAblation(exact).attribute(inp(), target=TARGET, num_trials=2)


def test_a_proxy_scores_the_contrast_re_tokenized(exact, tiny):
    result = pla.HierarchicalAblation(exact).attribute(
        inp(), target=TARGET, contrast=CONTRAST, levels=("document", "sentence"), keep=1,
        proxy=tiny, noise_floor=False,
    )  # fmt: skip
    want = pla.FeatureAblation(exact).attribute(
        inp(), target=TARGET, contrast=CONTRAST, noise_floor=False
    )
    refined = np.array(result.refined)
    np.testing.assert_allclose(result.seq_attr[refined], want.seq_attr[refined], atol=1e-4)
    assert result.levels[0]["model"] == "proxy" and result.settings["proxy"].endswith(".gguf")
