"""The check every back end makes before handing a path to a GGUF reader."""

from __future__ import annotations

from pathlib import Path

GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: Path) -> None:
    """A ValueError saying what to do unless ``path`` is an existing GGUF file."""
    if not path.exists():
        raise ValueError(
            f"model file not found: {path}; pass the path of a .gguf file "
            "(pyllmattr.default_model_path() gives the demo model)"
        )
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the path of a .gguf file inside it")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); convert the model "
            "with llama.cpp's convert_hf_to_gguf.py or download a .gguf build of it"
        )
