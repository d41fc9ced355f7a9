"""The exact layout's block is the CPU's SIMD width, verified by the self-check, not one of
its fallbacks (64-cell blocks, or scoring one by one).

llama.cpp's softmax and f16 V-product work in registers of 16 floats with AVX-512 and of 8
with AVX2 (docs/numerics.md). The main CI run has an AVX-512 build; `.ci/avx2_exact.sh`
runs this file and tests/engine/test_exact.py again on a build with AVX-512 off, with
``PYLLMATTR_EXPECT_EXACT_BLOCK=8`` so that a build which silently kept AVX-512 fails.
"""

from __future__ import annotations

import os
import re

import llama_cpp
import pytest
from exact_models import EXACT_MODELS, exact_model_path

import pyllmattr as pla


def simd_width(system_info: str) -> int | None:
    """Floats per register of llama.cpp's CPU kernels, from its system info line."""
    features = {name for name, on in re.findall(r"(\w+) = (\d)", system_info) if on == "1"}
    if "AVX512" in features:
        return 16
    if features & {"AVX2", "AVX", "NEON"}:
        return 8
    return None


def test_simd_width_reads_llama_cpps_feature_flags():
    assert simd_width("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | AVX512 = 1 |") == 16
    assert simd_width("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | AVX512 = 0 |") == 8
    assert simd_width("CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 1 |") == 8
    assert simd_width("CPU : SSE3 = 1 | AVX = 0 |") is None


@pytest.fixture(scope="module")
def width() -> int:
    info = llama_cpp.llama_print_system_info().decode()
    found = simd_width(info)
    if found is None:
        pytest.skip(f"no SIMD width known for this CPU build: {info}")
    expected = os.environ.get("PYLLMATTR_EXPECT_EXACT_BLOCK")
    if expected is not None:
        assert found == int(expected), f"this llama.cpp build is not the one CI asked for: {info}"
    return found


@pytest.mark.parametrize("name", EXACT_MODELS)
def test_the_exact_block_is_the_cpus_width(name, width):
    with pla.load_gguf(exact_model_path(name), n_ctx=1024, n_threads=2) as model:
        assert model.exact_block == width
        assert model.exact_verified
