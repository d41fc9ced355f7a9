"""Dataset summaries: how each feature shared by many attributions behaves on average.

A typical use is a few-shot prompt evaluated over many queries: the same in-context
examples are the features of every result, each filled with a different query, and
the summary says which examples help the model (positive mean attribution), how sure
that is (standard error) and how consistently (share of queries where it helps).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import render
from .results import AttributionResult


@dataclass
class DatasetSummary:
    """Per-feature statistics of ``seq_attr`` over many results (see :func:`summarize`).

    ``mean[i]`` is feature i's mean attribution, ``stderr[i]`` its standard error
    (sample standard deviation / sqrt(n); NaN for a single result) and
    ``share_positive[i]`` the fraction of inputs where its attribution is > 0.

    Example:
        >>> summary = pla.summarize(results)  # doctest: +SKIP
        >>> print(summary)  # a table, largest |mean| first  # doctest: +SKIP
        >>> fig, ax = summary.plot()  # doctest: +SKIP
    """

    features: list[str]
    mean: np.ndarray
    stderr: np.ndarray
    share_positive: np.ndarray
    n_inputs: int
    method: str
    attr_target: str = "log_prob"

    def ranked(self) -> list[int]:
        """Feature indices, largest absolute mean first (ties keep the features' order)."""
        return [int(i) for i in np.argsort(-np.abs(self.mean), kind="stable")]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (NaN standard errors become None), JSON-ready."""
        return {
            "n_inputs": self.n_inputs,
            "method": self.method,
            "attr_target": self.attr_target,
            "features": [
                {
                    "feature": name,
                    "mean": float(self.mean[i]),
                    "stderr": _finite_or_none(self.stderr[i]),
                    "share_positive": float(self.share_positive[i]),
                }
                for i, name in enumerate(self.features)
            ],
        }

    def to_markdown(self) -> str:
        """A markdown table, one row per feature, largest absolute mean first."""
        rows = [
            f"{self.method} over {self.n_inputs} input{'s' if self.n_inputs != 1 else ''} "
            f"({self.attr_target.replace('_', '-')})",
            "",
            "| rank | feature | mean | std. error | share > 0 |",
            "| ---: | --- | ---: | ---: | ---: |",
        ]
        for rank, i in enumerate(self.ranked(), start=1):
            label = render.short_label(self.features[i], 48).replace("|", "\\|")
            rows.append(
                f"| {rank} | {label} | {self.mean[i]:+.4f} | {_stderr_text(self.stderr[i])} "
                f"| {self.share_positive[i]:.0%} |"
            )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.to_markdown()

    def plot(self, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of the mean attributions with standard-error bars, in feature order.

        Needs matplotlib (``pip install 'pyllmattr[plot]'``).
        """
        plt = render._pyplot()
        if ax is None:
            width = max(6, 0.5 * len(self.features))
            fig, ax = plt.subplots(figsize=(width, 4), layout="constrained")
        else:
            fig = ax.figure
        x = np.arange(len(self.features))
        colors = np.where(self.mean >= 0, "#2166ac", "#b2182b")
        errors = np.nan_to_num(self.stderr, nan=0.0)
        ax.bar(x, self.mean, color=colors, yerr=errors, capsize=3, ecolor="black")
        ax.axhline(0, color="black", linewidth=0.8)
        labels = [render.short_label(name) for name in self.features]
        ax.set_xticks(x, labels, rotation=60, ha="right")
        ax.set_ylabel(f"mean attribution ({self.attr_target.replace('_', ' ')}) ± s.e.")
        ax.set_title(f"{self.method} over {self.n_inputs} inputs")
        return fig, ax


def summarize(
    results: Iterable[AttributionResult | Mapping[str, Any]],
) -> DatasetSummary:
    """Mean attribution, standard error and share positive of every feature over results.

    ``results`` are :class:`AttributionResult` objects (or their ``to_dict()`` form, as
    ``pyllmattr attribute-dataset`` writes them) over the same features, matched by
    name: every result must have the same feature names, in any order when the names
    are unique, in the same order otherwise. They must also come from one method and
    one ``attr_target``, and all have a contrast or none. Raises ValueError naming the
    first result that differs.

    Example:
        >>> results = pla.FeatureAblation(model).attribute_batch(inputs, targets)  # doctest: +SKIP
        >>> summary = pla.summarize(results)  # doctest: +SKIP
        >>> summary.mean, summary.stderr, summary.share_positive  # doctest: +SKIP
    """
    items = [_as_result(r, i) for i, r in enumerate(results)]
    if not items:
        raise ValueError("summarize: no results; give at least one AttributionResult")
    first = items[0]
    rows = [np.asarray(first.seq_attr, dtype=float)]
    for index, result in enumerate(items[1:], start=1):
        _check_same_kind(first, result, index)
        rows.append(_aligned(first.input_features, result, index))
    values = np.stack(rows)
    n = len(values)
    stderr = (
        values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(values.shape[1], np.nan)
    )
    return DatasetSummary(
        features=list(first.input_features),
        mean=values.mean(axis=0),
        stderr=stderr,
        share_positive=(values > 0).mean(axis=0),
        n_inputs=n,
        method=first.method,
        attr_target=first.attr_target,
    )


def _as_result(item: Any, index: int) -> AttributionResult:
    if isinstance(item, AttributionResult):
        return item
    if isinstance(item, Mapping) and "seq_attr" in item and "input_features" in item:
        return AttributionResult.from_dict(dict(item))
    raise ValueError(
        f"summarize: result {index} is a {type(item).__name__}, not an AttributionResult "
        "(or its to_dict())"
    )


def _check_same_kind(first: AttributionResult, other: AttributionResult, index: int) -> None:
    for name in ("method", "attr_target"):
        if getattr(first, name) != getattr(other, name):
            raise ValueError(
                f"summarize: result {index} has {name} {getattr(other, name)!r}, result 0 has "
                f"{getattr(first, name)!r}; summarize results of one method and attr_target"
            )
    if (first.contrast is None) != (other.contrast is None):
        which = "has a contrast" if other.contrast is not None else "has no contrast"
        raise ValueError(
            f"summarize: result {index} {which} and result 0 "
            f"{'does not' if first.contrast is None else 'does'}; a contrast attributes "
            "log p(target) - log p(contrast), so summarize results with contrasts apart "
            "from results without"
        )


def _aligned(reference: list[str], result: AttributionResult, index: int) -> np.ndarray:
    """result.seq_attr in the order of ``reference``'s feature names."""
    names = list(result.input_features)
    values = np.asarray(result.seq_attr, dtype=float)
    if names == list(reference):
        return values
    missing = [n for n in reference if n not in names]
    extra = [n for n in names if n not in reference]
    if missing or extra or len(names) != len(reference):
        raise ValueError(
            f"summarize: result {index} has other features than result 0: "
            f"missing {_names(missing)}, extra {_names(extra)} ({len(names)} features vs "
            f"{len(reference)}); summarize results over the same features (matched by name)"
        )
    if len(set(names)) != len(names):
        raise ValueError(
            f"summarize: result {index} has its features in another order than result 0 and "
            "repeated names, so they cannot be matched by name; give the features unique names "
            "or keep them in the same order"
        )
    position = {name: i for i, name in enumerate(names)}
    return values[[position[name] for name in reference]]


def _names(names: list[str]) -> str:
    shown = [render.short_label(n, 40) for n in names[:5]]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"{shown}{more}" if names else "none"


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _stderr_text(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "—"
