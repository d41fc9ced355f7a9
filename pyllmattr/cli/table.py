"""The ranked table the command line prints for a result."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._text import display_width, pad_width
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
    lines += _certainty_lines(result)
    lines += _top_pairs(result, min(top, 10))
    lines += ["", _summary(result)]
    return "\n".join(lines)


def _ranking(result: Any, top: int) -> list[str]:
    # Rows are feature indices, not names: two features may share a label (two
    # "the" with by="word"), and each row's noise mark must be its own feature's.
    ranked = _top_indices(result.seq_attr, min(top, len(result.input_features)))
    quiet = result.below_noise()
    values = [float(result.seq_attr[i]) for i in ranked]
    labels = [short_label(result.input_features[i], 32) for i in ranked]
    # Pad by display width: a Chinese or Japanese label is twice as wide as it is long.
    width = max([len("feature"), *map(display_width, labels)])
    largest = max((abs(v) for v in values), default=0.0) or 1.0
    stderr = result.seq_attr_stderr
    head = f"  {'rank':>4}  {'feature':<{width}}  {'attribution':>11}"
    rows = [head + ("  ± std.err" if stderr is not None else "")]
    for rank, (i, value, label) in enumerate(zip(ranked, values, labels, strict=True), start=1):
        bar = "#" * max(1 if value else 0, round(abs(value) / largest * BAR_WIDTH))
        mark = "~" if quiet[i] else " "
        error = f"  ±{float(stderr[i]):8.4f}" if stderr is not None else ""
        rows.append(f"  {rank:>4}  {pad_width(label, width)}  {value:+11.4f}{mark}{error} {bar}")
    rows = _mark_staged(result, rows, ranked)
    hidden = len(result.input_features) - len(ranked)
    if hidden:
        rows.append(f"  ... {hidden} more (--top N to list them)")
    if any(quiet[i] for i in ranked):
        rows.append(
            f"  ~ within the noise floor ±{result.noise_floor:.4f} (llama.cpp batch noise; "
            "exact scoring, the default on the CPU, removes it)"
        )
    return rows


def _certainty_lines(result: Any) -> list[str]:
    """How sure sampled values are, and whether approximated ones converged."""
    lines = []
    if result.top_k_prob:
        probs = ", ".join(f"top-{k} {p:.2f}" for k, p in enumerate(result.top_k_prob, start=1))
        lines.append(f"  bootstrap: probability that the ranking's first k hold: {probs}")
    from ..methods.convergence import describe  # lazily: it imports every method

    convergence = describe(result.convergence)
    if convergence:
        lines.append(f"  {convergence}")
    return lines


def format_faithfulness(faith: Any, points: int = 6) -> str:
    """What ``--evaluate`` prints: LDS, AOPC against chance, the curves' first points.

    Example:
        >>> print(format_faithfulness(pla.evaluate(result, model)))  # doctest: +SKIP
    """
    lds = "n/a" if faith.lds is None else f"{faith.lds:+.3f}"

    def chance(value: Any) -> str:
        return "" if value is None else f"   random orders {value:+.3f}"

    def curve(values: Any) -> str:
        shown = "  ".join(f"{k}: {float(v):.3f}" for k, v in enumerate(values[:points]))
        return shown + ("  ..." if len(values) > points else "")

    return "\n".join(
        [
            f"faithfulness ({faith.quantity}; {faith.n_prompts} prompts in one engine call):",
            f"  LDS {lds} (Spearman over {faith.n_ablations} random ablations; 1 is best)",
            f"  AOPC deletion  {faith.aopc_deletion:+.3f} (comprehensiveness, higher is better)"
            + chance(faith.aopc_deletion_random),
            f"  AOPC insertion {faith.aopc_insertion:+.3f} (sufficiency, lower is better)"
            + chance(faith.aopc_insertion_random),
            f"  deletion,  k features removed: {curve(faith.deletion)}",
            f"  insertion, k features kept:    {curve(faith.insertion)}",
        ]
    )


def _top_pairs(result: Any, k: int) -> list[str]:
    """Interaction results: the strongest interactions of two or more features."""
    top = result.top_interactions(k) if hasattr(result, "top_interactions") else []
    if not top:
        return []
    how = "exact" if result.exact else f"estimated by {result.approximator}"
    rows = ["", f"strongest {result.index} interactions ({how}, {result.budget_used} coalitions):"]
    for rank, (names, value) in enumerate(top, start=1):
        label = " x ".join(short_label(name, 24) for name in names)
        rows.append(f"  {rank:>4}  {value:+11.4f}  {label}")
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


def _mark_staged(result: Any, rows: list[str], ranked: list[int]) -> list[str]:
    """Say which values a proxy computed or a coarse unit stands for (staged methods)."""
    computed_by = getattr(result, "computed_by", None)
    if not computed_by:
        return rows
    marked = [rows[0]]
    for row, f in zip(rows[1:], ranked, strict=True):
        notes = []
        if computed_by[f] == "proxy":
            notes.append("proxy")
        if not result.refined[f]:
            notes.append("coarse" if computed_by[f] == "target" else "not rescored")
        marked.append(row + (f"  ({', '.join(notes)})" if notes else ""))
    return marked


def format_context(result: Any, top: int = 5) -> str:
    """The prompt with the ``top`` features marked in place: ``[#1 +4.14| ...]``.

    Example:
        >>> print(format_context(result, top=3))  # doctest: +SKIP
    """
    rank = {f: r for r, f in enumerate(_top_indices(result.seq_attr, top), start=1)}
    parts = []
    for text, feature in result.prompt_segments:
        if feature is None or feature not in rank:
            parts.append(text)
            continue
        lead = text[: len(text) - len(text.lstrip())]
        value = float(result.seq_attr[feature])
        parts.append(f"{lead}[#{rank[feature]} {value:+.2f}| {text.strip()}]")
    return f"the prompt, top {len(rank)} features marked [#rank attribution| ...]:\n" + "".join(
        parts
    )


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
