"""Bad input raises ValueError with a message that says what to do."""

from __future__ import annotations

import pytest

import pyllmattr as pla


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="model file not found"):
        pla.load_gguf(tmp_path / "nope.gguf")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        pla.load_gguf(tmp_path)


def test_file_that_is_not_gguf(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ValueError, match="not a GGUF file"):
        pla.load_gguf(path)


def test_truncated_gguf(tmp_path, tiny_path):
    path = tmp_path / "truncated.gguf"
    path.write_bytes(tiny_path.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="could not load"):
        pla.load_gguf(path)


@pytest.mark.parametrize(
    "option",
    [
        {"n_ctx": 0},
        {"max_branches": 0},
        {"max_branches": 256},
        {"n_threads": 0},
        {"flash_attn": "maybe"},
        {"kv_precision": "q8"},
    ],
)
def test_bad_load_options(tiny_path, option):
    with pytest.raises(ValueError):
        pla.load_gguf(tiny_path, **option)


def test_out_of_vocabulary_token(tiny):
    with pytest.raises(ValueError, match="outside this model's vocabulary"):
        tiny.score([[1, 2, tiny.n_vocab]], [5])
    with pytest.raises(ValueError, match="outside this model's vocabulary"):
        tiny.score([[1, 2]], [-1])


def test_empty_target(tiny):
    with pytest.raises(ValueError, match="target is empty"):
        tiny.score([[1, 2]], [])


def test_target_text_that_tokenizes_to_nothing(tiny):
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        tiny.score([[1, 2]], "")


def test_empty_sequence(tiny):
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        tiny.score([[1, 2], []], [5])


def test_no_sequences(tiny):
    with pytest.raises(ValueError, match="no sequences"):
        tiny.score([], [5])


def test_prompt_plus_target_longer_than_the_context(tiny):
    with pytest.raises(ValueError, match="larger n_ctx"):
        tiny.score([[5] * tiny.n_ctx], [5])


def test_text_instead_of_token_ids(tiny):
    with pytest.raises(ValueError, match="tokenize"):
        tiny.score(["hello"], [5])


def test_unknown_strategy(tiny):
    with pytest.raises(ValueError, match="unknown strategy"):
        tiny.score([[1]], [5], strategy="fast")


def test_use_after_close(tiny_path):
    model = pla.load_gguf(tiny_path, n_ctx=64)
    model.close()
    with pytest.raises(ValueError, match="closed"):
        model.score([[1]], [5])
