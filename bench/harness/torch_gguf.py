"""The PyTorch peers' model: the same GGUF dequantized to float32 by transformers.

Captum and the context-cite package run on these weights, so every peer attributes
the model pyllmattr does. ``decoded`` counts the tokens the model is fed (a forward
hook on the input embeddings), the peers' counterpart of the engine's ``n_decoded``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TorchGGUF:
    """A GGUF file loaded into float32 PyTorch, with its tokenizer and a token counter.

    Example:
        >>> side = TorchGGUF(pla.default_model_path(), threads=2)  # doctest: +SKIP
        >>> ids = side.tokenizer("Hi", return_tensors="pt")["input_ids"]  # doctest: +SKIP
        >>> side.model(ids); side.decoded  # doctest: +SKIP
    """

    def __init__(self, path: Path | str, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        ).eval()
        self.decoded = 0
        self.model.get_input_embeddings().register_forward_hook(self._count)

    def _count(self, module: Any, args: tuple, output: Any) -> None:
        self.decoded += int(args[0].numel())
