"""The engine side of the pipeline: every (prompt, continuation) pair of every job in a
few ``score_pairs`` calls, and the noise floor.

A job's prompts are scored each followed by every continuation its objective scores
(:func:`score_prompts`), the continuations of a prompt side by side so that the prompt
is one branch of the engine's prefix trie. Pairs are scored in input order, in chunks
of about :data:`CHUNK_TOKENS` naive tokens (prompt + continuation): a chunk is the unit
of progress, cancellation and memory, and chunk boundaries ignore input boundaries, so a
batch of short inputs is one call.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..cancel import Cancelled, CancelToken
from ..models.interface import ScoreStats, ScoringModel
from ..progress import JobProgress, progress_callback
from .jobs import Job, Settings

# Naive tokens per score_pairs call: large enough that one attribution (or a batch of
# short ones) is one call, small enough that the engine's trie and the token lists of
# a dataset-sized batch stay in the tens of megabytes.
CHUNK_TOKENS = 1 << 18
# ScoreStats' fields that add up over calls (all but the strategy).
_SUMMED = tuple(f.name for f in dataclasses.fields(ScoreStats) if f.name != "strategy")


def score_prompts(
    model: ScoringModel,
    jobs: Sequence[Job],
    prompts: Sequence[Sequence[list[int]]],
    settings: Settings,
    what: str,
) -> tuple[list[list[np.ndarray]], dict[str, Any]]:
    """``prompts[j]`` of every job ``j``, each with every continuation of the job's
    objective, in one :func:`score_all` call (``what`` names it in progress).

    Returns per job one (n_prompts, len(continuation)) array of log-probs per
    continuation (the target first), and the call's stats.

    Example:
        >>> scored, stats = score_prompts(model, jobs, prompts, settings, "masks")  # doctest: +SKIP
        >>> scored[0][0].shape  # job 0's prompts, with its target  # doctest: +SKIP
        (5, 2)
    """
    sequences, targets = pairs(model, jobs, prompts)
    desc = f"{what}: {sum(map(len, prompts))} prompts"
    if len(jobs) > 1:
        desc += f" of {len(jobs)} inputs"
    scores, stats = score_all(model, sequences, targets, settings.progress, settings.cancel, desc)
    return per_continuation(jobs, [len(mine) for mine in prompts], scores), stats


def pairs(
    model: ScoringModel, jobs: Sequence[Job], prompts: Sequence[Sequence[list[int]]]
) -> tuple[list[list[int]], list[list[int]]]:
    """The (sequence, target) pairs of ``prompts[j]`` of every job ``j``: each prompt once
    per continuation of the job's objective, side by side (one branch of the engine's
    prefix trie); an empty prompt (every feature removed) as :func:`empty_context`."""
    sequences, targets = [], []
    for job, mine in zip(jobs, prompts, strict=True):
        for prompt in mine:
            for continuation in job.scored_targets:
                sequences.append(prompt or empty_context(model))
                targets.append(continuation)
    return sequences, targets


def per_continuation(
    jobs: Sequence[Job], sizes: Sequence[int], scores: Sequence[np.ndarray]
) -> list[list[np.ndarray]]:
    """Flat scores of ``sizes[j]`` prompts per job, each prompt followed by the job's
    continuations, as one (sizes[j], len(continuation)) array per job and continuation."""
    out, row = [], 0
    for job, size in zip(jobs, sizes, strict=True):
        continuations = job.scored_targets
        k = len(continuations)
        mine = scores[row : row + k * size]
        row += k * size
        out.append(
            [
                np.stack(mine[i::k]) if size else np.empty((0, len(continuation)))
                for i, continuation in enumerate(continuations)
            ]
        )
    return out


def score_all(
    model: ScoringModel,
    sequences: Sequence[list[int]],
    targets: Sequence[list[int]],
    progress: Any,
    cancel: CancelToken | None,
    desc: str,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Log-probs of targets[i] after sequences[i] for every i, and the calls' stats
    (:class:`ScoreStats`' fields, ``seconds`` of wall time, and ``n_score_calls``)."""
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
            parts.append(dataclasses.asdict(stats))
    merged = merge_stats(parts)
    merged["seconds"] = time.perf_counter() - started
    merged["n_score_calls"] = len(parts)
    return scores, merged


def merge_stats(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The stats of several scoring calls (:class:`ScoreStats` fields, as dicts) as one:
    every field summed but the strategy, which is the first call's (absent without calls)."""
    merged: dict[str, Any] = {name: sum(part[name] for part in parts) for name in _SUMMED}
    merged["seconds"] = float(merged["seconds"])
    if parts:
        merged["strategy"] = parts[0]["strategy"]
    return merged


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


def scores_are_exact(model: ScoringModel) -> bool:
    """Whether the model guarantees that a prompt scores the same in any batch, so the
    noise floor is 0 without measuring and a prompt scored once need not be scored again
    (llama.cpp's exact layout on the CPU)."""
    return bool(model.scores_are_exact)


def noise_floors(
    model: ScoringModel, jobs: Sequence[Job], references: Sequence[Sequence[np.ndarray]]
) -> list[np.ndarray]:
    """|f(reference as evaluated) - f(reference scored alone)| per job, for [whole target,
    each token]: how far batch layout moved the numbers. One call for all jobs."""
    if scores_are_exact(model):
        return [np.zeros(len(job.target_ids) + 1) for job in jobs]
    sequences, targets = pairs(model, jobs, [[job.encoding.reference_ids] for job in jobs])
    alone = model.score_pairs(sequences, targets, share_prefix=False)
    floors = []
    for job, mine, reference in zip(
        jobs, per_continuation(jobs, [1] * len(jobs), alone), references, strict=True
    ):
        evaluated = job.objective.outputs([np.asarray(r)[None] for r in reference])
        floors.append(np.abs(evaluated - job.objective.outputs(mine))[0])
    return floors


def empty_context(model: ScoringModel) -> list[int]:
    """The prompt of a perturbation that removed everything: the model's start token
    (BOS, or EOS for models that separate documents with it), so the model predicts
    the target from no context."""
    for token in (model.bos_token_id, model.eos_token_id):
        if token is not None:
            return [token]
    raise ValueError(
        "a perturbation removed the whole prompt and the model has no BOS/EOS "
        "token to stand for an empty context; keep part of the prompt fixed"
    )
