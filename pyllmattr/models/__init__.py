"""Model back ends: llama.cpp (GGUF) now; PyTorch for gradient methods."""

from .default import default_model_path
from .llama import LlamaModel, ScoreStats, load_gguf

__all__ = ["LlamaModel", "ScoreStats", "default_model_path", "load_gguf"]
