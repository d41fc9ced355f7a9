"""The result of :class:`pyllmattr.ShapleyInteractions`: attributions plus interactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import render
from .results import AttributionResult


@dataclass(repr=False)
class InteractionResult(AttributionResult):
    """An :class:`AttributionResult` with Shapley interactions between features.

    ``seq_attr`` holds the first-order values of the index (for SII, the Shapley
    values; for k-SII they and the interactions sum to f(prompt) - f(all baselines)).
    ``interactions`` maps sorted tuples of feature indices, singletons ``(i,)``
    included, to the index's value for the whole target, for every coalition up to
    ``order``. ``interaction_matrix`` (order >= 2) is n x n: pairs off the diagonal,
    the first-order values on it. ``token_interaction_matrix`` (T x n x n) is the same
    per target token, when the values were computed exactly (``exact``); estimators
    see only the whole target, so ``token_attr`` is None then. ``budget_used`` counts
    the coalitions evaluated per trial, ``approximator`` names shapiq's estimator (or
    ``"exact"``).

    Example:
        >>> method = pla.ShapleyInteractions(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, target=" Paris")  # doctest: +SKIP
        >>> result.top_interactions(3)  # doctest: +SKIP
        [(('Palm Coast', 'FL'), 1.21), ...]
        >>> fig, ax = result.plot_interactions()  # doctest: +SKIP
    """

    interactions: dict[tuple[int, ...], float] = field(default_factory=dict)
    interaction_matrix: np.ndarray | None = None
    token_interaction_matrix: np.ndarray | None = None
    index: str = "k-SII"
    order: int = 2
    budget_used: int = 0
    approximator: str = "exact"
    exact: bool = True

    def top_interactions(self, k: int = 10, min_order: int = 2) -> list[tuple[tuple, float]]:
        """The k coalitions of at least ``min_order`` features with the largest |value|,
        largest first, as (feature labels, value)."""
        keys = [key for key in self.interactions if len(key) >= min_order]
        keys.sort(key=lambda key: (-abs(self.interactions[key]), key))
        return [
            (tuple(self.input_features[i] for i in key), float(self.interactions[key]))
            for key in keys[:k]
        ]

    # ------------------------------------------------------------ plots
    def plot_interactions(self, ax: Any = None) -> tuple[Any, Any]:
        """Heatmap of ``interaction_matrix``: pair values, the main effects on the diagonal."""
        return plot_interaction_matrix(self, ax)

    def plot_top_interactions(self, k: int = 10, ax: Any = None) -> tuple[Any, Any]:
        """The k strongest interactions (two or more features) as a ranked table."""
        return plot_interaction_table(self, k, ax)

    def __repr__(self) -> str:
        top = ", ".join(
            f"{' x '.join(map(repr, names))}: {value:+.3f}"
            for names, value in self.top_interactions(3)
        )
        return (
            f"InteractionResult({self.index} order {self.order}, "
            f"{len(self.input_features)} features, {self.approximator}, "
            f"target={self.target!r}, top pairs: {top or 'none'})"
        )


def plot_interaction_matrix(result: InteractionResult, ax: Any = None) -> tuple[Any, Any]:
    plt = render._pyplot()
    from matplotlib.colors import TwoSlopeNorm

    if result.interaction_matrix is None:
        raise ValueError("order 1 has no pairs to show: attribute with order=2 or more")
    values = np.asarray(result.interaction_matrix)
    n = len(values)
    limit = float(np.abs(values).max()) or 1.0
    if ax is None:
        size = max(4.5, 0.5 * n + 2.5)
        fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap="RdBu", norm=TwoSlopeNorm(0.0, -limit, limit))
    labels = [render.short_label(s) for s in result.input_features]
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right")
    ax.set_yticks(np.arange(n), labels)
    if n <= 20:
        for (row, col), value in np.ndenumerate(values):
            color = "white" if abs(value) > 0.6 * limit else "black"
            weight = "bold" if row == col else "normal"  # the main effects
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color=color, fontweight=weight)  # fmt: skip
    ax.set_title(f"{result.index} interactions (diagonal: main effects): "
                 f"{render._target_words(result)}")  # fmt: skip
    fig.colorbar(image, ax=ax, label=f"{result.index} ({result.quantity})")
    return fig, ax


def plot_interaction_table(
    result: InteractionResult, k: int = 10, ax: Any = None
) -> tuple[Any, Any]:
    plt = render._pyplot()
    top = result.top_interactions(k)
    if not top:
        raise ValueError("the result has no interactions of two or more features (order=1)")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(top) + 1.2), layout="constrained")
    else:
        fig = ax.figure
    ax.axis("off")
    rows = [
        [str(rank), " × ".join(render.short_label(name, 20) for name in names), f"{value:+.3f}"]
        for rank, (names, value) in enumerate(top, start=1)
    ]
    table = ax.table(
        cellText=rows, colLabels=["rank", "features", result.index], loc="upper center",
        cellLoc="left", colWidths=[0.1, 0.7, 0.2],
    )  # fmt: skip
    limit = max(abs(v) for _, v in top) or 1.0
    for row, (_, value) in enumerate(top, start=1):
        table[row, 2].set_facecolor(_rgba(value, limit))
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    ax.set_title(f"strongest {result.index} interactions: {render._target_words(result)}")
    return fig, ax


def _rgba(value: float, limit: float) -> tuple[float, float, float, float]:
    strength = 0.7 * min(abs(value) / limit, 1.0)
    rgb = (33, 102, 172) if value >= 0 else (178, 24, 43)
    return (rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, strength)


def top_pairs_html(result: Any, k: int = 5) -> str:
    """For interaction results: the strongest interactions in a small table (HTML view)."""
    if not isinstance(result, InteractionResult):
        return ""
    top = result.top_interactions(k)
    if not top:
        return ""
    import html

    limit = max(abs(v) for _, v in top) or 1.0
    rows = "".join(
        f'<tr><td>{rank}</td><td style="background:{render._color(value, limit)}">&nbsp;</td>'
        f"<td>{html.escape(' × '.join(names))}</td>"
        f'<td style="text-align:right">{value:+.3f}</td></tr>'
        for rank, (names, value) in enumerate(top, start=1)
    )
    how = "exact" if result.exact else f"estimated by {result.approximator}"
    return (
        '<table class="pla-top-pairs" style="font-size:smaller;margin-top:0.5em">'
        f"<caption>strongest {html.escape(result.index)} interactions ({html.escape(how)}, "
        f"{result.budget_used} coalitions)</caption>"
        f"<tr><th>rank</th><th></th><th>features</th><th>{html.escape(result.index)}</th></tr>"
        f"{rows}</table>"
    )


MATRIX_LIMIT = 30  # features beyond which the HTML view leaves the matrix to the plot


def interaction_matrix_html(result: Any) -> str:
    """For interaction results of order >= 2: ``interaction_matrix`` as a coloured table
    (pairs off the diagonal, main effects on it, in bold; a folded section)."""
    if not isinstance(result, InteractionResult) or result.interaction_matrix is None:
        return ""
    import html

    values = np.asarray(result.interaction_matrix, dtype=float)
    n = len(values)
    if n > MATRIX_LIMIT:
        return (
            '<p class="pla-interaction-matrix" style="font-size:smaller">'
            f"{n} features: the interaction matrix is left to result.plot_interactions()</p>"
        )
    limit = float(np.abs(values).max()) if values.size else 0.0
    labels = [render.short_label(name, 12) for name in result.input_features]
    head = "".join(
        f'<th title="{html.escape(name)}">{html.escape(label)}</th>'
        for name, label in zip(result.input_features, labels, strict=True)
    )
    rows = []
    for i, row in enumerate(values):
        cells = "".join(
            f'<td data-row="{i}" data-col="{j}" title="{html.escape(_pair_title(result, i, j))}"'
            f' style="background:{render._color(value, limit)};text-align:right'
            f'{";font-weight:bold" if i == j else ""}">{value:+.2f}</td>'
            for j, value in enumerate(row)
        )
        name = result.input_features[i]
        head_cell = f'<th title="{html.escape(name)}">{html.escape(labels[i])}</th>'
        rows.append(f"<tr>{head_cell}{cells}</tr>")
    return (
        '<details class="pla-interaction-matrix" style="font-size:smaller;margin-top:0.5em">'
        f"<summary>{html.escape(result.index)} interaction matrix (diagonal: main effects)"
        f"</summary><table><tr><th></th>{head}</tr>{''.join(rows)}</table></details>"
    )


def _pair_title(result: InteractionResult, i: int, j: int) -> str:
    names = result.input_features
    if i == j:
        return f"{names[i]}: main effect"
    return f"{names[i]} × {names[j]}"
