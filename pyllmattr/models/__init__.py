"""Model back ends: llama.cpp (GGUF) and PyTorch (Hugging Face, for gradient methods)."""

from typing import TYPE_CHECKING

from .default import default_model_path
from .gguf_header import GGUFInfo, read_gguf_info
from .interface import GradientModel, ScoreStats, ScoringModel
from .llama import LlamaModel, load_gguf
from .refs import LocalModel, find_models, resolve_model
from .requantize import REQUANTIZE_TYPES, requantized_copy
from .torch import TorchModel
from .torch_load import load_torch, load_torch_gguf

__all__ = [
    "REQUANTIZE_TYPES",
    "GGUFInfo",
    "LocalModel",
    "GradientModel",
    "LlamaModel",
    "ScoreStats",
    "ScoringModel",
    "TorchModel",
    "default_model_path",
    "find_models",
    "load_gguf",
    "load_torch",
    "load_torch_gguf",
    "read_gguf_info",
    "requantized_copy",
    "resolve_model",
]


if TYPE_CHECKING:

    def _back_ends_implement_the_protocols(
        llama: LlamaModel, torch: TorchModel
    ) -> tuple[ScoringModel, GradientModel]:
        """Never called: the type checker proves the back ends match the protocols here."""
        return llama, torch
