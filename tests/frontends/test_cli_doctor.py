"""``pyllmattr doctor``: a report for bug reports that never fails on what it reports."""

from __future__ import annotations

import json

import pytest
from tiny_gguf import write_tiny_llama

from pyllmattr.cli import main
from pyllmattr.cli.doctor import parse_system_info
from pyllmattr.models.selfcheck_cache import VERIFIED_BY

TOP_KEYS = {
    "format", "pyllmattr", "python", "platform", "llama_cpp", "exact_layout", "cache", "model",
}  # fmt: skip
LLAMA_KEYS = {
    "llama_cpp_python", "ggml_version", "ggml_commit", "system_info", "cpu_features",
    "backends", "gpu_offload", "devices",
}  # fmt: skip


def doctor(capsys, *args: str) -> tuple[int, str]:
    status = main(["doctor", *args])
    return status, capsys.readouterr().out


def doctor_json(capsys, *args: str) -> dict:
    status, out = doctor(capsys, "--json", *args)
    assert status == 0
    return json.loads(out)


def test_without_a_model_it_reports_versions_and_the_build(capsys):
    status, out = doctor(capsys)
    assert status == 0
    for label in ("pyllmattr", "python", "llama.cpp", "system info", "back ends", "devices"):
        assert f"\n{label}" in out or f"\n  {label}" in out
    assert "CPU" in out and "model " not in out


def test_the_json_report_has_its_keys(capsys):
    report = doctor_json(capsys)
    assert set(report) == TOP_KEYS and report["format"] == 1 and report["model"] is None
    llama = report["llama_cpp"]
    assert set(llama) == LLAMA_KEYS
    assert "CPU" in llama["backends"]
    assert any(d["type"] == "cpu" for d in llama["devices"])
    # The features are those of llama.cpp's own system info line.
    cpu = parse_system_info(llama["system_info"])["CPU"]
    assert llama["cpu_features"] == sorted(k for k, v in cpu.items() if v == "1")
    assert report["exact_layout"]["first_block"] in (8, 16, 64)
    assert report["cache"]["writable"] is True  # the suite's private folder


def test_with_the_tiny_model_it_checks_and_measures_both_layouts(capsys, tiny_path):
    report = doctor_json(capsys, "--model", str(tiny_path), "--threads", "2")
    model = report["model"]
    assert (model["architecture"], model["quantization"]) == ("llama", "F32")
    assert model["context_length"] == 2048 and model["n_threads"] == 2
    exact = model["exact"]
    assert exact["verified"] is True and exact["verified_by"] in VERIFIED_BY
    assert exact["block"] == report["exact_layout"]["first_block"]
    throughput = model["throughput"]
    for layout in ("exact", "fast"):
        assert throughput[layout]["decoded"] == throughput[layout]["trie"] > 0
        assert throughput[layout]["tokens_per_s"] > 0
    assert throughput["exact_over_fast_time"] > 0
    # A second run takes the self-check's outcome from the cache, and says so.
    status, out = doctor(capsys, "--model", str(tiny_path), "--threads", "2")
    assert status == 0
    assert "from the cache" in out and "tokens/s" in out


def test_a_missing_model_is_reported_not_raised(capsys, tmp_path):
    missing = tmp_path / "missing.gguf"
    model = doctor_json(capsys, "--model", str(missing))["model"]
    assert "model file not found" in model["error"]
    status, out = doctor(capsys, "--model", str(missing))
    assert status == 0 and "model file not found" in out


def test_a_file_that_is_not_gguf_is_reported(capsys, tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"PK\x03\x04 a zip file")
    model = doctor_json(capsys, "--model", str(bad))["model"]
    assert "is not a GGUF file" in model["error"]


def test_a_model_llama_cpp_cannot_load_is_reported(capsys, tmp_path, smollm2_path):
    odd = write_tiny_llama(tmp_path / "odd.gguf", smollm2_path, architecture="nosucharch")
    status, out = doctor(capsys, "--model", str(odd))
    assert status == 0
    assert "load error" in out and "nosucharch" in out
    model = doctor_json(capsys, "--model", str(odd))["model"]
    assert model["architecture"] == "nosucharch" and "nosucharch" in model["load_error"]
    assert "exact" not in model and "throughput" not in model


def test_usage_errors_exit_with_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["doctor", "--threads", "0"])
    assert stop.value.code == 2
