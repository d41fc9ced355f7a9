"""llama.cpp's log lines reach the message of the call that caused them, and no other's."""

from __future__ import annotations

from isolated import run_isolated

# Model A's cancelled decode makes llama.cpp log errors ("failed to decode, ret = 2") that
# no message reports; model B then fails on non-finite logits, an error llama.cpp logs
# nothing about. Runs in a child process: a fresh log, and a crash cannot take pytest down.
TWO_MODELS = """
import json
import pyllmattr as pla
a = pla.load_gguf({tiny!r}, n_ctx=64, n_threads=1)
b = pla.load_gguf({poisoned!r}, n_ctx=64, n_threads=1)
token = pla.CancelToken()
token.cancel()
try:
    a.score([a.tokenize("Dave lives in Palm Coast")], [5, 6], cancel=token)
except pla.Cancelled:
    pass
try:
    b.score([b.tokenize("Dave lives in Palm Coast")], [5, 6])
    message = None
except RuntimeError as exc:
    message = str(exc)
print(json.dumps({{"message": message}}))
"""


def test_one_models_llama_cpp_errors_stay_out_of_another_models_message(
    tmp_path, tiny_path, smollm2_path
):
    from tiny_gguf import write_tiny_llama

    poisoned = write_tiny_llama(
        tmp_path / "poisoned.gguf", smollm2_path, poison={"blk.1.attn_q.weight": float("nan")}
    )
    report = run_isolated(TWO_MODELS.format(tiny=str(tiny_path), poisoned=str(poisoned)))
    assert "non-finite logits" in report["message"]
    assert "failed to decode" not in report["message"]
    assert "llama.cpp:" not in report["message"]


# A load failure still reports what llama.cpp said about that file.
BAD_LOAD = """
import json
import pyllmattr as pla
good = pla.load_gguf({tiny!r}, n_ctx=64, n_threads=1)
token = pla.CancelToken()
token.cancel()
try:
    good.score([[1, 2, 3]], [5], cancel=token)
except pla.Cancelled:
    pass
try:
    pla.load_gguf({broken!r}, n_ctx=64, n_threads=1)
except ValueError as exc:
    print(json.dumps({{"message": str(exc)}}))
"""


def test_a_failed_load_reports_its_own_llama_cpp_lines_only(tmp_path, tiny_path):
    broken = tmp_path / "truncated.gguf"
    broken.write_bytes(tiny_path.read_bytes()[: tiny_path.stat().st_size // 2])
    report = run_isolated(BAD_LOAD.format(tiny=str(tiny_path), broken=str(broken)))
    assert "is truncated or corrupt" in report["message"]
    assert "llama.cpp:" in report["message"]  # the loader's own complaint
    assert "failed to decode" not in report["message"]
