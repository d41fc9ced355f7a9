"""Loading Hugging Face models and GGUF files into PyTorch for pyllmattr."""

from __future__ import annotations

import os
from typing import Any

from .gguf_file import check_gguf_file
from .refs import resolve_model
from .torch import DEFAULT_BATCH_TOKENS, INSTALL_HINT, TorchModel, require_torch


def load_torch(
    model: Any,
    tokenizer: Any,
    *,
    n_ctx: int | None = None,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
) -> TorchModel:
    """Wrap a Hugging Face causal LM and its tokenizer for pyllmattr.

    The model is put in eval mode and used on its own device and dtype (move it
    first: ``model.to("cuda")``). ``n_ctx`` defaults to the model's
    ``max_position_embeddings``.

    Example:
        >>> from transformers import AutoModelForCausalLM, AutoTokenizer  # doctest: +SKIP
        >>> tm = pla.load_torch(AutoModelForCausalLM.from_pretrained(name),  # doctest: +SKIP
        ...                     AutoTokenizer.from_pretrained(name))
    """
    return TorchModel(model, tokenizer, n_ctx=n_ctx, max_batch_tokens=max_batch_tokens)


def load_torch_gguf(
    path: str | os.PathLike,
    *,
    device: str | None = None,
    dtype: Any = "float32",
    n_ctx: int | None = None,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
) -> TorchModel:
    """Load a GGUF file into PyTorch through transformers' GGUF support (dequantized).

    ``path`` is a .gguf file or a model reference, as in :func:`pyllmattr.load_gguf`.
    The weights are dequantized to ``dtype`` (float32 by default; the GGUF's
    quantization is not kept), so the model needs about 4 bytes per parameter.
    ``device`` defaults to CUDA, then MPS, when present, else the CPU.

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> pla.IntegratedGradients(tm)  # doctest: +SKIP
    """
    torch = require_torch()
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"loading a GGUF into PyTorch needs the gguf package; install it with: {INSTALL_HINT}"
        ) from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = resolve_model(path)
    check_gguf_file(file)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype or its name (e.g. 'float32'), got {dtype!r}")
    folder, name = str(file.parent), file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ValueError(
            f"transformers cannot load {file} into PyTorch ({exc}); its GGUF support covers "
            "common architectures only: use pla.load_gguf for llama.cpp, or load the original "
            "Hugging Face model and pass it to pla.load_torch"
        ) from exc
    model.to(_default_device(torch) if device is None else device)
    return TorchModel(model, tokenizer, n_ctx=n_ctx, max_batch_tokens=max_batch_tokens, path=file)


def _default_device(torch: Any) -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
