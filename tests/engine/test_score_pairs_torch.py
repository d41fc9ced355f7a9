"""score_pairs on the PyTorch model, and the trie count both back ends report."""

from __future__ import annotations

import numpy as np
import pytest
from prompts import PALM_COAST

import pyllmattr as pla
from pyllmattr.models import interface
from pyllmattr.models.interface import trie_size

pytestmark = pytest.mark.torch

TARGETS = [" golf", " reading books", " Italian food and wine", " his family"]


def brute_force_trie_size(sequences):
    return len({tuple(s[:end]) for s in sequences for end in range(1, len(s) + 1)})


def test_each_pair_scores_as_its_own_score_call(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)
    sequences = [ids, ids[:-3], ids[:10] + ids[12:], ids]
    pairs = smollm2_torch.score_pairs(sequences, TARGETS)
    for pair, seq, target in zip(pairs, sequences, TARGETS, strict=True):
        np.testing.assert_allclose(pair, smollm2_torch.score([seq], target)[0], atol=1e-4)


def test_batches_split_by_the_token_budget_give_the_same_scores(smollm2_torch):
    small = pla.load_torch(smollm2_torch.model, smollm2_torch.tokenizer, max_batch_tokens=60)
    ids = small.tokenize(PALM_COAST)
    sequences = [ids[: 5 + 3 * k] for k in range(8)]
    targets = [TARGETS[k % 4] for k in range(8)]
    pairs, stats = small.score_pairs(sequences, targets, return_stats=True)
    assert stats.n_decode_calls > 1
    for pair, expected in zip(pairs, smollm2_torch.score_pairs(sequences, targets), strict=True):
        np.testing.assert_allclose(pair, expected, atol=1e-4)


def test_identical_pairs_are_scored_once_and_stats_count_the_trie(smollm2_torch):
    ids = smollm2_torch.tokenize(PALM_COAST)[:12]
    sequences = [ids, ids, ids, ids[:8]]
    targets = [" golf", " golf", " books", " golf"]
    pairs, stats = smollm2_torch.score_pairs(sequences, targets, return_stats=True)
    np.testing.assert_array_equal(pairs[0], pairs[1])
    target_ids = [smollm2_torch.tokenize(t, add_special=False) for t in targets]
    full = [s + t for s, t in zip(sequences, target_ids, strict=True)]
    assert stats.n_unique == 3
    assert stats.n_trie == brute_force_trie_size(full)
    assert stats.n_naive == sum(len(f) for f in full)


def test_bad_pairs_raise_value_errors_naming_the_pair(smollm2_torch):
    with pytest.raises(ValueError, match="pair 1.*is empty"):
        smollm2_torch.score_pairs([[1, 2], [3]], [[5], []])
    with pytest.raises(ValueError, match="2 sequences but 1 targets"):
        smollm2_torch.score_pairs([[1, 2], [3]], [[5]])
    with pytest.raises(ValueError, match="pair 0's sequence .* exceeds the model's context"):
        smollm2_torch.score_pairs([[1] * smollm2_torch.n_ctx], [[5]])


@pytest.mark.parametrize("seed", range(5))
def test_the_trie_count_equals_the_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(0, 3, size=rng.integers(1, 8)).tolist() for _ in range(12)]
    sequences += sequences[:3]  # duplicates count once
    assert trie_size(sequences) == brute_force_trie_size(sequences)


def test_the_trie_count_of_a_512_token_leave_one_out_reads_each_token_once(monkeypatch):
    compared = [0]
    common_prefix = interface.common_prefix

    def counting_common_prefix(a, b):
        n = common_prefix(a, b)
        compared[0] += n + 1  # the tokens the comparison looked at
        return n

    monkeypatch.setattr(interface, "common_prefix", counting_common_prefix)
    n, target = 512, [1000, 1001]
    ids = list(range(n))
    sequences = [ids + target] + [ids[:i] + ids[i + 1 :] + target for i in range(n)]
    # Sorted: the full prompt, then the sequences removing token n - 1, n - 2, ..., 0;
    # the one removing token i (n + 1 tokens) shares i tokens with the one before it.
    expected = (n + 2) + sum(n + 1 - i for i in range(n))
    assert trie_size(sequences) == expected
    assert compared[0] <= sum(len(s) + 1 for s in sequences)
