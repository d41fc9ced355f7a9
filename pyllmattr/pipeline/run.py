"""The pipeline's driver: the same steps, in the same order, for every method.

    check options -> encode (chat included) -> resolve targets -> evaluate -> solve
    -> noise floor -> build results

The method contributes only the evaluate and solve steps (``method.evaluate``); the
driver holds the model's attribution lock for all of them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from ..results import AttributionResult
from .build import build_result
from .jobs import Settings, prepare
from .scoring import noise_floors

_FALLBACK_LOCKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_FALLBACK_GUARD = threading.Lock()


def run(
    method: Any,
    inputs: Sequence[Any],
    targets: Sequence[Any],
    contrasts: Sequence[Any],
    settings: Settings,
) -> list[AttributionResult]:
    """Attribute every input (one result each, in input order)."""
    settings.check()
    model = method.model
    with attribution_lock(model):
        jobs = prepare(model, inputs, targets, contrasts, settings)
        evaluations = method.evaluate(jobs, settings)
        floors: list[Any] = [None] * len(jobs)
        if settings.noise_floor:
            floors = noise_floors(model, jobs, [e.reference for e in evaluations])
        return [
            build_result(method, job, evaluation, floor, settings)
            for job, evaluation, floor in zip(jobs, evaluations, floors, strict=True)
        ]


def attribution_lock(model: Any) -> Any:
    """The lock that keeps one attribution's calls on ``model`` together: attributions
    from several threads run one after the other, and ``close()`` waits for them.

    Both back ends have one (``model.attribution_lock``; llama.cpp's ``close()`` takes
    it too); for other models (a ScoringModel of your own) the pipeline keeps one per
    model object.
    """
    lock = getattr(model, "attribution_lock", None)
    if lock is not None:
        return lock
    with _FALLBACK_GUARD:
        lock = _FALLBACK_LOCKS.get(model)
        if lock is None:
            lock = _FALLBACK_LOCKS[model] = threading.RLock()
        return lock
