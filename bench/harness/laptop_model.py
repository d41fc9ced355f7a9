"""Writes the laptop-scale benchmark model: Llama-3.2-1B's shapes, random weights, Q4_K_M.

Nothing of that size is on PyPI, so the speed table's 1B job runs on a model made here:
a llama with Llama-3.2-1B's shapes (2048 wide, 16 layers, an 8192-wide feed-forward
layer, 32 query and 8 key-value heads, untied output) and SmolLM2's tokenizer (49,152
tokens where Llama's has 128,256), 1.17B parameters, written as float32 by the tests'
generator (``tests/helpers/tiny_gguf.py``) and converted to Q4_K_M by llama.cpp's own
quantizer (``pla.requantized_copy``). Its weights are random, so its attributions mean
nothing; its speed is a 1B model's, which depends on the shapes and the quantization
alone.

    python bench laptop_model --out /tmp/laptop-1b.Q4_K_M.gguf
    python bench run --model /tmp/laptop-1b.Q4_K_M.gguf --jobs 1,4 --lengths 64 ...
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import pyllmattr as pla
from harness import REPO

SHAPES = {"n_embd": 2048, "n_layer": 16, "n_head": 32, "n_head_kv": 8, "n_ff": 8192}


def _tiny_gguf():  # noqa: ANN202 - a module object
    """The tests' GGUF generator, loaded from its file (the tests' helpers are no package)."""
    path = REPO / "tests" / "helpers" / "tiny_gguf.py"
    spec = importlib.util.spec_from_file_location("tiny_gguf", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_laptop_model(out: Path, seed: int = 0) -> Path:
    """Writes the model to ``out`` (via a float32 file in a temporary folder next to it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        f32 = Path(work) / "laptop-1b.f32.gguf"
        _tiny_gguf().write_tiny_llama(
            f32, pla.default_model_path(), n_ctx_train=8192, seed=seed, **SHAPES
        )
        quantized = pla.requantized_copy(f32, "q4_k_m", cache_dir=work)
        os.replace(quantized, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/laptop-1b.Q4_K_M.gguf"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = write_laptop_model(args.out, args.seed)
    print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
