"""Test-only hooks into the engine. Not part of pyllmattr's API: tests use them to
provoke failures for real and to count what the planner decodes without a model.

Example:
    >>> from pyllmattr._testing import plan_stats
    >>> plan_stats([[1, 2, 3], [1, 2, 4]], [[9], [9]])["n_trie"]
    6
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._native import _core


def set_plan_slack(model: Any, cells: int) -> None:
    """Let ``model``'s planner use ``cells`` more KV cells than its context has, so that
    llama_decode really runs out of cells (0 restores the real limit)."""
    _core.testing.set_plan_slack(model._engine, int(cells))


def plan_stats(
    sequences: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    strategy: str = "trie",
    max_cells: int = 1000,
    max_slots: int = 64,
) -> dict[str, int]:
    """What the planner would decode for these (sequence, target) pairs: n_emitted,
    n_trie, n_naive, n_unique (distinct pairs), n_leaves (distinct full sequences), n_waves."""
    codes = {s.label: s for s in _core.Strategy.__members__.values()}
    return _core.testing.plan_stats(sequences, targets, codes[strategy], max_cells, max_slots)
