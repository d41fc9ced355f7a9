"""The default scoring of a CPU model is exact: a sequence's log-probs do not depend on the
batch it is scored in, its slot, or prefix sharing (bit for bit, on four kinds of model)."""

from __future__ import annotations

import numpy as np
import pytest
from exact_models import EXACT_MODELS, exact_model_path
from prompts import PALM_COAST

import pyllmattr as pla
from pyllmattr._testing import exact_self_check
from pyllmattr.models.exactness import Layout


@pytest.fixture(scope="module", params=EXACT_MODELS)
def model(request):
    with pla.load_gguf(exact_model_path(request.param), n_ctx=2048, n_threads=2) as m:
        yield m


@pytest.fixture(scope="module")
def prompt(model):
    return model.tokenize(PALM_COAST)


@pytest.fixture(scope="module")
def target(model):
    return model.tokenize(" wife and two kids.", add_special=False)


def test_the_default_layout_on_the_cpu_is_exact(model):
    assert model.layout is Layout.exact and model.deterministic
    assert model._engine.exact_verified


def test_a_sequence_scores_the_same_alone_and_in_any_slot(model, prompt, target):
    others = [prompt[:i] + prompt[i + 1 :] for i in range(0, len(prompt), 4)]
    alone = model.score([prompt], target, share_prefix=False)[0]
    for slot in (0, 3, len(others)):
        mixed = others[:slot] + [prompt] + others[slot:]
        np.testing.assert_array_equal(model.score(mixed, target)[slot], alone)


def test_prefix_shared_leave_one_out_equals_scoring_one_by_one(model, prompt, target):
    sequences = [prompt] + [prompt[:i] + prompt[i + 1 :] for i in range(1, len(prompt), 3)]
    shared, stats = model.score(sequences, target, return_stats=True)
    alone = model.score(sequences, target, share_prefix=False)
    np.testing.assert_array_equal(shared, alone)
    # Shared prefixes are copied, not recomputed: the trie is decoded once, over several waves.
    assert stats.n_decoded == stats.n_trie < stats.n_naive
    assert stats.n_waves > 1


def test_pairs_with_many_targets_score_as_each_pair_alone(model, prompt):
    # Leave-one-out with three targets per prompt, of different lengths, some sharing their
    # first token: prompts branch into targets inside blocks and across waves.
    targets = [" wife and two kids.", " wife.", " dog", " wife and a cat"]
    sequences = [prompt] + [prompt[:i] + prompt[i + 1 :] for i in range(1, len(prompt), 5)]
    pair_prompts = [s for s in sequences for _ in targets]
    pair_targets = [t for _ in sequences for t in targets]
    shared, stats = model.score_pairs(pair_prompts, pair_targets, return_stats=True)
    alone = model.score_pairs(pair_prompts, pair_targets, share_prefix=False)
    for a, b in zip(shared, alone, strict=True):
        np.testing.assert_array_equal(a, b)
    assert stats.n_decoded == stats.n_trie < stats.n_naive


def test_attributions_report_a_zero_noise_floor(model):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL and is a")
    result = pla.FeatureAblation(model).attribute(inp, target=" lawyer")
    assert result.noise_floor == 0.0


def test_the_self_check_fails_with_blocks_narrower_than_the_cpus_width(smollm2_path):
    with pla.load_gguf(smollm2_path, n_ctx=1024, n_threads=2) as m:
        block = m.exact_block
        assert exact_self_check(m, block, 16, 16)
        assert not exact_self_check(m, block // 2, 16, 16)


def test_exact_scoring_refuses_flash_attention(tiny_path):
    with pytest.raises(ValueError, match="without flash attention"):
        pla.load_gguf(tiny_path, deterministic=True, flash_attn="on")
