"""One chunk of a dataset on one model: all its inputs in one batch attribution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cancel import Cancelled
from ..results import AttributionResult
from .records import Job


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
    method: Any, built: Sequence[tuple[Job, Any]], **options: Any
) -> list[AttributionResult]:
    """Every perturbation of every input in one chunked scoring call."""
    inputs = [inp for _, inp in built]
    targets = [job.target for job, _ in built]
    contrasts = [job.contrast for job, _ in built]
    if any(c is not None for c in contrasts):
        options["contrasts"] = contrasts
    return list(method.attribute_batch(inputs, targets=targets, **options))


def run_chunk(
    method: Any,
    jobs: Sequence[Job],
    options: dict[str, Any],
    *,
    skip_errors: bool = False,
    cancel: Any = None,
) -> list[Item]:
    """Attribute every job of a chunk with ``method``; one Item per job, in order.

    A bad input (ValueError) fails alone: the chunk is re-run one input at a time to
    find it. With ``skip_errors`` its Item carries the message, otherwise the
    ValueError is raised naming the input. Cancellation and engine errors propagate.
    """
    options = {**options, "progress": False, "cancel": cancel}
    built: list[tuple[Job, Any]] = []
    items: dict[int, Item] = {}
    for job in jobs:
        try:
            built.append((job, job.build(method.model)))
        except ValueError as exc:
            items[job.index] = _failed(job, exc, skip_errors)
    if built:
        try:
            results = _attribute_many(method, built, **options)
            for (job, _), result in zip(built, results, strict=True):
                items[job.index] = Item(job.index, job.id, result)
        except Cancelled:
            raise
        except ValueError:
            items.update(_one_by_one(method, built, options, skip_errors))
    return [items[job.index] for job in jobs]


def _one_by_one(
    method: Any, built: list[tuple[Job, Any]], options: dict[str, Any], skip_errors: bool
) -> dict[int, Item]:
    items = {}
    for job, inp in built:
        try:
            # attribute, not a batch of one: its errors need no "inputs[0]" prefix
            contrast = {} if job.contrast is None else {"contrast": job.contrast}
            result = method.attribute(inp, target=job.target, **contrast, **options)
            items[job.index] = Item(job.index, job.id, result)
        except Cancelled:
            raise
        except ValueError as exc:
            items[job.index] = _failed(job, exc, skip_errors)
    return items


def _failed(job: Job, exc: ValueError, skip_errors: bool) -> Item:
    if not skip_errors:
        raise ValueError(f"input {job.index} (id {job.id!r}): {exc}") from exc
    return Item(job.index, job.id, error=" ".join(str(exc).split()))
