"""bench/harness/gpu_check.py's comparisons, on made-up side results (no model, no GPU):
the report a CUDA machine writes must say what its sides measured. The measuring itself
runs in `bench/gpu_check.sh --cpu-only` (docs/gpu.md)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from repo_paths import BENCH


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "harness" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side(scores, attr, seconds, dataset_attr=None, deterministic=None):
    noise = {
        "slots": {},
        "slot_max_per_token": 0.25,
        "shared_vs_alone_per_token": 0.5,
        "shared_vs_alone_sum": 0.75,
        "shared_bit_identical": False,
    }
    layout = {
        "layout": "fast",
        "exact_block": None,
        "exact_verified": None,
        "scores_are_exact": False,
        "self_check_s": None,
    }
    default = {
        "layout": layout,
        "noise": noise,
        "scores_alone": scores,
        "loo_timing": {"first_s": 2 * seconds, "warm_s": seconds},
        "feature_ablation": {
            "seq_attr": attr,
            "first_s": 2 * seconds,
            "warm_s": seconds,
            "noise_floor": 0.0,
        },
    }
    if dataset_attr is not None:
        default["dataset"] = {"seq_attr": dataset_attr, "seconds": 10 * seconds}
    out = {"default": default, "model": "m.gguf", "system_info": "CPU : AVX2 = 1 |"}
    if deterministic is not None:
        out["deterministic"] = deterministic
    return out


def test_the_gpu_is_compared_with_the_cpu(gpu_check):
    cpu = side([[-1.0, -2.0], [-3.0, -4.0]], [3.0, 1.0, 0.0, -2.0], 4.0, [[1.0, 2.0, 3.0]])
    gpu = side([[-1.5, -2.0], [-3.0, -3.0]], [2.0, 1.5, 0.5, -2.0], 1.0, [[1.0, 2.5, 2.0]])
    rep = gpu_check.report({"cpu": cpu, "gpu": gpu})
    c = rep["vs_cpu"]["gpu"]
    assert c["scores_max_abs_per_token"] == pytest.approx(1.0)
    assert c["scores_max_abs_per_target"] == pytest.approx(1.0)  # -7 against -6
    assert not c["scores_bit_identical"]
    assert c["fa_max_abs_diff"] == pytest.approx(1.0)
    assert c["fa_pearson"] == pytest.approx(
        np.corrcoef([3.0, 1.0, 0.0, -2.0], [2.0, 1.5, 0.5, -2.0])[0, 1]
    )
    assert c["fa_top3_same"]
    assert c["fa_speedup_warm"] == pytest.approx(4.0)
    assert c["dataset_max_abs_diff"] == pytest.approx(1.0)
    assert c["dataset_speedup"] == pytest.approx(4.0)


def test_identical_sides_report_bit_identical_scores(gpu_check):
    cpu = side([[-1.0, -2.0]], [1.0, 0.0, 2.0], 1.0)
    rep = gpu_check.report(
        {"cpu": cpu, "cpu_gpu_visible": side([[-1.0, -2.0]], [1.0, 0.0, 2.0], 1.0)}
    )
    c = rep["vs_cpu"]["cpu_gpu_visible"]
    assert c["scores_bit_identical"] and c["scores_max_abs_per_token"] == 0.0
    assert "dataset_speedup" not in c  # no dataset job measured: nothing claimed


def test_deterministic_cost_is_a_ratio_to_the_default_layout(gpu_check):
    det = side([[-1.0, -2.25]], [1.0, 0.0, 2.0], 3.0)["default"]
    det["layout"] = {**det["layout"], "exact_block": 8, "exact_verified": True, "self_check_s": 2.0}
    gpu = side([[-1.0, -2.0]], [1.0, 0.0, 2.0], 1.5, deterministic=det)
    rep = gpu_check.report({"gpu": gpu})
    d = rep["deterministic"]["gpu"]
    assert d["loo_warm_ratio"] == pytest.approx(2.0)
    assert d["scores_vs_default_max_abs"] == pytest.approx(0.25)
    lines = "\n".join(gpu_check.summary_lines({"mode": "m", "device": "d", "model": "x"}, rep))
    assert "deterministic=True: block 8, self-check passed True" in lines


def test_a_failed_side_is_reported_not_compared(gpu_check):
    cpu = side([[-1.0]], [1.0, 2.0], 1.0)
    rep = gpu_check.report({"cpu": cpu, "gpu": {"error": "exit code -6", "stderr": "CUDA error"}})
    assert rep["errors"]["gpu"]["error"] == "exit code -6"
    assert rep["vs_cpu"] == {}
    lines = gpu_check.summary_lines({"mode": "m", "device": "d", "model": "x"}, rep)
    assert any(line.startswith("side gpu FAILED: exit code -6") for line in lines)
