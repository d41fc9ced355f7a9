"""score_pairs: every sequence scored with its own target, in one engine call."""

from __future__ import annotations

import numpy as np
import pytest
from prompts import PALM_COAST

import pyllmattr as pla

TARGETS = [" golf", " reading books", " Italian food and wine", " his family"]


def one_call_per_pair(model, sequences, targets, **options):
    return [model.score([s], t, **options)[0] for s, t in zip(sequences, targets, strict=True)]


def assert_pairs_equal(actual, expected, atol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=0, atol=atol)


def test_each_pair_scores_as_its_own_score_call(exact):
    ids = exact.tokenize(PALM_COAST)
    sequences = [ids, ids[:-3], ids[:10] + ids[12:], ids]
    pairs = exact.score_pairs(sequences, TARGETS)
    lengths = [len(exact.tokenize(t, add_special=False)) for t in TARGETS]
    assert [p.shape for p in pairs] == [(n,) for n in lengths]
    assert_pairs_equal(pairs, one_call_per_pair(exact, sequences, TARGETS), atol=1e-5)


@pytest.mark.parametrize("strategy", ["trie", "trie-per-wave"])
def test_sharing_strategies_equal_independent_scoring(exact, strategy):
    ids = exact.tokenize(PALM_COAST)
    sequences = [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 4)]
    targets = [TARGETS[i % 4] for i in range(len(sequences))]
    shared = exact.score_pairs(sequences, targets, strategy=strategy)
    alone = exact.score_pairs(sequences, targets, share_prefix=False)
    assert_pairs_equal(shared, alone, atol=1e-5)


def test_a_prompt_with_four_targets_is_decoded_once(tiny):
    prompt = tiny.tokenize(PALM_COAST)
    targets = [tiny.tokenize(t, add_special=False) for t in TARGETS]
    assert len({t[0] for t in targets}) == 4  # the targets branch at their first token
    _, stats = tiny.score_pairs([prompt] * 4, targets, return_stats=True)
    # The trie: the prompt's tokens once, then every target's tokens on its own branch.
    assert stats.n_trie == len(prompt) + sum(len(t) for t in targets)
    assert stats.n_decoded == stats.n_trie
    assert stats.n_naive == 4 * len(prompt) + sum(len(t) for t in targets)
    assert stats.n_unique == 4


def test_targets_that_share_their_first_tokens_share_them_in_the_trie(tiny):
    prompt = tiny.tokenize(PALM_COAST)
    short = tiny.tokenize(" reading", add_special=False)
    long = tiny.tokenize(" reading history books", add_special=False)
    assert long[: len(short)] == short
    _, stats = tiny.score_pairs([prompt, prompt], [short, long], return_stats=True)
    assert stats.n_trie == len(prompt) + len(long)
    assert stats.n_decoded == stats.n_trie


def test_identical_pairs_are_scored_once(exact):
    ids = exact.tokenize(PALM_COAST)
    targets = [" golf", " golf", " books"]
    pairs, stats = exact.score_pairs([ids, ids, ids], targets, return_stats=True)
    np.testing.assert_array_equal(pairs[0], pairs[1])
    assert stats.n_unique == 2
    golf, books = (len(exact.tokenize(t, add_special=False)) for t in (" golf", " books"))
    assert stats.n_trie == len(ids) + golf + books
    assert stats.n_naive == 3 * len(ids) + 2 * golf + books


def test_one_sequence_split_two_ways_gets_both_scores(exact):
    # prompt + target is the same token sequence in both pairs: one trie leaf, two rows.
    ids = exact.tokenize(PALM_COAST)
    pairs, stats = exact.score_pairs([ids[:-2], ids[:-1]], [ids[-2:], ids[-1:]], return_stats=True)
    assert stats.n_trie == len(ids)
    assert stats.n_unique == 2
    np.testing.assert_allclose(pairs[0][1:], pairs[1], atol=1e-5)
    assert_pairs_equal(
        pairs, one_call_per_pair(exact, [ids[:-2], ids[:-1]], [ids[-2:], ids[-1:]]), atol=1e-5
    )


def test_pairs_of_mixed_lengths_and_nested_sequences(exact):
    ids = exact.tokenize(PALM_COAST)
    sequences = [ids[:1], ids[:5], ids[:5], ids[:6], ids, ids[:3] + ids[20:]]
    targets = [ids[1:3], ids[5:6], ids[5:12], ids[6:7], TARGETS[2], ids[:2]]
    pairs = exact.score_pairs(sequences, targets)
    assert [len(p) for p in pairs] == [2, 1, 7, 1, len(exact.tokenize(TARGETS[2], False)), 2]
    assert_pairs_equal(pairs, one_call_per_pair(exact, sequences, targets), atol=1e-5)


