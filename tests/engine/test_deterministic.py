"""load_gguf(deterministic=...): which layout a model scores with, and when its scores are
guaranteed batch-invariant (the exact layout itself: test_exact.py)."""

from __future__ import annotations

import numpy as np
import pytest
from prompts import PALM_COAST

import pyllmattr as pla
from pyllmattr._bench import load_gguf_layout
from pyllmattr._native import _core
from pyllmattr.models.exactness import Layout, resolve_layout

LONG = (
    PALM_COAST + " family. The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars "
    "in Paris, France. It is named after the engineer Gustave Eiffel, whose company designed it. "
    "In 1969, Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while "
    "Michael Collins stayed in orbit aboard the command module. Meanwhile, on the other side "
    "of the world, a small bakery in Lyon sold its first croissant of the morning."
)


def test_the_default_is_exact_on_the_cpu_back_end():
    layout = resolve_layout(None, n_gpu_layers=0)
    assert layout is Layout.exact and layout.guaranteed(n_gpu_layers=0, n_swa=0)


@pytest.mark.parametrize("n_gpu_layers", [-1, 1, 33])
def test_gpu_layers_get_the_fast_layout_and_a_measured_noise_floor(n_gpu_layers):
    assert resolve_layout(None, n_gpu_layers) is Layout.fast


@pytest.mark.parametrize("n_gpu_layers", [-1, 1])
def test_the_exact_layout_on_a_gpu_is_not_guaranteed(n_gpu_layers):
    layout = resolve_layout(True, n_gpu_layers)
    assert layout is Layout.exact and not layout.guaranteed(n_gpu_layers, n_swa=0)


def test_deterministic_false_is_never_guaranteed():
    layout = resolve_layout(False, 0)
    assert not layout.guaranteed(0, n_swa=0) and not layout.batch_invariant


def test_the_flash64_layout_is_not_exact_on_sliding_window_models():
    assert Layout.flash64.guaranteed(0, n_swa=0) and not Layout.flash64.guaranteed(0, n_swa=24)
    assert Layout.exact.guaranteed(0, n_swa=24)


@pytest.mark.parametrize("bad", ["yes", 1, "flash32", "flash64", "exact"])
def test_unknown_deterministic_values_are_refused(bad):
    # flash64 is a benchmark-only layout (pyllmattr._bench), not a deterministic= value
    with pytest.raises(ValueError, match="deterministic must be"):
        resolve_layout(bad, 0)


def test_python_and_the_engine_name_the_same_layouts():
    assert [layout.name for layout in Layout] == list(_core.Layout.__members__)
    assert all(Layout.of_native(layout.native) is layout for layout in Layout)


def test_a_model_with_gpu_layers_measures_its_noise_floor(tiny_path, monkeypatch):
    # This CPU build keeps every layer on the CPU, but the guarantee follows the request.
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, n_gpu_layers=-1) as model:
        assert not model.deterministic and model.layout is Layout.fast
        alone_calls = []
        score_pairs = model.score_pairs

        def spy(sequences, targets, share_prefix=True, **kwargs):
            alone_calls.append(not share_prefix)
            return score_pairs(sequences, targets, share_prefix, **kwargs)

        monkeypatch.setattr(model, "score_pairs", spy)
        inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast and is a")
        pla.FeatureAblation(model).attribute(inp, target=" lawyer")
    assert any(alone_calls)  # the reference prompt was scored alone for the noise floor


def test_the_flash64_layout_needs_flash_attention(tiny_path):
    with pytest.raises(ValueError, match="flash attention"):
        load_gguf_layout(tiny_path, "flash64", flash_attn="off")


def test_the_benchmark_switch_takes_no_deterministic_argument(tiny_path):
    with pytest.raises(ValueError, match="drop deterministic"):
        load_gguf_layout(tiny_path, "flash64", deterministic=True)


def test_the_flash64_layout_shares_64_token_blocks_exactly(smollm2_path):
    with load_gguf_layout(smollm2_path, "flash64", n_ctx=4096, n_threads=2) as model:
        assert model.deterministic and model.layout is Layout.flash64
        assert model.scores_are_exact  # SmolLM2 has no sliding window
        ids = model.tokenize(LONG)
        assert len(ids) > 2 * 64
        target = model.tokenize(" It opened in 1889.", add_special=False)
        sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 13)]
        shared, stats = model.score(sequences, target, return_stats=True)
        np.testing.assert_array_equal(shared, model.score(sequences, target, share_prefix=False))
    assert stats.n_padding > 0 and stats.n_decoded > stats.n_trie  # what the exact layout saves


def test_the_fast_layout_is_still_available(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, deterministic=False) as model:
        assert not model.deterministic and model.exact_block is None
        _, stats = model.score([[1, 2, 3], [1, 2, 4]], [5], return_stats=True)
    assert stats.n_padding == 0 and stats.n_decoded == stats.n_trie
