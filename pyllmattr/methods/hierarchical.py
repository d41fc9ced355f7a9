"""Hierarchical ablation: leave-one-out over coarse units, refined inside the strongest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..inputs.context import LEVELS, ContextInput
from . import staged
from .base import _one_at_a_time_per_model, check_positive_int


class HierarchicalAblation:
    """Leave-one-out over the coarsest units, then inside the ``keep`` strongest, and so on.

    With ``levels=("paragraph", "sentence")`` every paragraph is removed once; then
    every sentence of the ``keep`` paragraphs with the largest attributions is removed
    once. ``seq_attr`` covers the finest level: refined units carry their own value,
    the others their coarse unit's value (``result.refined`` is False for them).
    ``result.levels`` holds each level's attributions. Each level is one engine call
    (the unperturbed prompt and all that level's perturbations, sharing prefixes),
    so P paragraphs of S sentences cost P + keep·S evaluations instead of P·S.

    ``proxy=`` (another GGUF model, e.g. a smaller one of the same family) computes
    all levels but the finest; the target model scores only the finest level's
    perturbations of the units the proxy kept (``result.computed_by``).
    Needs a :class:`pla.ContextInput`.

    Example:
        >>> inp = pla.ContextInput(documents, "When was Harrowgate founded?")  # doctest: +SKIP
        >>> method = pla.HierarchicalAblation(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, target=" 1742", keep=2)  # doctest: +SKIP
        >>> result.top_features(3)  # doctest: +SKIP
    """

    name = "hierarchical"
    defaults: dict[str, Any] = {"levels": ("paragraph", "sentence"), "keep": 3, "proxy": None}

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "score") or not hasattr(model, "tokenize"):
            raise ValueError(
                "HierarchicalAblation needs a model from pla.load_gguf or pla.load_torch"
            )
        self.model = model

    @_one_at_a_time_per_model
    def attribute(
        self,
        inp: ContextInput,
        target: str | Sequence[int] | None = None,
        levels: Sequence[str] = ("paragraph", "sentence"),
        keep: int = 3,
        proxy: Any = None,
        attr_target: str = "log_prob",
        gen_args: Mapping[str, Any] | None = None,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        noise_floor: bool = True,
        chat: bool | Mapping[str, str] = False,
    ) -> staged.StagedResult:
        """Attribute the target to the finest of ``levels``, refining the ``keep`` strongest
        units of each coarser level. Other arguments as :meth:`FeatureAblation.attribute`."""
        levels = check_levels(inp, levels, proxy)
        check_positive_int("keep", keep)
        finest = inp.at(levels[-1])
        job, chat_settings = staged.start(
            self, finest, target, attr_target, gen_args, chat, progress, cancel
        )
        coarse = staged.proxy_job(proxy, finest, job, chat_settings) if proxy else job
        rng = np.random.default_rng(seed)
        values, records, refined = refine(finest, levels, keep, job, coarse, rng)
        computed_by = ["target" if r else ("proxy" if proxy else "target") for r in refined]
        options = {"levels": ",".join(levels), "keep": keep}
        result = staged.finish(
            self,
            job,
            values,
            options,
            seed,
            chat_settings,
            records,
            computed_by,
            refined,
            proxy=coarse if proxy else None,
        )
        if noise_floor:
            staged.measure_noise_floor(result, job)
        return result


def check_levels(inp: Any, levels: Any, proxy: Any) -> tuple[str, ...]:
    if not isinstance(inp, ContextInput):
        raise ValueError(
            "HierarchicalAblation needs a pla.ContextInput (its units nest: "
            f"{' > '.join(LEVELS)}), got {type(inp).__name__}"
        )
    if isinstance(levels, str) or not levels:
        raise ValueError(
            'levels must be a list of unit levels, coarse to fine, e.g. ("paragraph", "sentence")'
        )
    levels = tuple(levels)
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise ValueError(f"unknown level(s) {unknown}; use {list(LEVELS)}")
    depth = [LEVELS.index(lv) for lv in levels]
    if depth != sorted(set(depth)):
        raise ValueError(f"levels must go from coarse to fine without repeats, got {list(levels)}")
    if proxy is not None and len(levels) < 2:
        raise ValueError("a proxy computes the coarse levels: give at least two levels")
    return levels


def refine(
    inp: ContextInput,
    levels: tuple[str, ...],
    keep: int,
    job: staged.Job,
    coarse: staged.Job,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
    """Each level's leave-one-out over the candidates the level above kept.

    Returns the finest level's values (1 + T, n_finest), the per-level records and
    which finest units were scored at the finest level.
    """
    finest = levels[-1]
    n_fine = inp.n_features
    n_rows = 1 + len(job.target_ids)
    values = np.zeros((n_rows, n_fine))
    refined = np.zeros(n_fine, dtype=bool)
    candidates = np.arange(len(inp.units(levels[0])))
    records: list[dict[str, Any]] = []
    for depth, level in enumerate(levels):
        last = depth == len(levels) - 1
        scorer = job if last else coarse
        parent_of_fine = inp.parent_index(finest, level)
        groups = [np.flatnonzero(parent_of_fine == u) for u in candidates]
        found = staged.leave_one_out(scorer, groups, rng, f"{level} level")
        model_name = "target" if scorer is job else "proxy"
        records.append(staged.level_record(level, model_name, candidates, found[0]))
        for column, fine in enumerate(groups):
            # A coarse unit's value stands for its sub-units until they are refined;
            # per-token rows exist only on the target's tokens.
            values[0, fine] = found[0, column]
            if scorer is job:
                values[1:, fine] = found[1:, column, None]
        if last:
            refined[np.concatenate(groups)] = True
            break
        kept = candidates[np.argsort(-found[0], kind="stable")[:keep]]
        candidates = children(inp, level, levels[depth + 1], kept)
    return values, records, refined


def children(inp: ContextInput, level: str, sub: str, kept: np.ndarray) -> np.ndarray:
    """Indices of the ``sub`` units inside the kept ``level`` units, in reading order."""
    parents = inp.parent_index(sub, level)
    return np.flatnonzero(np.isin(parents, kept))
