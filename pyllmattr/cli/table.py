"""The ranked table the command line prints for a result."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..render import short_label

BAR_WIDTH = 30


def format_result(result: Any, top: int = 20) -> str:
    """A readable report: prompt, target with its log-prob, features ranked by |attribution|.

    Example:
        >>> print(format_result(result))  # doctest: +SKIP
    """
    lines = [
        f"prompt: {result.prompt!r}",
        f"target: {result.target!r}",
        f"        log p = {result.target_logprob:.3f} (p = {math.exp(result.target_logprob):.3g}) "
        f"over {_plural(len(result.output_tokens), 'token')}",
        *_contrast_lines(result),
        "",
        f"{result.method}: how much each feature raises (+) or lowers (-) {result.quantity}",
    ]
    lines += _ranking(result, top)
    lines += ["", _summary(result)]
    return "\n".join(lines)


def _ranking(result: Any, top: int) -> list[str]:
    # Rows are feature indices, not names: two features may share a label (two
    # "the" with by="word"), and each row's noise mark must be its own feature's.
    ranked = _top_indices(result.seq_attr, min(top, len(result.input_features)))
    quiet = result.below_noise()
    values = [float(result.seq_attr[i]) for i in ranked]
    labels = [short_label(result.input_features[i], 32) for i in ranked]
    width = max([len("feature"), *map(len, labels)])
    largest = max((abs(v) for v in values), default=0.0) or 1.0
    rows = [f"  {'rank':>4}  {'feature':<{width}}  {'attribution':>11}"]
    for rank, (i, value, label) in enumerate(zip(ranked, values, labels, strict=True), start=1):
        bar = "#" * max(1 if value else 0, round(abs(value) / largest * BAR_WIDTH))
        mark = "~" if quiet[i] else " "
        rows.append(f"  {rank:>4}  {label:<{width}}  {value:+11.4f}{mark} {bar}")
    hidden = len(result.input_features) - len(ranked)
    if hidden:
        rows.append(f"  ... {hidden} more (--top N to list them)")
    if any(quiet[i] for i in ranked):
        rows.append(
            f"  ~ within the noise floor ±{result.noise_floor:.4f} (llama.cpp batch noise; "
            "--deterministic removes it)"
        )
    return rows


def _contrast_lines(result: Any) -> list[str]:
    if result.contrast_tokens is None:
        return []
    return [
        f"contrast: {result.contrast!r}",
        f"        log p = {result.contrast_logprob:.3f} over "
        f"{_plural(len(result.contrast_tokens), 'token')}",
    ]


def _top_indices(seq_attr: Any, k: int) -> list[int]:
    """Indices of the k largest |attributions|, largest first, ties in feature order
    (the order of ``AttributionResult.top_features``)."""
    return [int(i) for i in np.argsort(-np.abs(np.asarray(seq_attr)), kind="stable")[:k]]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _summary(result: Any) -> str:
    stats = result.stats
    if not stats:
        return ""
    text = f"{stats.get('n_evaluations', '?')} prompts scored"
    if "n_decoded" in stats:
        text += f": {stats['n_decoded']} tokens decoded (one by one: {stats.get('n_naive', '?')})"
    if "seconds" in stats:
        text += f" in {stats['seconds']:.2f} s"
    return text
