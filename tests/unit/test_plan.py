"""The decode plan: what the scorer decodes, counted without a model."""

from pyllmattr._testing import plan_stats

TRIE, PER_WAVE, INDEPENDENT = "trie", "trie-per-wave", "independent"


def plan(sequences, target, strategy=TRIE, max_cells=1000, max_slots=64):
    return plan_pairs(sequences, [target] * len(sequences), strategy, max_cells, max_slots)


def plan_pairs(sequences, targets, strategy=TRIE, max_cells=1000, max_slots=64):
    return plan_stats(sequences, targets, strategy, max_cells, max_slots)


def test_shared_prefixes_are_counted_once():
    # [1,2,3]+[9] and [1,2,4]+[9] share [1,2]: 2 + 2 + 2 distinct prefixes.
    stats = plan([[1, 2, 3], [1, 2, 4]], [9])
    assert stats["n_trie"] == 6
    assert stats["n_emitted"] == 6
    assert stats["n_naive"] == 8


def test_duplicate_sequences_are_decoded_once():
    stats = plan([[5, 6], [5, 6], [5, 6]], [7, 8])
    assert stats["n_unique"] == 1
    assert stats["n_emitted"] == 4
    assert stats["n_naive"] == 12


def test_independent_strategy_decodes_everything():
    stats = plan([[1, 2, 3], [1, 2, 4], [1, 2, 4]], [9], strategy=INDEPENDENT)
    assert stats["n_emitted"] == stats["n_naive"] == 12
    assert stats["n_waves"] == 3


def test_waves_respect_the_cell_budget_and_keep_the_shared_prefix():
    # 10 sequences sharing a 20-token prefix, each adding 5 tokens, target 1:
    # 20 + 10 * 6 = 80 distinct prefixes; 30 cells allow 1 leaf per wave after the first
    # (20 kept + 6 new each), and the kept prefix is never decoded twice.
    prefix = list(range(100, 120))
    sequences = [prefix + [i] * 5 for i in range(10)]
    stats = plan(sequences, [7], max_cells=30)
    assert stats["n_trie"] == 80
    assert stats["n_emitted"] == 80
    assert stats["n_waves"] == 10


def test_per_wave_strategy_redecodes_the_prefix_in_every_wave():
    prefix = list(range(100, 120))
    sequences = [prefix + [i] * 5 for i in range(10)]
    stats = plan(sequences, [7], strategy=PER_WAVE, max_cells=60)
    # 60 cells: 20 + 6 + 6 + ... -> 6 leaves in the first wave, 4 in the second.
    assert stats["n_waves"] == 2
    assert stats["n_emitted"] == 80 + 20


def test_slot_limit_splits_waves():
    sequences = [[1, i] for i in range(2, 12)]
    stats = plan(sequences, [3], max_slots=4)
    assert stats["n_waves"] == 3
    assert stats["n_emitted"] == stats["n_trie"] == 1 + 10 * 2


def test_a_prompt_with_several_targets_is_one_branch_point():
    # [1,2,3] then [7,8] | [9] | [6,5,4]: 3 prompt tokens + 2 + 1 + 3 target tokens.
    stats = plan_pairs([[1, 2, 3]] * 3, [[7, 8], [9], [6, 5, 4]])
    assert stats["n_trie"] == stats["n_emitted"] == 3 + 6
    assert stats["n_naive"] == 3 * 3 + 6
    assert stats["n_leaves"] == stats["n_unique"] == 3


def test_the_trie_spans_prompt_and_target():
    # [1,2]+[3] is a prefix of [1]+[2,3,4]: one leaf's path holds both.
    stats = plan_pairs([[1, 2], [1]], [[3], [2, 3, 4]])
    assert stats["n_trie"] == stats["n_emitted"] == 4
    assert stats["n_leaves"] == 2


def test_one_full_sequence_split_two_ways_is_one_leaf_and_two_rows():
    stats = plan_pairs([[1, 2], [1, 2, 3], [1, 2]], [[3, 4], [4], [3, 4]])
    assert stats["n_leaves"] == 1
    assert stats["n_unique"] == 2
    assert stats["n_trie"] == stats["n_emitted"] == 4
