"""Plots (matplotlib, imported lazily) and HTML views of attribution results."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

LABEL_CHARS = 24


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(text.split()) or repr(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    ax.bar(
        np.arange(len(values)),
        values,
        color=colors,
        yerr=result.seq_attr_std if result.seq_attr_std is not None else None,
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right")
    ax.set_ylabel(f"attribution ({result.attr_target.replace('_', ' ')})")
    ax.set_title(f"{result.method}: {short_label(result.target, 60)!r}")
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
    if values.size <= 400:
        for (row, col), value in np.ndenumerate(values):
            color = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, label=f"attribution ({result.attr_target.replace('_', ' ')})")
    return fig, ax


def _color(value: float, limit: float) -> str:
    """Background for an attribution: blue raises the target, red lowers it."""
    strength = min(abs(value) / limit, 1.0) if limit > 0 else 0.0
    rgb = (33, 102, 172) if value >= 0 else (178, 24, 43)
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.85 * strength:.3f})"


def to_html(result: Any) -> str:
    values = np.asarray(result.seq_attr)
    limit = float(np.abs(values).max()) if values.size else 1.0
    spans = []
    for text, feature in result.prompt_segments:
        escaped = html.escape(text)
        if feature is None:
            spans.append(f'<span class="pla-text">{escaped}</span>')
            continue
        value = float(values[feature])
        title = html.escape(f"{result.input_features[feature]}: {value:+.4f}")
        spans.append(
            f'<span class="pla-feature" data-feature="{feature}" title="{title}" '
            f'style="background:{_color(value, limit)}">{escaped}</span>'
        )
    target = html.escape(result.target)
    return (
        '<div class="pla-result" style="font-family:sans-serif;line-height:1.8">'
        f'<div style="white-space:pre-wrap">{"".join(spans)}'
        f'<span class="pla-target" style="border-bottom:2px solid #555">{target}</span></div>'
        f'<div style="font-size:smaller;color:#555">{html.escape(result.method)} · '
        f"log p(target) = {result.target_logprob:.3f} · "
        '<span style="color:#2166ac">blue</span> raises the target, '
        '<span style="color:#b2182b">red</span> lowers it; hover for values</div></div>'
    )


def html_page(result: Any) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>pyllmattr: {html.escape(result.method)}</title></head>"
        f'<body style="max-width:60em;margin:2em auto">{to_html(result)}</body></html>'
    )
