"""The engine on the real SmolLM2-135M-Instruct GGUF (Q4_1, as shipped)."""

from __future__ import annotations

import numpy as np
import pytest
from prompts import PALM_COAST


def leave_one_out(ids):
    return [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]


def loo_attributions(scores):
    totals = scores.sum(axis=1)
    return totals[0] - totals[1:]


def test_shared_scoring_agrees_with_scoring_each_sequence_alone(smollm2):
    ids = smollm2.tokenize(PALM_COAST)
    assert len(ids) >= 30
    target = smollm2.generate(ids, max_new_tokens=8)
    sequences = leave_one_out(ids)
    shared, stats = smollm2.score(sequences, target, return_stats=True)
    alone = smollm2.score(sequences, target, share_prefix=False)
    r = np.corrcoef(loo_attributions(shared), loo_attributions(alone))[0, 1]
    assert r >= 0.99
    # Decoded tokens: the trie minimum, far below scoring one by one.
    assert stats.n_decoded <= 1.05 * stats.n_trie
    assert stats.n_decoded < 0.65 * stats.n_naive  # leave-one-out shares about half


@pytest.mark.slow  # over a minute on a 2-core machine (durations of the full run)
def test_sequences_beyond_the_context_are_scored_in_waves(smollm2_path):
    import pyllmattr as pla

    with pla.load_gguf(smollm2_path, n_ctx=256, n_threads=2) as model:
        ids = model.tokenize(PALM_COAST * 3)[:90]
        target = model.generate(ids, max_new_tokens=8)
        sequences = leave_one_out(ids)  # 91 x ~94 tokens, 33x the context
        shared, stats = model.score(sequences, target, return_stats=True)
        alone = model.score(sequences, target, share_prefix=False)
    assert stats.n_waves > 1
    assert stats.n_decoded <= 1.05 * stats.n_trie
    r = np.corrcoef(loo_attributions(shared), loo_attributions(alone))[0, 1]
    assert r >= 0.99


def test_generation_continues_the_reference_prompt(smollm2):
    ids = smollm2.tokenize("The capital of France is")
    text = smollm2.detokenize(smollm2.generate(ids, max_new_tokens=5))
    assert "Paris" in text
