"""load_gguf(requantize=...) / requantized_copy: an explicit, cached conversion that never
touches the user's file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

import pyllmattr as pla

PROMPT = "The quick brown fox jumps over the lazy dog"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_conversion_leaves_the_source_file_untouched(tiny_path: Path, tmp_path: Path) -> None:
    before = (_digest(tiny_path), tiny_path.stat().st_mtime_ns)
    copy = pla.requantized_copy(tiny_path, "q8_0", cache_dir=tmp_path)
    assert copy.parent == tmp_path and copy != tiny_path
    assert (_digest(tiny_path), tiny_path.stat().st_mtime_ns) == before


def test_second_call_reuses_the_cached_copy(tiny_path: Path, tmp_path: Path) -> None:
    first = pla.requantized_copy(tiny_path, "q8_0", cache_dir=tmp_path)
    written = first.stat().st_mtime_ns
    again = pla.requantized_copy(tiny_path, "Q8_0", cache_dir=tmp_path)
    assert again == first and again.stat().st_mtime_ns == written
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no partial files left


def test_cache_dir_defaults_to_the_environment_variable(
    tiny_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYLLMATTR_CACHE_DIR", str(tmp_path / "cache"))
    assert pla.requantized_copy(tiny_path, "f16").parent == tmp_path / "cache"


def test_requantized_model_scores_close_to_the_original(tiny_path: Path, tmp_path: Path) -> None:
    with pla.load_gguf(tiny_path, n_ctx=256, n_threads=2) as original:
        seqs = [original.tokenize(PROMPT), original.tokenize(PROMPT[:20])]
        target = original.tokenize(" and runs", add_special=False)
        reference = original.score(seqs, target)
    with pla.load_gguf(
        tiny_path, n_ctx=256, n_threads=2, requantize="q8_0", cache_dir=tmp_path
    ) as converted:
        assert converted.path.name.endswith(".Q8_0.gguf")
        scores = converted.score(seqs, target)
    assert np.abs(scores - reference).max() < 0.05
    assert not np.array_equal(scores, reference)  # the weights really changed


def test_unknown_type_is_refused(tiny_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown type 'q3_z'.*q8_0"):
        pla.load_gguf(tiny_path, requantize="q3_z", cache_dir=tmp_path)


def test_unwritable_cache_folder_is_a_clear_error(tiny_path: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot create the cache folder.*PYLLMATTR_CACHE"):
        pla.requantized_copy(tiny_path, "q8_0", cache_dir=blocker / "cache")


def test_requantize_needs_a_path_not_a_llama_cpp_object(tiny_path: Path) -> None:
    llm = llama_cpp.Llama(str(tiny_path), n_ctx=64, verbose=False)
    try:
        with pytest.raises(ValueError, match="requantize needs the .gguf path"):
            pla.load_gguf(llm, requantize="q8_0")
    finally:
        llm.close()


def test_q8_0_attributions_agree_with_the_shipped_weights(smollm2, smollm2_q8_path: Path) -> None:
    from prompts import PALM_COAST

    def token_attributions(model) -> np.ndarray:
        inp = pla.TextTokenInput(PALM_COAST, model)
        result = pla.FeatureAblation(model).attribute(inp, target=" family and friends")
        return result.token_attr.ravel()

    with pla.load_gguf(smollm2_q8_path, n_ctx=2048, n_threads=2) as q8:
        converted = token_attributions(q8)
    assert np.corrcoef(token_attributions(smollm2), converted)[0, 1] >= 0.95


def test_f16_copy_computes_what_the_weights_define(
    smollm2, smollm2_torch, smollm2_path: Path, tmp_path: Path
) -> None:
    """Q4_1 (and Q8_0) kernels quantize activations to 8 bits; an F16 copy does not, so it
    scores like PyTorch's float32 on the same dequantized weights (measured: 0.002 nats
    mean per token, against 0.07 for the Q4_1 file itself)."""
    from prompts import PALM_COAST

    prompt = smollm2.tokenize(PALM_COAST)
    target = smollm2.tokenize(
        " He is married and has two children, who both study law in Florida. On Sundays the"
        " family drives to the coast and cooks dinner together.",
        add_special=False,
    )
    exact = smollm2_torch.score([prompt], target)[0]
    shipped = smollm2.score([prompt], target, share_prefix=False)[0]
    f16_path = pla.requantized_copy(smollm2_path, "f16", cache_dir=tmp_path)
    with pla.load_gguf(f16_path, n_ctx=2048, n_threads=2) as f16:
        converted = f16.score([prompt], target, share_prefix=False)[0]
    assert np.abs(converted - exact).mean() < 0.01
    assert np.abs(converted - exact).mean() < np.abs(shipped - exact).mean() / 10