def test_pairs_beyond_the_context_are_scored_in_waves(tiny_path, exact):
    ids = exact.tokenize(PALM_COAST * 2)[:60]
    sequences = [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    targets = [TARGETS[i % 4] for i in range(len(sequences))]
    expected = exact.score_pairs(sequences, targets, share_prefix=False)
    with pla.load_gguf(
        tiny_path, n_ctx=256, n_threads=2, flash_attn="off", kv_precision="f32"
    ) as model:
        pairs, stats = model.score_pairs(sequences, targets, return_stats=True)
    assert_pairs_equal(pairs, expected, atol=1e-5)
    assert stats.n_waves > 1
    assert stats.n_decoded == stats.n_trie < stats.n_naive


def test_score_is_score_pairs_with_one_target_for_all(exact):
    ids = exact.tokenize(PALM_COAST)
    sequences = [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 5)]
    scores, stats = exact.score(sequences, " golf", return_stats=True)
    pairs, pair_stats = exact.score_pairs(sequences, [" golf"] * len(sequences), return_stats=True)
    np.testing.assert_array_equal(np.stack(pairs), scores)
    assert (pair_stats.n_decoded, pair_stats.n_trie, pair_stats.n_naive) == (
        stats.n_decoded,
        stats.n_trie,
        stats.n_naive,
    )


@pytest.fixture(scope="module")
def deterministic(smollm2_path):
    with pla.load_gguf(smollm2_path, n_ctx=2048, n_threads=2, deterministic=True) as model:
        yield model


def test_deterministic_pairs_equal_one_call_per_pair_exactly(deterministic):
    ids = deterministic.tokenize(PALM_COAST * 3)
    assert len(ids) > 64  # prompts share whole 64-token blocks
    sequences = [ids, ids, ids[:70] + ids[71:], ids[:-1], ids[:90]]
    targets = [TARGETS[0], TARGETS[1], TARGETS[0], TARGETS[2], TARGETS[3]]
    pairs, stats = deterministic.score_pairs(sequences, targets, return_stats=True)
    expected = one_call_per_pair(deterministic, sequences, targets)
    for actual, alone in zip(pairs, expected, strict=True):
        np.testing.assert_array_equal(actual, alone)
    assert stats.n_padding > 0


@pytest.mark.parametrize(
    "sequences, targets, message",
    [
        ([[1, 2], [3, 4]], [[5]], "2 sequences but 1 targets"),
        ([[1, 2], [3, 4]], [[5], []], "pair 1.*is empty"),
        ([[1, 2], [3, 4]], [[5], ""], "pair 1.*is empty"),
        ([[1, 2], []], [[5], [6]], "pair 1 is empty"),
        ([[1, 2]], [[5, -3]], "pair 0.*outside this model's vocabulary"),
        ([], [], "no pairs"),
        ([[1, 2]], " golf", "one target per sequence"),
    ],
)
def test_bad_pairs_raise_value_errors_naming_the_pair(tiny, sequences, targets, message):
    with pytest.raises(ValueError, match=message):
        tiny.score_pairs(sequences, targets)


def test_a_pair_longer_than_the_context_is_named(tiny):
    fits, too_long = [1] * 10, [1] * (tiny.n_ctx - 2)
    with pytest.raises(ValueError, match="pair 1's sequence plus its target is .* larger n_ctx"):
        tiny.score_pairs([fits, too_long], [[5], [5, 6, 7]])


def test_cancel_stops_a_call_midway_and_the_model_stays_usable(tiny):
    ids = tiny.tokenize(PALM_COAST * 3)
    sequences = [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    targets = [TARGETS[i % 4] for i in range(len(sequences))]
    before = tiny.score_pairs(sequences[:2], targets[:2])
    token = pla.CancelToken()
    decodes = []

    def cancel_after_the_first_decode(done: int, total: int) -> None:
        decodes.append(done)
        token.cancel()

    with pytest.raises(pla.Cancelled):
        tiny.score_pairs(sequences, targets, progress=cancel_after_the_first_decode, cancel=token)
    assert len(decodes) == 1
    assert_pairs_equal(tiny.score_pairs(sequences[:2], targets[:2]), before, atol=0)


def test_progress_counts_tokens_up_to_the_total(tiny):
    ids = tiny.tokenize(PALM_COAST)
    calls = []
    _, stats = tiny.score_pairs(
        [ids] * 4, TARGETS, progress=lambda d, t: calls.append((d, t)), return_stats=True
    )
    assert calls[-1] == (stats.n_decoded, stats.n_decoded)
