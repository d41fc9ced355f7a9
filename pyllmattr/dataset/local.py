"""The in-process runner: one model, chunks one after another."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..cancel import Cancelled
from ..methods import METHODS, GradientMethod
from .batch import Item, run_chunk
from .records import Job


def method_class(name: str | type) -> type:
    """A method class from its name in :data:`pla.METHODS` (or the class itself)."""
    if isinstance(name, type):
        return name
    return METHODS[name]


def needs_torch(cls: type) -> bool:
    """Gradient methods need PyTorch; the others (perturbation and staged) run on llama.cpp."""
    return bool(getattr(cls, "needs_gradients", False)) or issubclass(cls, GradientMethod)


def is_loaded_model(model: Any) -> bool:
    return hasattr(model, "score") and hasattr(model, "tokenize")


def model_file(model: str | os.PathLike) -> Path:
    """The .gguf path of ``model`` ("default": the demo model), checked to exist."""
    if isinstance(model, str) and model == "default":
        from ..models import default_model_path

        return default_model_path()
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"model must be a .gguf path, 'default' or a model from pla.load_gguf, "
            f"got {type(model).__name__}"
        )
    path = Path(model).expanduser().resolve()  # absolute: Ray actors may run elsewhere
    if not path.is_file():
        raise ValueError(f"model file not found: {path}; pass the path of a .gguf file")
    return path


def load_model(model: Any, cls: type, load_args: dict[str, Any]) -> Any:
    """A context manager giving the model: ``model`` itself when already loaded (left
    open), otherwise the file loaded with llama.cpp (or PyTorch for gradient methods)
    and closed on exit."""
    if is_loaded_model(model):
        return contextlib.nullcontext(model)
    path = model_file(model)
    if needs_torch(cls):
        from ..models import load_torch_gguf

        args = dict(load_args)
        threads = args.pop("n_threads", None)
        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        try:
            return contextlib.nullcontext(load_torch_gguf(path, **args))
        except TypeError as exc:  # an option of load_gguf only, such as deterministic
            raise ValueError(
                f"{cls.__name__} runs on PyTorch (pla.load_torch_gguf), which does not take "
                f"load_args {sorted(args)}: {exc}"
            ) from exc
    from ..models import load_gguf

    return contextlib.closing(load_gguf(path, **load_args))


class LocalRunner:
    """Runs the chunks of a dataset one after another on one model in this process.

    Example:
        >>> runner = LocalRunner("default", "feature-ablation", {})  # doctest: +SKIP
        >>> for items in runner.run(chunks, {}, skip_errors=False): ...  # doctest: +SKIP
    """

    def __init__(self, model: Any, method: str | type, load_args: dict[str, Any]) -> None:
        self.model, self.cls, self.load_args = model, method_class(method), dict(load_args)

    def run(
        self,
        chunks: Sequence[Sequence[Job]],
        options: dict[str, Any],
        *,
        skip_errors: bool,
        cancel: Any = None,
    ) -> Iterator[list[Item]]:
        with load_model(self.model, self.cls, self.load_args) as model:
            method = self.cls(model)
            for chunk in chunks:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("attribute_dataset was cancelled")
                items = run_chunk(method, chunk, options, skip_errors=skip_errors, cancel=cancel)
                for item in items:
                    item.worker = "in-process"
                yield items
