"""Plots (matplotlib, imported lazily) and HTML views of attribution results."""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

from ._text import fit_width

LABEL_CHARS = 24


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` columns (a Chinese character takes two)."""
    return fit_width(" ".join(text.split()) or repr(text), limit)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plots need matplotlib: pip install 'pyllmattr[plot]' (or pip install matplotlib)"
        ) from exc
    return plt


def plot_seq_attr(result: Any, ax: Any = None) -> tuple[Any, Any]:
    plt = _pyplot()
    values = np.asarray(result.seq_attr)
    labels = [short_label(s) for s in result.input_features]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(values)), 4), layout="constrained")
    else:
        fig = ax.figure
    colors = np.where(values >= 0, "#2166ac", "#b2182b")
    bars = ax.bar(
        np.arange(len(values)),
        values,
        color=colors,
        yerr=result.seq_attr_std if result.seq_attr_std is not None else None,
    )
    if result.noise_floor:
        # Attributions within the batch-layout noise: a grey band, faded hatched bars.
        floor = result.noise_floor
        ax.axhspan(-floor, floor, color="0.85", zorder=0, label=f"noise floor ±{floor:.3f}")
        for bar, quiet in zip(bars, result.below_noise(), strict=True):
            if quiet:
                bar.set_alpha(0.4)
                bar.set_hatch("//")
        ax.legend(loc="best", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right")
    ax.set_ylabel(f"attribution ({result.quantity})")
    ax.set_title(f"{result.method}: {_target_words(result)}")
    return fig, ax


def plot_token_attr(result: Any, ax: Any = None) -> tuple[Any, Any]:
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    if result.token_attr is None:
        raise ValueError("this result has no per-token attributions")
    values = np.asarray(result.token_attr)
    limit = float(np.abs(values).max()) or 1.0
    if ax is None:
        size = (max(6, 0.5 * values.shape[1] + 2), max(3, 0.4 * values.shape[0] + 1.5))
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap="RdBu", norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto")
    ax.set_xticks(
        np.arange(values.shape[1]),
        [short_label(s) for s in result.input_features],
        rotation=60,
        ha="right",
    )
    ax.set_yticks(np.arange(values.shape[0]), [short_label(t, 16) for t in result.output_tokens])
    ax.set_xlabel("input features")
    ax.set_ylabel("target tokens")
    floors = result.token_noise_floor
    if values.size <= 400:
        for (row, col), value in np.ndenumerate(values):
            quiet = floors is not None and abs(value) <= floors[row]
            color = "0.55" if quiet else ("white" if abs(value) > 0.6 * limit else "black")
            style = "italic" if quiet else "normal"
            ax.text(
                col,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color=color,
                style=style,
            )
    fig.colorbar(image, ax=ax, label=f"attribution ({result.quantity})")
    return fig, ax


def _color(value: float, limit: float) -> str:
    """Background for an attribution: blue raises the target, red lowers it."""
    strength = min(abs(value) / limit, 1.0) if limit > 0 else 0.0
    rgb = (33, 102, 172) if value >= 0 else (178, 24, 43)
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.85 * strength:.3f})"


# The chat template's fixed text (first and last segments of a chat result): set apart,
# since it is neither a feature nor the user's words.
CHAT_STYLE = "color:#777;font-family:monospace;font-size:smaller"


def to_html(result: Any, faithfulness: Any = None) -> str:
    """The result's HTML view; with ``faithfulness`` (default: ``result.faithfulness``)
    its curves and scores below."""
    if faithfulness is None:
        faithfulness = getattr(result, "faithfulness", None)
    values = np.asarray(result.seq_attr)
    limit = float(np.abs(values).max()) if values.size else 1.0
    quiet = result.below_noise()
    chat = bool(result.settings.get("chat"))
    last = len(result.prompt_segments) - 1
    spans = []
    previous = ""  # the text of the segment before, when it is a feature
    for i, (text, feature) in enumerate(result.prompt_segments):
        touches, previous = _touches(previous, text), text if feature is not None else ""
        escaped = html.escape(text)
        if feature is None and chat and i in (0, last):
            spans.append(f'<span class="pla-chat" style="{CHAT_STYLE}">{escaped}</span>')
            continue
        if feature is None:
            spans.append(f'<span class="pla-text">{escaped}</span>')
            continue
        value = float(values[feature])
        title = f"{result.input_features[feature]}: {value:+.4f}"
        css, extra = "pla-feature", ""
        if quiet[feature]:
            title += f" (within the noise floor ±{result.noise_floor:.4f})"
            css, extra = "pla-feature pla-below-noise", "outline:1px dashed #888;"
        note = _staged_note(result, feature)
        if note:
            title += f" ({note})"
            css, extra = css + " pla-coarse", extra + "border-bottom:1px dotted #555;"
        attrs = f'data-feature="{feature}" title="{html.escape(title)}"'
        style = f"background:{_color(value, limit)};{extra}"
        spans += _feature_spans(text, css, attrs, style, TOUCH_STYLE if touches else "")
    return (
        '<div class="pla-result" style="font-family:sans-serif;line-height:1.8">'
        f'<div style="white-space:pre-wrap">{"".join(spans)}{_target_html(result)}</div>'
        f"{_top_units_html(result)}{_levels_html(result)}{_top_pairs_html(result)}"
        f'<div style="font-size:smaller;color:#555">{html.escape(result.method)} · '
        f"{_logprob_note(result)} · {_noise_note(result)}{_completeness_note(result)}"
        f"{_convergence_note(result)}"
        f"{_legend(result)}; hover for values</div>"
        f"{faithfulness_html(faithfulness) if faithfulness is not None else ''}</div>"
    )


# Features with no space between them (Chinese, Japanese and Thai words, subword tokens)
# would merge into one highlight; a thin white line drawn inside the later one's left
# edge parts them without moving the text.
TOUCH_STYLE = "box-shadow:inset 1px 0 0 #fff;"


def _touches(previous_feature: str, text: str) -> bool:
    """Whether a feature starts right where the feature before it ends, no space between."""
    return bool(previous_feature[-1:].strip() and text[:1].strip())


def _target_words(result: Any) -> str:
    """The target, and the contrast it is attributed against (titles)."""
    words = repr(short_label(result.target, 60))
    if result.contrast is not None:
        words += f" rather than {short_label(result.contrast, 40)!r}"
    return words


def _logprob_note(result: Any) -> str:
    note = f"log p(target) = {result.target_logprob:.3f}"
    if result.contrast is not None and result.contrast_logprob is not None:
        contrast = html.escape(repr(result.contrast))
        note += f", log p(contrast {contrast}) = {result.contrast_logprob:.3f}"
    return note


def _legend(result: Any) -> str:
    blue, red = '<span style="color:#2166ac">blue</span>', '<span style="color:#b2182b">red</span>'
    if result.contrast is not None:
        contrast = html.escape(repr(result.contrast))
        return f"{blue} favours the target over {contrast}, {red} favours {contrast}"
    return f"{blue} raises the target, {red} lowers it"


# Whitespace around a feature, and line breaks inside it, are drawn as plain text: a
# highlight (or a dashed outline) on them would box a blank line or a lone space.
_SPACE_RUNS = re.compile(r"^\s+|\s*\n\s*|\s+$")


def _feature_spans(text: str, css: str, attrs: str, style: str, first: str = "") -> list[str]:
    """A feature's text as highlighted spans of its visible runs, whitespace between them;
    ``first`` is added to the first run's style."""
    if not text.strip():  # a whitespace token: addressable (hover), never highlighted
        return [f'<span class="{css} pla-space" {attrs}>{html.escape(text)}</span>']
    out: list[str] = []
    at = 0
    for match in [*_SPACE_RUNS.finditer(text), None]:
        start, end = (match.start(), match.end()) if match else (len(text), len(text))
        if start > at:
            run_style = style + (first if not out else "")
            out.append(
                f'<span class="{css}" {attrs} style="{run_style}">'
                f"{html.escape(text[at:start])}</span>"
            )
        if end > start:
            out.append(html.escape(text[start:end]))
        at = end
    return out


def _staged_note(result: Any, feature: int) -> str:
    """What a staged method's value of ``feature`` stands for (empty when scored itself)."""
    computed_by = getattr(result, "computed_by", None)
    if not computed_by:
        return ""
    notes = ["computed by the proxy model"] if computed_by[feature] == "proxy" else []
    if not result.refined[feature]:
        notes.append("not refined: the value of the unit that contains it")
    return "; ".join(notes)


def _top_units_html(result: Any, k: int = 5) -> str:
    """For staged (context) methods: the top units first, in a small table."""
    if not getattr(result, "levels", None):
        return ""
    order = np.argsort(-np.abs(np.asarray(result.seq_attr)), kind="stable")[:k]
    rows = "".join(
        f'<tr><td>{rank}</td><td style="background:{_color(float(result.seq_attr[f]), 1e-9)}'
        f';opacity:0.9">&nbsp;</td><td>{html.escape(result.input_features[f])}</td>'
        f'<td style="text-align:right">{float(result.seq_attr[f]):+.3f}</td>'
        f"<td>{html.escape(_staged_note(result, f) or result.computed_by[f])}</td></tr>"
        for rank, f in enumerate(order, start=1)
    )
    return (
        '<table class="pla-top-units" style="font-size:smaller;margin-top:0.5em">'
        "<tr><th>rank</th><th></th><th>unit</th><th>attribution</th><th>computed by</th></tr>"
        f"{rows}</table>"
    )


def _levels_html(result: Any) -> str:
    """For methods that refine level by level (hierarchical ablation): every level's
    units and values, coarse to fine, and the units refined further (a folded section)."""
    levels = getattr(result, "levels", None) or []
    if len(levels) < 2:
        return ""
    tables = "".join(_level_table(result, depth, stage) for depth, stage in enumerate(levels))
    path = " → ".join(html.escape(str(stage["level"])) for stage in levels)
    return (
        '<details class="pla-levels" style="font-size:smaller;margin-top:0.5em">'
        f"<summary>levels: {path} (what each level scored)</summary>{tables}</details>"
    )


def _level_table(result: Any, depth: int, stage: dict) -> str:
    values = [float(v) for v in stage["seq_attr"]]
    limit = max((abs(v) for v in values), default=0.0)
    labels = stage.get("labels") or [
        result.input_features[u] if depth == len(result.levels) - 1 else f"{stage['level']} {u + 1}"
        for u in stage["units"]
    ]
    kept = set(stage.get("kept", []))
    rows = "".join(
        f'<tr data-unit="{unit}"><td style="background:{_color(value, limit)}">&nbsp;</td>'
        f'<td title="{html.escape(label)}">{html.escape(short_label(label, 60))}</td>'
        f'<td style="text-align:right">{value:+.3f}</td>'
        f"<td>{'refined' if unit in kept else ''}</td></tr>"
        for unit, label, value in zip(stage["units"], labels, values, strict=True)
    )
    what = f"{len(values)} {html.escape(str(stage['level']))} unit(s)"
    if kept:
        what += f", the {len(kept)} marked refined at the next level"
    return (
        f'<table class="pla-level" data-level="{html.escape(str(stage["level"]))}" '
        'style="margin-top:0.4em">'
        f'<caption style="caption-side:top;text-align:left">level {depth + 1}: {what}; '
        f"scored by the {html.escape(str(stage['model']))} model</caption>{rows}</table>"
    )


def _top_pairs_html(result: Any) -> str:
    """For interaction results: the strongest interactions, and the matrix of pairs."""
    from .interaction_result import interaction_matrix_html, top_pairs_html  # lazily: cycle

    return top_pairs_html(result) + interaction_matrix_html(result)


def _target_html(result: Any) -> str:
    """The target, token by token (hover: each token's log-probability)."""
    logprobs = result.target_token_logprobs
    tokens = []
    for t, token in enumerate(result.output_tokens):
        title = f"target token {t}: {token!r}"
        if logprobs is not None and t < len(logprobs):
            title += f", log p = {float(logprobs[t]):.3f}"
        tokens.append(
            f'<span class="pla-target-token" title="{html.escape(title)}" '
            f'style="border-bottom:2px solid #555;margin-right:1px">{html.escape(token)}</span>'
        )
    contrast = ""
    if result.contrast is not None:
        contrast = (
            '<span class="pla-contrast" style="color:#555"> rather than '
            f"{html.escape(repr(result.contrast))}</span>"
        )
    return f'<span class="pla-target">{"".join(tokens)}</span>{contrast}'


def _noise_note(result: Any) -> str:
    if result.noise_floor is None:
        return ""
    if result.noise_floor == 0:
        return "batch-invariant scores · "
    return f"noise floor ±{result.noise_floor:.3f} (dashed: within it) · "


def _completeness_note(result: Any) -> str:
    gap = getattr(result, "seq_completeness_gap", None)
    if gap is None:
        return ""
    return f"completeness gap {gap:+.4f} · "


def _convergence_note(result: Any) -> str:
    from .methods.convergence import describe  # lazily: pyllmattr.methods imports this module

    text = describe(getattr(result, "convergence", None))
    return f'<span class="pla-convergence">{html.escape(text)}</span> · ' if text else ""


def html_page(result: Any, faithfulness: Any = None) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>pyllmattr: {html.escape(result.method)}</title></head>"
        f'<body style="max-width:60em;margin:2em auto">{to_html(result, faithfulness)}'
        "</body></html>"
    )


# ---------------------------------------------------------------- faithfulness


def plot_faithfulness(faith: Any, axes: Any = None) -> tuple[Any, Any]:
    """Deletion and insertion curves, each with the random orders' mean and a band of
    one standard deviation around it."""
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharey=True)
    else:
        fig = axes[0].figure
    for ax, kind in zip(axes, ("deletion", "insertion"), strict=True):
        curve = np.asarray(getattr(faith, kind))
        ks = np.arange(len(curve))
        ax.plot(ks, curve, marker="o", color="#2166ac", label="attribution order")
        mean, std = getattr(faith, f"{kind}_random"), getattr(faith, f"{kind}_random_std")
        if mean is not None:
            ax.plot(ks, mean, linestyle="--", color="0.35", label=f"random (n={faith.n_random})")
            ax.fill_between(ks, mean - std, mean + std, color="0.85", zorder=0)
        ax.set_xlabel("features removed" if kind == "deletion" else "features put back")
        ax.set_title(f"{kind}: AOPC {getattr(faith, f'aopc_{kind}'):+.3f}")
    axes[0].set_ylabel(faith.quantity)
    axes[0].legend(loc="best", fontsize=8)
    lds = "n/a" if faith.lds is None else f"{faith.lds:.2f}"
    fig.suptitle(f"{faith.method}: faithfulness (LDS {lds})")
    return fig, axes


def faithfulness_html(faith: Any) -> str:
    """A section with the scores and both curves (inline SVG, no scripts)."""
    lo, hi = _curve_range(faith)
    charts = "".join(_curve_svg(faith, kind, lo, hi) for kind in ("deletion", "insertion"))
    return (
        '<div class="pla-faithfulness" style="margin-top:1em;font-size:smaller">'
        f"<b>Faithfulness</b> of these attributions ({html.escape(faith.quantity)}, "
        f"{faith.n_prompts} prompts scored in one call)"
        f"{_scores_table(faith)}<div>{charts}</div></div>"
    )


def _scores_table(faith: Any) -> str:
    def cell(value: Any) -> str:
        return "–" if value is None or value != value else f"{value:+.3f}"

    rows = [
        ("LDS (1: additive and right; 0: chance)", faith.lds, None),
        ("AOPC deletion, comprehensiveness (higher is better)", faith.aopc_deletion,
         faith.aopc_deletion_random),
        ("AOPC insertion, sufficiency (lower is better)", faith.aopc_insertion,
         faith.aopc_insertion_random),
    ]  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{cell(value)}</td>"
        f"<td style='text-align:right'>{cell(chance)}</td></tr>"
        for name, value, chance in rows
    )
    return (
        '<table class="pla-faith-scores" style="margin:0.3em 0">'
        "<tr><th></th><th>attribution order</th><th>random orders</th></tr>"
        f"{body}</table>"
    )


def _curve_range(faith: Any) -> tuple[float, float]:
    parts = [faith.deletion, faith.insertion]
    for kind in ("deletion", "insertion"):
        mean, std = getattr(faith, f"{kind}_random"), getattr(faith, f"{kind}_random_std")
        if mean is not None:
            parts += [np.asarray(mean) - std, np.asarray(mean) + std]
    values = np.concatenate([np.asarray(p, dtype=float) for p in parts])
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _curve_svg(faith: Any, kind: str, lo: float, hi: float) -> str:
    """One curve (blue), the random mean (dashed) and its band (grey), as SVG."""
    width, height, pad = 300, 160, 28
    curve = np.asarray(getattr(faith, kind), dtype=float)
    span = max(len(curve) - 1, 1)

    def xy(values: np.ndarray) -> list[tuple[float, float]]:
        xs = pad + np.arange(len(values)) / span * (width - 2 * pad)
        ys = height - pad - (values - lo) / (hi - lo) * (height - 2 * pad)
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    def line(points: list[tuple[float, float]]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)

    parts = []
    mean, std = getattr(faith, f"{kind}_random"), getattr(faith, f"{kind}_random_std")
    if mean is not None:
        band = xy(np.asarray(mean) + std) + xy(np.asarray(mean) - std)[::-1]
        parts.append(f'<polygon class="pla-random-band" points="{line(band)}" fill="#ddd"/>')
        parts.append(
            f'<polyline class="pla-random" points="{line(xy(np.asarray(mean)))}" fill="none" '
            'stroke="#666" stroke-dasharray="4 3"/>'
        )
    parts.append(
        f'<polyline class="pla-curve" points="{line(xy(curve))}" fill="none" '
        'stroke="#2166ac" stroke-width="2"/>'
    )
    label = "features removed" if kind == "deletion" else "features put back"
    return (
        f'<svg class="pla-{kind}" width="{width}" height="{height}" role="img" '
        f'style="margin-right:1em"><title>{kind} curve</title>'
        f'<text x="{pad}" y="14" font-size="12">{kind} (blue) vs random (dashed)</text>'
        f'<text x="2" y="{pad}" font-size="9">{hi:.2f}</text>'
        f'<text x="2" y="{height - pad}" font-size="9">{lo:.2f}</text>'
        f'<text x="{pad}" y="{height - 6}" font-size="10">{label}: 0..{len(curve) - 1}</text>'
        f"{''.join(parts)}</svg>"
    )
