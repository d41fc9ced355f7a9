"""Fixtures every test layer shares: the models (real SmolLM2 and a generated tiny llama),
a private cache folder, and markers from fixtures. Helpers live in tests/helpers/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_gguf import write_tiny_llama

import pyllmattr as pla

# Markers a test gets from what it uses (the others are set in the test modules): a test
# that needs the PyTorch model is a `torch` test wherever it lives.
MARKERS_BY_FIXTURE = {"smollm2_torch": "torch"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in MARKERS_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """pyllmattr's cache folder (self-check outcomes, converted models) in a temporary
    folder for the whole session, child processes included: tests neither read the user's
    cache (a cached self-check would hide the check from them) nor fill it. A test that
    needs a folder of its own sets ``PYLLMATTR_CACHE_DIR`` with monkeypatch."""
    saved = os.environ.get("PYLLMATTR_CACHE_DIR")
    folder = tmp_path_factory.mktemp("pyllmattr-cache")
    os.environ["PYLLMATTR_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("PYLLMATTR_CACHE_DIR", None)
    else:
        os.environ["PYLLMATTR_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return pla.default_model_path()


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", smollm2_path)


@pytest.fixture(scope="session")
def tiny(tiny_path: Path):
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2) as model:
        yield model


@pytest.fixture(scope="session")
def smollm2(smollm2_path: Path):
    with pla.load_gguf(smollm2_path, n_ctx=2048, n_threads=2) as model:
        yield model


@pytest.fixture(scope="session")
def exact(tiny_path: Path):
    """The tiny f32 model with an f32 KV cache and no flash attention, in the fast layout
    (``deterministic=False``): no low-precision step anywhere, so every scoring strategy of
    the fast scorer agrees to float rounding, and attributions measure their noise floor."""
    with pla.load_gguf(
        tiny_path, n_ctx=512, n_threads=2, flash_attn="off", kv_precision="f32", deterministic=False
    ) as model:
        yield model


@pytest.fixture(scope="session")
def smollm2_q8_path(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    """SmolLM2 converted to Q8_0 by llama.cpp's quantizer (seconds), in a test-only cache."""
    return pla.requantized_copy(smollm2_path, "q8_0", cache_dir=tmp_path_factory.mktemp("quant"))


@pytest.fixture(scope="session")
def smollm2_torch(smollm2_path: Path):
    """The same GGUF loaded into PyTorch by transformers (dequantized to float32)."""
    return pla.load_torch_gguf(smollm2_path)
