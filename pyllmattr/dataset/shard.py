"""Splitting a dataset into chunks (one engine call each) and chunks into shards (one
worker each), keeping inputs that share a prefix together.

Inputs are stably sorted by the first :data:`PREFIX_CHARS` characters of their
prompt, so prompts that start alike (the same few-shot examples, the same
document) become neighbours and share chunks, where the engine decodes their common
prefix once; inputs whose prompts differ earlier keep their order. Shards are runs of
whole chunks, cut where neighbouring prompts share the least. In-process and Ray
runs use the same chunks, so they score the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._checks import check_positive_int
from .records import Task

# About 16 tokens: the granularity at which the engine shares prefixes.
PREFIX_CHARS = 64


def make_chunks(tasks: Sequence[Task], chunk_size: int) -> list[list[Task]]:
    """The tasks in prefix order, cut into chunks of at most ``chunk_size``.

    Example:
        >>> [[j.index for j in c] for c in make_chunks([Task(0, 0, None, prefix="b"),
        ...     Task(1, 1, None, prefix="a"), Task(2, 2, None, prefix="b")], 2)]
        [[1, 0], [2]]
    """
    check_positive_int("chunk_size", chunk_size)
    ordered = sorted(tasks, key=lambda task: task.prefix[:PREFIX_CHARS])
    return [list(ordered[i : i + chunk_size]) for i in range(0, len(ordered), chunk_size)]


def make_shards(chunks: Sequence[list[Task]], n_shards: int) -> list[list[int]]:
    """Chunk indices of each shard: ``n_shards`` (at most one per chunk) contiguous runs
    of about equal size, each cut moved (by up to a quarter of a shard) to where the
    prompts on either side share the shortest prefix.

    Example:
        >>> chunks = [[Task(i, i, None, prefix=p)] for i, p in enumerate("aabb")]
        >>> make_shards(chunks, 2)
        [[0, 1], [2, 3]]
    """
    n = len(chunks)
    n_shards = max(1, min(n_shards, n))
    if n_shards == 1:
        return [list(range(n))] if n else []
    shared = [_common_prefix(chunks[i - 1][-1].prefix, chunks[i][0].prefix) for i in range(1, n)]
    window = max(0, n // (4 * n_shards))
    cuts, previous = [], 0
    for k in range(1, n_shards):
        ideal = round(k * n / n_shards)
        low = max(previous + 1, ideal - window)
        high = min(n - (n_shards - k), ideal + window)
        candidates = range(low, max(low, high) + 1)
        # shared[c - 1] is what chunks c - 1 and c have in common; ties: nearest the ideal
        cut = min(candidates, key=lambda c: (shared[c - 1], abs(c - ideal)))
        cuts.append(cut)
        previous = cut
    bounds = [0, *cuts, n]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_shards)]


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))
