"""The engine's options, strategies and stats cross into Python as named, typed values."""

from __future__ import annotations

import pytest

import pyllmattr as pla
from pyllmattr._bench import load_gguf_layout
from pyllmattr._native import _core
from pyllmattr.models import REQUANTIZE_TYPES


def test_the_options_in_effect_are_reported_by_name(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=64, n_threads=1) as model:
        options = model._engine.options
    assert options.layout == _core.Layout.exact  # the default
    assert options.flash_attn == _core.FlashAttn.off  # the exact layout runs without it
    assert options.n_batch <= options.n_ctx  # llama.cpp caps the batch at the context
    assert options.max_branches == 8
    assert options.n_threads == 1


def test_the_flash64_layout_reports_its_own_options(tiny_path):
    with load_gguf_layout(tiny_path, "flash64", n_ctx=64, n_threads=1) as model:
        options = model._engine.options
    assert options.layout == _core.Layout.flash64
    assert options.flash_attn == _core.FlashAttn.on  # the flash64 layout forces it
    assert options.n_batch % 64 == 0  # whole 64-cell tiles
    assert options.max_branches == 64


def test_strategies_have_the_names_users_give(tiny):
    labels = [s.label for s in _core.Strategy.__members__.values()]
    assert labels == ["trie", "trie-per-wave", "independent"]
    assert tiny.sharing == "trie"
    _, stats = tiny.score([[1, 2, 3]], [4], strategy="trie-per-wave", return_stats=True)
    assert stats.strategy == "trie-per-wave"


def test_an_unknown_strategy_names_the_known_ones(tiny):
    with pytest.raises(ValueError, match="unknown strategy 'greedy'.*trie-per-wave"):
        tiny.score([[1, 2, 3]], [4], strategy="greedy")


def test_conversion_targets_are_the_engines_file_types():
    assert set(REQUANTIZE_TYPES) == {"f16", "q4_0", "q8_0", "q4_k_m"}
    assert all(isinstance(t, _core.FileType) for t in REQUANTIZE_TYPES.values())


def test_test_hooks_live_in_the_testing_seam_only():
    assert not any("plan_slack" in name for name in dir(_core.Engine))
    assert not hasattr(_core, "plan_stats")
    assert hasattr(_core.testing, "set_plan_slack") and hasattr(_core.testing, "plan_stats")
