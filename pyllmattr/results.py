"""Attribution results: values, plots, serialization and the notebook view."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import render


@dataclass
class AttributionResult:
    """What an attribution found, per input feature and per target token.

    ``seq_attr[i]`` is feature i's attribution for the whole target (its total
    log-probability, or its probability with ``attr_target="prob"``);
    ``token_attr[t, i]`` the same for target token t. ``target_logprob`` is the
    target's log-probability under the unperturbed prompt and ``baseline_logprob``
    under the all-baseline prompt (when the method scored it), both from the same
    scoring call as the attributions. With ``num_trials > 1`` the ``*_std`` fields
    hold the spread across trials.

    ``noise_floor`` (and ``token_noise_floor``) is how far the unperturbed prompt's
    score moved between its place in the batch and being scored alone: attributions
    within it are within llama.cpp's batch noise (0 where scores are exact, the default
    on the CPU); plots and the HTML view mark them.

    Integrated gradients also report ``completeness_gap[t]``: the sum of target token
    t's attributions over all prompt tokens minus f(prompt) - f(baseline), the
    integration error (``seq_completeness_gap`` for the whole target); raise
    ``n_steps`` when it is large.

    With a contrast (``attribute(..., contrast=" B")``) the attributed quantity is
    log p(target) - log p(contrast): ``contrast_tokens``, ``contrast_ids`` and
    ``contrast_logprob`` (``contrast_token_logprobs`` per token) describe the contrast
    under the unperturbed prompt. ``token_attr_of`` says what the rows of
    ``token_attr`` attribute: ``"difference"`` (target token t minus contrast token t,
    when both have the same length) or ``"target"`` (the target's own tokens: always
    without a contrast, and with a contrast of another length).

    Sampling methods (Shapley value sampling, KernelSHAP, LIME, ContextCite) report
    how sure their values are, from a seeded bootstrap over the coalitions they
    sampled: ``seq_attr_stderr`` (``token_attr_stderr``) the standard error of each
    value and ``top_k_prob[k - 1]`` the probability that the k features ranked first
    by |seq_attr| come first in that order. Integrated gradients and GradientShap
    record in ``convergence`` how many points they used and how much the values still
    moved (``n_steps="auto"``, see :mod:`pyllmattr.methods.convergence`).

    ``faithfulness`` holds the :class:`pyllmattr.Faithfulness` of the result once
    ``pla.evaluate(result, model)`` measured it (the HTML view then shows it).

    Example:
        >>> result = pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
        >>> fig, ax = result.plot_token_attr()  # doctest: +SKIP
        >>> AttributionResult.from_json(result.to_json()).seq_attr  # doctest: +SKIP
    """

    seq_attr: np.ndarray
    token_attr: np.ndarray | None
    input_features: list[str]
    output_tokens: list[str]
    target_logprob: float
    target_token_logprobs: np.ndarray
    method: str
    attr_target: str = "log_prob"
    settings: dict[str, Any] = field(default_factory=dict)
    seq_attr_std: np.ndarray | None = None
    token_attr_std: np.ndarray | None = None
    prompt_segments: list[tuple[str, int | None]] = field(default_factory=list)
    feature_tokens: list[list[str]] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)
    baseline_logprob: float | None = None
    noise_floor: float | None = None
    token_noise_floor: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    completeness_gap: np.ndarray | None = None
    seq_completeness_gap: float | None = None
    contrast_tokens: list[str] | None = None
    contrast_ids: list[int] | None = None
    contrast_logprob: float | None = None
    contrast_token_logprobs: np.ndarray | None = None
    token_attr_of: str = "target"
    seq_attr_stderr: np.ndarray | None = None
    token_attr_stderr: np.ndarray | None = None
    top_k_prob: list[float] | None = None
    convergence: dict[str, Any] | None = None
    faithfulness: Any = None  # a pyllmattr.Faithfulness, set by pla.evaluate

    @property
    def prompt(self) -> str:
        return "".join(text for text, _ in self.prompt_segments)

    @property
    def target(self) -> str:
        return "".join(self.output_tokens)

    @property
    def contrast(self) -> str | None:
        """The contrast's text, or None without a contrast."""
        return None if self.contrast_tokens is None else "".join(self.contrast_tokens)

    @property
    def quantity(self) -> str:
        """What ``seq_attr`` attributes, in words (tables and plots say it)."""
        if self.contrast_tokens is not None:
            return f"log p(target) - log p(contrast {self.contrast!r})"
        return "p(target)" if self.attr_target == "prob" else "log p(target)"

    def below_noise(self) -> np.ndarray:
        """Boolean mask of features whose ``seq_attr`` is within the noise floor."""
        if not self.noise_floor:
            return np.zeros(len(self.input_features), dtype=bool)
        return np.abs(np.asarray(self.seq_attr)) <= self.noise_floor

    def top_features(self, k: int = 10) -> list[tuple[str, float]]:
        """The k features with the largest absolute attribution, largest first."""
        order = np.argsort(-np.abs(self.seq_attr), kind="stable")[:k]
        return [(self.input_features[i], float(self.seq_attr[i])) for i in order]

    def span(self, start: int, end: int) -> np.ndarray:
        """The attribution of the answer's characters ``[start, end)`` to each feature.

        Offsets index :attr:`target` (the target tokens' text joined), as ContextCite's
        ``get_attributions(start_idx, end_idx)``; the rows of ``token_attr`` of every
        target token that overlaps the span are summed (for ``attr_target="log_prob"``
        that is the span's log-probability attribution).

        Example:
            >>> where = result.target.index("1742")  # doctest: +SKIP
            >>> result.span(where, where + 4)  # doctest: +SKIP
            array([ 0.02, 3.91, -0.11])
        """
        if self.token_attr is None:
            raise ValueError(
                f"{self.method} computed no per-token attributions, so a span of the answer "
                "cannot be attributed; use seq_attr for the whole target"
            )
        n_chars = len(self.target)
        ok = all(isinstance(v, (int, np.integer)) for v in (start, end))
        if not ok or not 0 <= start < end <= n_chars:
            raise ValueError(
                f"span({start!r}, {end!r}): give character offsets with "
                f"0 <= start < end <= {n_chars} (the length of result.target)"
            )
        ends = np.cumsum([len(token) for token in self.output_tokens])
        starts = ends - [len(token) for token in self.output_tokens]
        overlap = (starts < end) & (ends > start)
        return np.asarray(self.token_attr)[overlap].sum(axis=0)

    # ------------------------------------------------------------ plots
    def plot_seq_attr(self, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of ``seq_attr`` (blue raises the target, red lowers it)."""
        return render.plot_seq_attr(self, ax)

    def plot_token_attr(self, ax: Any = None) -> tuple[Any, Any]:
        """Heatmap of ``token_attr``: target tokens x features, diverging colors centred at 0."""
        return render.plot_token_attr(self, ax)

    # ------------------------------------------------------------ notebook
    def _repr_html_(self) -> str:
        return render.to_html(self, self.faithfulness)

    def to_html(self, path: Any = None, faithfulness: Any = None) -> str:
        """A standalone HTML page of the result; written to ``path`` when given.

        ``faithfulness`` (a :class:`pyllmattr.Faithfulness`; default: the one
        ``pla.evaluate`` attached to this result, if any) adds its curves and scores.
        """
        page = render.html_page(self, faithfulness)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
        return page

    # ------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "to_dict"):  # a nested result (faithfulness)
                value = value.to_dict()
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        out["prompt_segments"] = [[text, feat] for text, feat in self.prompt_segments]
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributionResult:
        arrays = {
            "seq_attr",
            "token_attr",
            "target_token_logprobs",
            "seq_attr_std",
            "token_attr_std",
            "token_noise_floor",
            "completeness_gap",
            "contrast_token_logprobs",
            "seq_attr_stderr",
            "token_attr_stderr",
        }
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in arrays and value is not None:
                value = np.asarray(value, dtype=float)
            kwargs[f.name] = value
        if isinstance(kwargs.get("faithfulness"), dict):
            from .evaluation import Faithfulness

            kwargs["faithfulness"] = Faithfulness.from_dict(kwargs["faithfulness"])
        kwargs["prompt_segments"] = [(t, feat) for t, feat in data.get("prompt_segments", [])]
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> AttributionResult:
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        top = ", ".join(f"{name!r}: {value:+.3f}" for name, value in self.top_features(3))
        return (
            f"AttributionResult({self.method}, {len(self.input_features)} features, "
            f"target={self.target!r}, log p={self.target_logprob:.3f}, top: {top})"
        )
