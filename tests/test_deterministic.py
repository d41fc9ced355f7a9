"""deterministic=True: a sequence's log-probs do not depend on what else is in the batch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PALM_COAST

import pyllmattr as pla

LONG = (
    PALM_COAST + " family. The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars "
    "in Paris, France. It is named after the engineer Gustave Eiffel, whose company designed it. "
    "In 1969, Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while "
    "Michael Collins stayed in orbit aboard the command module. Meanwhile, on the other side "
    "of the world, a small bakery in Lyon sold its first croissant of the morning."
)


@pytest.fixture(scope="module", params=["Q4_1", "Q8_0"])
def deterministic(request, smollm2_path, smollm2_q8_path):
    path = smollm2_path if request.param == "Q4_1" else smollm2_q8_path
    with pla.load_gguf(path, n_ctx=4096, n_threads=2, deterministic=True) as model:
        yield model


def test_a_sequence_scores_the_same_alone_and_in_any_slot(deterministic):
    ids = deterministic.tokenize(PALM_COAST)
    target = deterministic.generate(ids, max_new_tokens=6)
    others = [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 3)]
    alone = deterministic.score([ids], target, share_prefix=False)[0]
    for slot in (0, 3, len(others)):
        mixed = others[:slot] + [ids] + others[slot:]
        np.testing.assert_array_equal(deterministic.score(mixed, target)[slot], alone)


def test_shared_prefixes_give_exactly_the_independent_scores(deterministic):
    ids = deterministic.tokenize(LONG)
    assert len(ids) > 2 * 64  # whole 64-token blocks are shared
    target = deterministic.tokenize(" It opened in 1889.", add_special=False)
    sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 7)]
    shared, stats = deterministic.score(sequences, target, return_stats=True)
    alone = deterministic.score(sequences, target, share_prefix=False)
    np.testing.assert_array_equal(shared, alone)
    assert stats.n_decoded < 0.8 * stats.n_naive


def test_waves_and_padding_fit_a_small_context(tiny_path, exact):
    ids = exact.tokenize(LONG)[:100]
    sequences = [ids[:i] + ids[i + 1 :] for i in range(0, 100, 4)]
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, deterministic=True) as model:
        shared, stats = model.score(sequences, " Paris", return_stats=True)
        alone = model.score(sequences, " Paris", share_prefix=False)
    # f32 weights go through tiled matmuls whose rounding depends on the number of rows;
    # with nothing quantized downstream the difference stays at float rounding.
    np.testing.assert_allclose(shared, alone, rtol=0, atol=1e-5)
    assert stats.n_waves > 1
    assert stats.n_padding > 0


def test_deterministic_mode_needs_flash_attention(tiny_path):
    with pytest.raises(ValueError, match="flash attention"):
        pla.load_gguf(tiny_path, deterministic=True, flash_attn="off")


def test_deterministic_attributions_report_a_zero_noise_floor(deterministic):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL and is a")
    result = pla.FeatureAblation(deterministic).attribute(inp, target=" lawyer")
    assert result.noise_floor == 0.0
    assert not result.below_noise().any()
    assert "batch-invariant scores" in result._repr_html_()
