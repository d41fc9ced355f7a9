"""Bad input raises ValueError with a message that says what to do."""

from __future__ import annotations

import pytest
from isolated import run_isolated
from tiny_gguf import write_tiny_llama

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


# Loading broken files runs in a child process: a crash in llama.cpp's loader must
# fail the test, not kill pytest.
LOAD_AND_SCORE = """
import json, pyllmattr as pla
try:
    model = pla.load_gguf({path!r}, n_ctx=64, n_threads=1)
    model.score([model.tokenize("Dave lives in Palm Coast")], [5, 6])
    print(json.dumps({{"error": None}}))
except Exception as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
"""


def load_and_score(path) -> dict:
    return run_isolated(LOAD_AND_SCORE.format(path=str(path)))


@pytest.mark.parametrize("keep", [0.5, 0.01], ids=["half", "header-only"])
def test_truncated_gguf(tmp_path, tiny_path, keep):
    data = tiny_path.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    outcome = load_and_score(path)
    assert outcome["error"] == "ValueError"
    assert "is truncated or corrupt" in outcome["message"]
    assert "download or convert it again" in outcome["message"]


def test_unsupported_architecture(tmp_path, smollm2_path):
    path = write_tiny_llama(tmp_path / "frob.gguf", smollm2_path, architecture="frobnicator")
    outcome = load_and_score(path)
    assert outcome["error"] == "ValueError"
    assert "architecture 'frobnicator'" in outcome["message"]
    assert "does not support" in outcome["message"]


@pytest.mark.parametrize(
    "poison",
    [{"blk.1.attn_q.weight": float("nan")}, {"output.weight": 1e38}],
    ids=["nan-weights", "overflowing-logits"],
)
def test_non_finite_model_output(tmp_path, smollm2_path, poison):
    path = write_tiny_llama(tmp_path / "poisoned.gguf", smollm2_path, poison=poison)
    outcome = load_and_score(path)
    assert outcome["error"] == "RuntimeError"
    assert "non-finite logits" in outcome["message"]
    assert "corrupt" in outcome["message"]


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


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_new_tokens": -1}, "max_new_tokens must be >= 0"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be >= 0"),
        ({"temperature": -0.5}, "need temperature >= 0"),
        ({"top_p": 0.0}, "0 < top_p <= 1"),
        ({"seed": 2**32}, "seed must be in"),
    ],
)
def test_generate_checks_its_arguments_as_the_torch_back_end_does(tiny, options, message):
    # The checks live in the back ends' shared base (models/backend.py).
    with pytest.raises(ValueError, match=message):
        tiny.generate([1, 2], **options)
    with pytest.raises(ValueError, match="the prompt is empty"):
        tiny.generate([], 2)


def test_unknown_strategy(tiny):
    with pytest.raises(ValueError, match="unknown strategy"):
        tiny.score([[1]], [5], strategy="fast")


@pytest.mark.parametrize(
    "use",
    [
        lambda m: m.score([[1]], [5]),
        lambda m: m.tokenize("hello"),
        lambda m: m.generate([1], 2),
        lambda m: m.n_vocab,
        lambda m: m.bos_token_id,
        lambda m: m.architecture,
        lambda m: m.token_to_str(5),
    ],
    ids=["score", "tokenize", "generate", "n_vocab", "bos", "architecture", "token_to_str"],
)
def test_use_after_close(tiny_path, use):
    model = pla.load_gguf(tiny_path, n_ctx=64)
    model.close()
    with pytest.raises(ValueError, match="closed"):
        use(model)


def test_unknown_method_name():
    with pytest.raises(ValueError, match="unknown attribution method 'shap'.*kernel-shap"):
        pla.METHODS["shap"]
    with pytest.raises(KeyError):  # still a failed dict lookup
        pla.METHODS["shap"]


def test_token_input_without_features(tiny):
    with pytest.raises(ValueError, match="no tokens left to attribute"):
        pla.TextTokenInput("the", tiny, skip_tokens=["the"]).encode(tiny)


def test_baseline_slot_listed_twice():
    with pytest.raises(ValueError, match="listed twice"):
        pla.ProductBaselines({"city": ["Boston"], ("city", "state"): [("Seattle", "WA")]})


def test_template_mixing_slot_numbering():
    with pytest.raises(ValueError, match="mixes"):
        pla.TextTemplateInput("{0} and {}", ["a"])
