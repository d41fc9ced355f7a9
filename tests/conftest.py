from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from tiny_gguf import write_tiny_llama

import pyllmattr as pla

# A 30+ token prompt used by the engine tests on the real model.
PALM_COAST = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his"
)


class PythonThreadWatch:
    """A Python thread that notes the time whenever it gets to run (at most once a
    millisecond), to tell whether a call let it run: a call that held the GIL would
    keep it from running for the call's whole duration.

    Example:
        >>> with PythonThreadWatch() as watch:  # doctest: +SKIP
        ...     start = time.monotonic(); model.score(sequences, target); end = time.monotonic()
        >>> watch.longest_pause(start, end) < (end - start) / 2  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = 0.0
        while not self._done.is_set():
            now = time.monotonic()
            if now - last >= 1e-3:
                self.times.append(now)
                last = now

    def __enter__(self) -> PythonThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def longest_pause(self, start: float, end: float) -> float:
        """The longest stretch of [start, end] in which the thread did not run."""
        marks = [start, *(t for t in self.times if start < t < end), end]
        return max(b - a for a, b in zip(marks, marks[1:], strict=False))


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
