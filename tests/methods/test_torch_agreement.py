"""Perturbation methods give the same attributions on PyTorch and on llama.cpp.

Both models come from the same GGUF file: llama.cpp runs its Q4_1 weights, PyTorch
their float32 dequantization, so the values differ by quantization effects (and
llama.cpp's batch noise) only. The target is the model's own greedy continuation, as
when explaining what it generated.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla

pytestmark = pytest.mark.torch

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
GENERATE = {"max_new_tokens": 10}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize(
    "method, options",
    [(pla.FeatureAblation, {}), (pla.KernelShap, {"n_samples": 40, "seed": 0})],
    ids=["FeatureAblation", "KernelShap"],
)
def test_word_attributions_agree_between_torch_and_llama_cpp(
    smollm2, smollm2_torch, method, options
):
    inp = pla.TextTemplateInput.from_text(PROMPT)
    on_llama = method(smollm2).attribute(inp, gen_args=GENERATE, **options)
    on_torch = method(smollm2_torch).attribute(inp, target=on_llama.target_ids, **options)
    assert on_torch.input_features == on_llama.input_features
    assert pearson(on_torch.seq_attr, on_llama.seq_attr) >= 0.95
    assert pearson(on_torch.token_attr, on_llama.token_attr) >= 0.95


def test_template_feature_ablation_agrees_between_torch_and_llama_cpp(smollm2, smollm2_torch):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}, {state} and is a {job}. {pronoun} personal interests include",
        {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer", "pronoun": "His"},
        baselines={
            "name": "Sarah",
            "city": "Seattle",
            "state": "WA",
            "job": "doctor",
            "pronoun": "Her",
        },
    )
    on_llama = pla.FeatureAblation(smollm2).attribute(inp, gen_args=GENERATE)
    on_torch = pla.FeatureAblation(smollm2_torch).attribute(inp, target=on_llama.target_ids)
    assert pearson(on_torch.seq_attr, on_llama.seq_attr) >= 0.95
    assert pearson(on_torch.token_attr, on_llama.token_attr) >= 0.95
