"""Agreement with Captum 0.9 on the same model, features, baselines and target.

Captum runs on SmolLM2 loaded into PyTorch by transformers from the same GGUF
(dequantized to f32), in its single-pass mode (forward_in_tokens=False, exact
teacher forcing); pyllmattr runs on the Q4_1 GGUF through llama.cpp.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput
from transformers import LlamaForCausalLM

import pyllmattr as pla

pytestmark = pytest.mark.torch

TEMPLATE = "{} lives in {}, {} and is a {}. {} personal interests include"
VALUES = ["Dave", "Palm Coast", "FL", "lawyer", "His"]
BASELINES = ["Sarah", "Seattle", "WA", "doctor", "Her"]


@pytest.fixture(scope="module")
def captum_llm(smollm2_torch):
    # smollm2_torch is transformers' own AutoModelForCausalLM/AutoTokenizer.from_pretrained
    # of the GGUF (gguf_file=..., dtype=float32), shared with the PyTorch-path tests.
    model, tokenizer = smollm2_torch.model, smollm2_torch.tokenizer
    assert isinstance(model, LlamaForCausalLM) and model.dtype == torch.float32
    return LLMAttribution(FeatureAblation(model), tokenizer), tokenizer


def test_template_feature_ablation_agrees_with_captum(smollm2, captum_llm):
    llm_attr, tokenizer = captum_llm
    ours = pla.FeatureAblation(smollm2).attribute(
        pla.TextTemplateInput(TEMPLATE, VALUES, baselines=BASELINES),
        gen_args={"max_new_tokens": 10},
    )
    captum_input = TextTemplateInput(TEMPLATE, values=VALUES, baselines=BASELINES)
    # Same prompt tokens and the same target ids on both sides.
    assert tokenizer(captum_input.to_model_input())["input_ids"] == smollm2.tokenize(ours.prompt)
    theirs = llm_attr.attribute(
        captum_input, target=torch.tensor(ours.target_ids), forward_in_tokens=False
    )
    seq_r = np.corrcoef(ours.seq_attr, theirs.seq_attr.numpy())[0, 1]
    token_r = np.corrcoef(ours.token_attr.ravel(), theirs.token_attr.numpy().ravel())[0, 1]
    assert seq_r >= 0.95
    assert token_r >= 0.95
