from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tiny_gguf import write_tiny_llama

import pyllmattr as pla

# A 30+ token prompt used by the engine tests on the real model.
PALM_COAST = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his"
)


@contextmanager
def python_thread_ticks() -> Iterator[list[int]]:
    """Counts, in ``ticks[0]``, the loop turns another Python thread gets while the body
    runs: it only advances while nobody holds the GIL for long."""
    ticks = [0]
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        yield ticks
    finally:
        done.set()
        counter.join()


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
    """The tiny f32 model with an f32 KV cache and no flash attention: no low-precision
    step anywhere, so every scoring strategy agrees to float rounding."""
    with pla.load_gguf(
        tiny_path, n_ctx=512, n_threads=2, flash_attn="off", kv_precision="f32"
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
