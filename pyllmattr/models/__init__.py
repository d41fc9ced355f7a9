"""Model back ends: llama.cpp (GGUF) and PyTorch (Hugging Face, for gradient methods)."""

from .default import default_model_path
from .interface import GradientModel, ScoreStats, ScoringModel
from .llama import LlamaModel, load_gguf
from .requantize import REQUANTIZE_TYPES, requantized_copy
from .torch import TorchModel
from .torch_load import load_torch, load_torch_gguf

__all__ = [
    "REQUANTIZE_TYPES",
    "GradientModel",
    "LlamaModel",
    "ScoreStats",
    "ScoringModel",
    "TorchModel",
    "default_model_path",
    "load_gguf",
    "load_torch",
    "load_torch_gguf",
    "requantized_copy",
]
