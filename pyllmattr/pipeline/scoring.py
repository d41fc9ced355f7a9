"""The engine side of the pipeline: every (prompt, continuation) pair of every job in a
few ``score_pairs`` calls, and the noise floor.

Pairs are scored in input order, in chunks of about :data:`CHUNK_TOKENS` naive tokens
(prompt + continuation): a chunk is the unit of progress, cancellation and memory, and
chunk boundaries ignore input boundaries, so a batch of short inputs is one call.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..cancel import Cancelled
from ..models.interface import ScoreStats
from ..progress import JobProgress, progress_callback
from .jobs import Job

# Naive tokens per score_pairs call: large enough that one attribution (or a batch of
# short ones) is one call, small enough that the engine's trie and the token lists of
# a dataset-sized batch stay in the tens of megabytes.
CHUNK_TOKENS = 1 << 18


def score_all(
    model: Any,
    sequences: Sequence[list[int]],
    targets: Sequence[list[int]],
    progress: Any,
    cancel: Any,
    desc: str,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Log-probs of targets[i] after sequences[i] for every i, and the calls' stats."""
    started = time.perf_counter()
    naive = [len(s) + len(t) for s, t in zip(sequences, targets, strict=True)]
    bounds = chunk_bounds(naive, CHUNK_TOKENS)
    scores: list[np.ndarray] = []
    parts = []
    with progress_callback(progress, desc) as report:
        job = JobProgress(report, [sum(naive[lo:hi]) for lo, hi in bounds])
        for lo, hi in bounds:
            if cancel is not None and cancel.cancelled:  # between chunks too
                raise Cancelled("attribution cancelled")
            chunk, stats = model.score_pairs(
                sequences[lo:hi],
                targets[lo:hi],
                progress=job.callback(),
                cancel=cancel,
                return_stats=True,
            )
            job.call_done(stats.n_decoded)
            scores += [np.asarray(s, dtype=float) for s in chunk]
            parts.append(stats)
    merged = merge_stats(parts, time.perf_counter() - started)
    return scores, {**dataclasses.asdict(merged), "n_score_calls": len(parts)}


def chunk_bounds(sizes: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) ranges whose sizes sum to at most ``budget`` (at least one
    item each)."""
    bounds, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > budget:
            bounds.append((start, i))
            start, total = i, 0
        total += size
    bounds.append((start, len(sizes)))
    return bounds


def scores_are_exact(model: Any) -> bool:
    """Whether the model guarantees that a prompt scores the same in any batch, so the
    noise floor is 0 without measuring (llama.cpp's deterministic mode on the CPU)."""
    return bool(model.scores_are_exact)


def merge_stats(parts: Sequence[ScoreStats], seconds: float) -> ScoreStats:
    """The stats of the score_pairs calls (chunks) of one attribution."""
    return ScoreStats(
        n_decoded=sum(p.n_decoded for p in parts),
        n_trie=sum(p.n_trie for p in parts),
        n_naive=sum(p.n_naive for p in parts),
        n_decode_calls=sum(p.n_decode_calls for p in parts),
        n_waves=sum(p.n_waves for p in parts),
        n_padding=sum(p.n_padding for p in parts),
        n_unique=sum(p.n_unique for p in parts),
        seconds=seconds,
        strategy=parts[0].strategy,
    )


def noise_floors(
    model: Any, jobs: Sequence[Job], references: Sequence[Sequence[np.ndarray]]
) -> list[np.ndarray]:
    """|f(reference as evaluated) - f(reference scored alone)| per job, for [whole target,
    each token]: how far batch layout moved the numbers. One call for all jobs."""
    if scores_are_exact(model):
        return [np.zeros(len(job.target_ids) + 1) for job in jobs]
    sequences, targets = [], []
    for job in jobs:
        for continuation in job.scored_targets:
            sequences.append(job.encoding.reference_ids)
            targets.append(continuation)
    alone = iter(model.score_pairs(sequences, targets, share_prefix=False))
    floors = []
    for job, reference in zip(jobs, references, strict=True):
        mine = [np.asarray(next(alone))[None] for _ in job.scored_targets]
        evaluated = job.objective.outputs([np.asarray(r)[None] for r in reference])
        floors.append(np.abs(evaluated - job.objective.outputs(mine))[0])
    return floors
