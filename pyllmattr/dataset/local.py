"""The in-process runner: one model, chunks one after another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..cancel import Cancelled
from ..frontend import method_class, open_model
from .batch import Item, Work, run_chunk


class LocalRunner:
    """Runs the chunks of a dataset one after another on one model in this process:
    ``model`` itself when already loaded, else its file, loaded for ``method``.

    Example:
        >>> runner = LocalRunner("default", "feature-ablation", {})  # doctest: +SKIP
        >>> for items in runner.run(Work(chunks)): ...  # doctest: +SKIP
    """

    def __init__(self, model: Any, method: str | type, load_args: dict[str, Any]) -> None:
        self.model, self.cls, self.load_args = model, method_class(method), dict(load_args)

    def run(self, work: Work) -> Iterator[list[Item]]:
        with open_model(self.model, self.cls, self.load_args) as model:
            method = self.cls(model)
            for chunk in work.chunks:
                if work.cancel is not None and work.cancel.cancelled:
                    raise Cancelled("attribute_dataset was cancelled")
                items = run_chunk(
                    method, chunk, work.options, skip_errors=work.skip_errors, cancel=work.cancel
                )
                for item in items:
                    item.worker = "in-process"
                yield items
