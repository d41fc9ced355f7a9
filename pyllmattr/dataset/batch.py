"""One chunk of a dataset on one model: all its inputs in one batch attribution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._checks import naming
from ..cancel import Cancelled
from ..results import AttributionResult
from .records import Task


@dataclass
class Work:
    """What a runner runs: chunks of tasks (one batch attribution each), the method's
    options, whether a bad input becomes an Item with its error (``skip_errors``) or
    raises, and a cancel token."""

    chunks: list[list[Task]]
    options: dict[str, Any] = field(default_factory=dict)
    skip_errors: bool = False
    cancel: Any = None


@dataclass
class Item:
    """The outcome of one dataset input: its result, or why it has none.

    ``index`` is the input's position in the dataset, ``id`` its id (the position
    unless the input came with one), ``worker`` what ran it ("in-process", or the Ray
    worker's ``node:pid``).
    """

    index: int
    id: Any
    result: AttributionResult | None = None
    error: str | None = None
    worker: str | None = None


def _attribute_many(
    method: Any, built: Sequence[tuple[Task, Any]], **options: Any
) -> list[AttributionResult]:
    """Every perturbation of every input in one chunked scoring call."""
    inputs = [inp for _, inp in built]
    targets = [task.target for task, _ in built]
    contrasts = [task.contrast for task, _ in built]
    if any(c is not None for c in contrasts):
        options["contrasts"] = contrasts
    return list(method.attribute_batch(inputs, targets=targets, **options))


def run_chunk(
    method: Any,
    tasks: Sequence[Task],
    options: dict[str, Any],
    *,
    skip_errors: bool = False,
    cancel: Any = None,
) -> list[Item]:
    """Attribute every task of a chunk with ``method``; one Item per task, in order.

    A bad input (ValueError) fails alone: the chunk is re-run one input at a time to
    find it. With ``skip_errors`` its Item carries the message, otherwise the
    ValueError is raised naming the input. Cancellation and engine errors propagate.
    """
    options = {**options, "progress": False, "cancel": cancel}
    built: list[tuple[Task, Any]] = []
    items: dict[int, Item] = {}
    for task in tasks:
        try:
            built.append((task, task.build(method.model)))
        except ValueError as exc:
            items[task.index] = _failed(task, exc, skip_errors)
    if built:
        try:
            results = _attribute_many(method, built, **options)
            for (task, _), result in zip(built, results, strict=True):
                items[task.index] = Item(task.index, task.id, result)
        except Cancelled:
            raise
        except ValueError:
            items.update(_one_by_one(method, built, options, skip_errors))
    return [items[task.index] for task in tasks]


def _one_by_one(
    method: Any, built: list[tuple[Task, Any]], options: dict[str, Any], skip_errors: bool
) -> dict[int, Item]:
    items = {}
    for task, inp in built:
        try:
            # attribute, not a batch of one: its errors need no "inputs[0]" prefix
            contrast = {} if task.contrast is None else {"contrast": task.contrast}
            result = method.attribute(inp, target=task.target, **contrast, **options)
            items[task.index] = Item(task.index, task.id, result)
        except Cancelled:
            raise
        except ValueError as exc:
            items[task.index] = _failed(task, exc, skip_errors)
    return items


def _failed(task: Task, exc: ValueError, skip_errors: bool) -> Item:
    if not skip_errors:
        raise naming(f"input {task.index} (id {task.id!r}): ", exc) from exc
    return Item(task.index, task.id, error=" ".join(str(exc).split()))
