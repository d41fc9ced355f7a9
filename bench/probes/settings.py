"""Decode throughput of pyllmattr's scorer under llama.cpp settings and weight conversions.

Scores random-token sequences (no shared prefix; several per decode) with every
flash_attn x n_batch combination, then with the weights converted by ``requantize=``,
and reports how far each conversion's log-probs move from the file's own. On a quiet machine:

    python bench settings --seqs 4 --tokens 256 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import pyllmattr as pla


def timed_scores(
    model, seqs, target, repeats: int, share_prefix: bool
) -> tuple[float, float, np.ndarray]:
    """(median seconds, tokens/s, log-probs) of scoring ``seqs`` in one call."""
    model.score(seqs[:1], target)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores, stats = model.score(seqs, target, share_prefix=share_prefix, return_stats=True)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return median, stats.n_decoded / median, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="GGUF file (default: the demo model)")
    args = parser.parse_args()
    path = args.model or pla.default_model_path()
    rng = np.random.default_rng(0)
    seqs = rng.integers(100, 40000, size=(args.seqs, args.tokens)).tolist()
    target = rng.integers(100, 40000, size=8).tolist()

    for flash_attn in ("on", "off"):
        for n_batch in (64, 128, 256, 512):
            options = {"n_threads": args.threads, "flash_attn": flash_attn, "n_batch": n_batch}
            with pla.load_gguf(path, **options) as model:
                median, speed, _ = timed_scores(model, seqs, target, args.repeats, True)
            print(f"flash_attn={flash_attn} n_batch={n_batch}: {median:.2f} s, {speed:.0f} tok/s")

    reference = None
    for kind in (None, "f16", "q8_0", "q4_0"):
        with pla.load_gguf(path, n_threads=args.threads, requantize=kind) as model:
            # one sequence at a time: batch layout adds no noise to the comparison
            median, speed, scores = timed_scores(model, seqs, target, args.repeats, False)
        reference = scores if reference is None else reference
        change = np.abs(scores - reference)
        print(
            f"weights {kind or 'as shipped'}: {median:.2f} s, {speed:.0f} tok/s, "
            f"|change in log-prob| mean {change.mean():.3f} max {change.max():.3f}"
        )


if __name__ == "__main__":
    main()
