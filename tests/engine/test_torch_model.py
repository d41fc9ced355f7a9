"""The PyTorch model (pla.load_torch_gguf) behaves like the llama.cpp model of the same GGUF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prompts import PALM_COAST

import pyllmattr as pla

pytestmark = pytest.mark.torch

TARGET = " playing golf"
UNICODE = "Grüße aus Köln — 日本語のテキスト, naïve café ☕"


def test_tokens_are_those_of_llama_cpp(smollm2_torch, smollm2):
    for text in (PALM_COAST, UNICODE, " leading space", "<|im_start|>user"):
        assert smollm2_torch.tokenize(text) == smollm2.tokenize(text)
    special = "<|im_start|>user"
    assert smollm2_torch.tokenize(special, parse_special=True) == smollm2.tokenize(
        special, parse_special=True
    )


def test_token_bytes_match_llama_cpp_over_the_whole_vocabulary(smollm2_torch, smollm2):
    assert smollm2_torch.n_vocab == smollm2.n_vocab
    for render in (True, False):
        ours = [smollm2_torch.token_to_bytes(t, render) for t in range(smollm2.n_vocab)]
        theirs = [smollm2.token_to_bytes(t, render) for t in range(smollm2.n_vocab)]
        assert ours == theirs


def test_detokenize_restores_text_split_inside_characters(smollm2_torch):
    ids = smollm2_torch.tokenize(UNICODE)
    assert smollm2_torch.detokenize(ids) == UNICODE
    pieces = b"".join(smollm2_torch.token_to_bytes(t) for t in ids)
    assert pieces == UNICODE.encode("utf-8")


def test_special_tokens_are_those_of_llama_cpp(smollm2_torch, smollm2):
    assert smollm2_torch.bos_token_id == smollm2.bos_token_id
    assert smollm2_torch.eos_token_id == smollm2.eos_token_id


def test_batched_scores_equal_scoring_each_sequence_alone(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    sequences = [ids[:3], ids[:9], ids, ids[1:20], ids[:9]]
    batched, stats = smollm2_torch.score(sequences, TARGET, return_stats=True)
    alone = np.stack([smollm2_torch.score([s], TARGET)[0] for s in sequences])
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    assert batched.shape == (5, 2)
    assert stats.n_unique == 4
    assert stats.n_naive == sum(len(s) + 2 for s in sequences)


def test_batches_split_by_the_token_budget_give_the_same_scores(smollm2_path, smollm2_torch):
    small = pla.load_torch(smollm2_torch.model, smollm2_torch.tokenizer, max_batch_tokens=40)
    ids = small.tokenize(PALM_COAST)
    sequences = [ids[: 5 + k] for k in range(8)]
    scores, stats = small.score(sequences, TARGET, return_stats=True)
    assert stats.n_decode_calls > 1
    np.testing.assert_allclose(scores, smollm2_torch.score(sequences, TARGET), atol=1e-4)


def test_scores_agree_with_llama_cpp_within_quantization(smollm2_torch, smollm2):
    ids = smollm2.tokenize(PALM_COAST)
    sequences = [ids, ids[:12], ids[4:]]
    ours = smollm2_torch.score(sequences, TARGET)
    theirs = smollm2.score(sequences, TARGET, share_prefix=False)
    # Q4_1 in llama.cpp against its float32 dequantization in PyTorch.
    assert np.abs(ours - theirs).max() < 0.5
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99


def test_greedy_generation_matches_transformers_generate(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    ours = smollm2_torch.generate(ids, max_new_tokens=8)
    with torch.no_grad():
        out = smollm2_torch.model.generate(
            torch.tensor([ids]), max_new_tokens=8, do_sample=False, attention_mask=None
        )
    assert ours == out[0, len(ids) :].tolist()


def test_sampled_generation_is_reproducible_with_a_seed(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    options = {"max_new_tokens": 6, "temperature": 1.0, "top_k": 40, "top_p": 0.9}
    first = smollm2_torch.generate(ids, seed=7, **options)
    assert first == smollm2_torch.generate(ids, seed=7, **options)
    assert len(first) <= 6


def test_progress_reports_token_counts_up_to_the_total(smollm2_torch):
    small = pla.load_torch(smollm2_torch.model, smollm2_torch.tokenizer, max_batch_tokens=30)
    ids = small.tokenize(PALM_COAST)
    calls = []
    small.score([ids[:5], ids[:10], ids[:15]], TARGET, progress=lambda d, t: calls.append((d, t)))
    total = (5 + 2) + (10 + 2) + (15 + 2)
    assert len(calls) > 1
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_returning_false_cancels_and_the_model_stays_usable(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    with pytest.raises(pla.Cancelled):
        smollm2_torch.score([ids], TARGET, progress=lambda done, total: False)
    assert smollm2_torch.score([ids], TARGET).shape == (1, 2)


def test_a_cancelled_token_stops_scoring_and_generation(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    token = pla.CancelToken()
    token.cancel()
    with pytest.raises(pla.Cancelled):
        smollm2_torch.score([ids], TARGET, cancel=token)
    with pytest.raises(pla.Cancelled):
        smollm2_torch.generate(ids, max_new_tokens=3, cancel=token)


@pytest.mark.parametrize(
    "sequences, target, message",
    [
        ([[1, 2, 10**6]], [5], "outside this model's vocabulary"),
        ([[1, 2]], [], "target is empty"),
        (["some text"], [5], "got text"),
        ([[]], [5], "sequence 0 is empty"),
        ([], [5], "no sequences"),
    ],
)
def test_bad_scoring_input_raises_value_error(smollm2_torch, sequences, target, message):
    with pytest.raises(ValueError, match=message):
        smollm2_torch.score(sequences, target)


def test_load_torch_rejects_objects_that_are_not_hugging_face_models(smollm2_torch):
    with pytest.raises(ValueError, match="Hugging Face causal LM"):
        pla.load_torch(object(), smollm2_torch.tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        pla.load_torch(smollm2_torch.model, "not a tokenizer")


def test_load_torch_gguf_rejects_files_that_are_not_gguf(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        pla.load_torch_gguf(fake)


PERTURBATION_METHODS = [
    (pla.FeatureAblation, {}),
    (pla.ShapleyValueSampling, {"n_samples": 2}),
    (pla.ShapleyValues, {}),
    (pla.Lime, {"n_samples": 20}),
    (pla.KernelShap, {"n_samples": 20}),
]


@pytest.mark.parametrize(
    "method, options", PERTURBATION_METHODS, ids=[m.__name__ for m, _ in PERTURBATION_METHODS]
)
def test_every_perturbation_method_runs_on_the_torch_model(smollm2_torch, method, options):
    inp = pla.TextTemplateInput.from_text("Dave lives in Miami and is a", by="word")
    result = method(smollm2_torch).attribute(inp, target=" lawyer", seed=0, **options)
    assert result.seq_attr.shape == (inp.n_features,)
    assert result.token_attr.shape == (1, inp.n_features)
    assert np.all(np.isfinite(result.seq_attr))
    assert result.noise_floor < 1e-3  # only float rounding differs between batch shapes
    assert result.target_logprob == pytest.approx(
        smollm2_torch.score([smollm2_torch.tokenize(result.prompt)], " lawyer")[0].sum(),
        abs=1e-4,
    )
