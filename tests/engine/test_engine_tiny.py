"""Scoring engine on a tiny random f32 llama (exact to ~1e-6 with flash attention off)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np
import pytest
from thread_watch import PythonThreadWatch

import pyllmattr as pla

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"


def leave_one_out(ids):
    return [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]


def test_tokenize_round_trips_text(tiny):
    ids = tiny.tokenize(PROMPT)
    assert tiny.detokenize(ids) == PROMPT


def test_scores_are_log_probabilities_per_target_token(tiny):
    ids = tiny.tokenize(PROMPT)
    target = tiny.tokenize(" golf and books", add_special=False)
    scores = tiny.score([ids, ids[:5]], target)
    assert scores.shape == (2, len(target))
    assert scores.dtype == np.float64
    assert np.all(scores < 0)


def test_scores_follow_the_chain_rule(exact):
    ids = exact.tokenize(PROMPT)
    t0, t1 = exact.tokenize(" golf club", add_special=False)[:2]
    joint = exact.score([ids], [t0, t1])[0]
    first = exact.score([ids], [t0])[0, 0]
    second = exact.score([ids + [t0]], [t1])[0, 0]
    np.testing.assert_allclose(joint, [first, second], atol=1e-5)


@pytest.mark.parametrize("strategy", ["trie", "trie-per-wave"])
def test_sharing_strategies_equal_independent_scoring(exact, strategy):
    ids = exact.tokenize(PROMPT)
    target = exact.tokenize(" golf and books", add_special=False)
    sequences = leave_one_out(ids)
    shared = exact.score(sequences, target, strategy=strategy)
    alone = exact.score(sequences, target, share_prefix=False)
    np.testing.assert_allclose(shared, alone, atol=1e-5)


def test_duplicates_and_nested_sequences_get_their_own_rows(exact):
    ids = exact.tokenize(PROMPT)
    target = ids[5:8]
    # A sequence that is another's prefix, one that continues into the target,
    # exact duplicates, and a single token.
    sequences = [ids[:5], ids[:5], ids[:6], ids[:5] + target[:1], ids, ids[:1], ids[:6]]
    shared = exact.score(sequences, target)
    alone = exact.score(sequences, target, share_prefix=False)
    np.testing.assert_allclose(shared, alone, atol=1e-5)
    np.testing.assert_array_equal(shared[0], shared[1])


@pytest.mark.parametrize("max_branches", [1, 2, 3, 7])
def test_results_do_not_depend_on_the_wave_size(tiny_path, exact, max_branches):
    ids = exact.tokenize(PROMPT)
    target = exact.tokenize(" golf", add_special=False)
    sequences = leave_one_out(ids)
    expected = exact.score(sequences, target, share_prefix=False)
    with pla.load_gguf(
        tiny_path,
        n_ctx=256,
        n_threads=2,
        flash_attn="off",
        kv_precision="f32",
        max_branches=max_branches,
        n_batch=16,
    ) as model:
        scores, stats = model.score(sequences, target, return_stats=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert stats.n_waves >= len(sequences) / max_branches


def test_more_sequences_than_fit_in_the_context_are_scored_in_waves(tiny_path, exact):
    rng = np.random.default_rng(1)
    base = exact.tokenize(PROMPT * 3)[:60]
    sequences = []
    for _ in range(40):  # 40 x ~62 tokens: ten times the 256-cell context
        keep = rng.random(len(base)) > 0.1
        sequences.append([t for t, k in zip(base, keep, strict=True) if k])
    target = exact.tokenize(" golf", add_special=False)
    expected = exact.score(sequences, target, share_prefix=False)
    with pla.load_gguf(
        tiny_path, n_ctx=256, n_threads=2, flash_attn="off", kv_precision="f32"
    ) as model:
        scores, stats = model.score(sequences, target, return_stats=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert stats.n_waves > 1
    assert stats.n_decoded == stats.n_trie < stats.n_naive


def test_decoded_tokens_equal_the_trie_minimum(tiny):
    ids = tiny.tokenize(PROMPT)
    target = tiny.tokenize(" golf and books", add_special=False)
    _, stats = tiny.score(leave_one_out(ids), target, return_stats=True)
    n = len(ids)
    # Removing token i shares i tokens with the sorted neighbour: the trie holds the
    # full prompt plus, for each i, n - i - 1 suffix tokens, plus every leaf's target.
    assert stats.strategy == "trie"
    assert stats.n_decoded == stats.n_trie
    assert stats.n_naive == (n + len(target)) + n * (n - 1 + len(target))
    assert stats.n_decoded < 0.65 * stats.n_naive  # leave-one-out shares about half


def test_string_target_is_tokenized_without_special_tokens(tiny):
    ids = tiny.tokenize(PROMPT)
    by_text = tiny.score([ids], " golf")
    by_ids = tiny.score([ids], tiny.tokenize(" golf", add_special=False))
    np.testing.assert_array_equal(by_text, by_ids)


def test_progress_reports_decoded_tokens_up_to_the_total(tiny):
    ids = tiny.tokenize(PROMPT)
    calls = []
    _, stats = tiny.score(
        leave_one_out(ids), " golf", progress=lambda d, t: calls.append((d, t)), return_stats=True
    )
    assert calls[-1] == (stats.n_decoded, stats.n_decoded)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_returning_false_cancels_and_the_model_stays_usable(tiny):
    ids = tiny.tokenize(PROMPT)
    before = tiny.score([ids], " golf")
    with pytest.raises(pla.Cancelled):
        tiny.score(leave_one_out(ids), " golf", progress=lambda d, t: False)
    np.testing.assert_array_equal(tiny.score([ids], " golf"), before)


def test_cancel_token_set_before_the_call_cancels(tiny):
    token = pla.CancelToken()
    token.cancel()
    with pytest.raises(pla.Cancelled):
        tiny.score([tiny.tokenize(PROMPT)], " golf", cancel=token)


def test_generate_is_greedy_and_deterministic(tiny):
    ids = tiny.tokenize(PROMPT)
    first = tiny.generate(ids, max_new_tokens=6, stop_at_eos=False)
    assert len(first) == 6
    assert tiny.generate(ids, max_new_tokens=6, stop_at_eos=False) == first
    # Greedy: each generated token is the most likely one among a few candidates.
    candidates = sorted({first[0], 0, 1, 2, 100, 1000})
    best = max(candidates, key=lambda t: tiny.score([ids], [t])[0, 0])
    assert best == first[0]


def test_sampling_is_reproducible_with_a_seed(tiny):
    ids = tiny.tokenize(PROMPT)
    a = tiny.generate(ids, 8, temperature=1.0, top_p=0.95, seed=7, stop_at_eos=False)
    b = tiny.generate(ids, 8, temperature=1.0, top_p=0.95, seed=7, stop_at_eos=False)
    assert a == b


def test_gil_is_released_while_scoring(tiny):
    ids = tiny.tokenize(PROMPT)
    sequences = leave_one_out(ids) * 4
    with PythonThreadWatch() as watch:
        start = time.monotonic()
        tiny.score(sequences, " golf", share_prefix=False)
        end = time.monotonic()
    # A call that held the GIL would keep the thread out for all of it (the Python
    # around the engine call is a few milliseconds); it got in in every half of it.
    assert watch.longest_pause(start, end) < (end - start) / 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_the_process_loads_a_single_libllama(tiny):
    # both users of libllama are loaded: llama_cpp (imported above) and pyllmattr

    maps = Path("/proc/self/maps").read_text().splitlines()
    files = {line.split()[-1] for line in maps if "libllama" in line}
    assert len(files) == 1, files


def test_a_borrowed_llama_cpp_model_scores_like_a_loaded_one(tiny_path, tiny):
    llm = llama_cpp.Llama(str(tiny_path), n_ctx=64, verbose=False)
    model = pla.load_gguf(llm, n_ctx=512, n_threads=2)
    ids = tiny.tokenize(PROMPT)
    np.testing.assert_array_equal(model.score([ids], " golf"), tiny.score([ids], " golf"))
    model.close()
    model.close()  # closing twice is harmless
