"""Test-only hooks into the engine and the Ray runner. Not part of pyllmattr's API:
tests use them to provoke failures for real (a full KV cache, a Ray actor that dies or
lags) and to count what the planner decodes without a model.

Example:
    >>> from pyllmattr._testing import plan_stats
    >>> plan_stats([[1, 2, 3], [1, 2, 4]], [[9], [9]])["n_trie"]
    6
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from ._native import _core
from .dataset.ray_runner import DatasetWorker, RayRunner

WAIT_S = 120.0  # the longest a WaitingWorker waits: a test that forgets to release ends


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


def exact_self_check(model: Any, block: int, row_mult: int, row_min: int) -> bool:
    """Run the exact layout's self-check on ``model`` with these rules (its own rules are
    left as they are): True when prefix-shared scores equal scores alone bit for bit."""
    return _core.testing.exact_self_check(model._engine, int(block), int(row_mult), int(row_min))


# ---------------------------------------------------------------- Ray actors


class ExitingWorker(DatasetWorker):
    """A Ray actor whose process exits on its first chunk, as a crashed or killed
    worker's would (Ray reports a RayActorError)."""

    def run(self, *args: Any) -> Any:
        os._exit(1)


class WaitingWorker(DatasetWorker):
    """A Ray actor that starts no chunk before the file ``release`` exists, as a slow
    worker would (it waits at most :data:`WAIT_S` seconds)."""

    def __init__(self, model: Any, method: Any, load_args: dict, release: str) -> None:
        super().__init__(model, method, load_args)
        self.release = release

    def run(self, *args: Any) -> Any:
        deadline = time.monotonic() + WAIT_S
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().run(*args)


def first_actor_runs(runner: RayRunner, worker: type, *args: Any) -> RayRunner:
    """Make the first actor ``runner`` starts a ``worker`` (given ``args`` after the
    usual ones); every other actor, a replacement of the first included, runs normally."""
    launch = runner._launch
    launched: list[Any] = []

    def launch_first_as_worker() -> Any:
        if launched:
            return launch()
        launched.append(worker)
        actor_class = runner.ray.remote(num_cpus=runner.cpus)(worker)
        return actor_class.remote(runner.model, runner.method, runner.load_args, *args)

    runner._launch = launch_first_as_worker  # type: ignore[method-assign]
    return runner
