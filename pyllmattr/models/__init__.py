"""Model back ends: llama.cpp (GGUF) now; PyTorch for gradient methods."""

from .default import default_model_path
from .llama import LlamaModel, ScoreStats, load_gguf
from .requantize import REQUANTIZE_TYPES, requantized_copy

__all__ = [
    "REQUANTIZE_TYPES",
    "LlamaModel",
    "ScoreStats",
    "default_model_path",
    "load_gguf",
    "requantized_copy",
]
