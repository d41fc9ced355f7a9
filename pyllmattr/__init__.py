"""pyllmattr: explain what local GGUF language models' outputs depend on.

Example:
    >>> import pyllmattr as pla
    >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
"""

from .cancel import Cancelled, CancelToken
from .models import LlamaModel, ScoreStats, default_model_path, load_gguf

__version__ = "0.1.0"

__all__ = [
    "CancelToken",
    "Cancelled",
    "LlamaModel",
    "ScoreStats",
    "default_model_path",
    "load_gguf",
]
