"""Attributions computed in stages (several engine calls, possibly on two models).

Hierarchical ablation, ContextCite and the proxy variants decide what to score next
from what they scored before, so they cannot build all their prompts up front as
:class:`~pyllmattr.methods.base.PerturbationMethod` does. A stage is one
:func:`pyllmattr.pipeline.scoring.score_all` call over the pipeline's jobs (every
input of a batch together): the unperturbed prompt and the stage's perturbations of
each job, with each continuation its objective scores (a contrast's too), so stages
get the pipeline's chunking, progress, cancellation and objectives. The pipeline
measures the noise floor and builds the results (:class:`StagedResult`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import chat as chat_prompts
from ..models.interface import ScoringModel
from ..objectives import Contrast, objective_for
from ..pipeline import Evaluation, Job, Settings, attribution_lock
from ..pipeline.jobs import check_context, naming_input
from ..pipeline.scoring import merge_stats, score_prompts, scores_are_exact
from ..results import AttributionResult


class Role(enum.Enum):
    """Which model scores a stage: the attributed (``target``) one or a cheaper ``proxy``.
    The values are what :class:`StagedResult` records (``levels[i]["model"]``,
    ``computed_by``).

    Example:
        >>> Role.proxy.value
        'proxy'
    """

    target = "target"
    proxy = "proxy"


@dataclass(repr=False)
class StagedResult(AttributionResult):
    """An :class:`AttributionResult` that also says how its values were computed.

    ``levels`` lists each stage: its ``level`` (a unit level or ``"features"``), the
    ``model`` that scored it (``"target"`` or ``"proxy"``), the ``units`` it scored
    and their ``seq_attr``; a hierarchical level also has the units' ``labels`` (their
    texts) and, above the finest, the units ``kept`` for refinement. ``computed_by[i]``
    names the model behind ``seq_attr[i]``, ``refined[i]`` is False where a feature's
    value comes from a coarser unit (or from the proxy) instead of being scored itself.
    ``fit`` holds a surrogate's held-out quality.

    Example:
        >>> result = pla.HierarchicalAblation(model).attribute(inp)  # doctest: +SKIP
        >>> [stage["level"] for stage in result.levels]  # doctest: +SKIP
        ['paragraph', 'sentence']
    """

    levels: list[dict[str, Any]] = field(default_factory=list)
    computed_by: list[str] = field(default_factory=list)
    refined: list[bool] = field(default_factory=list)
    fit: dict[str, Any] | None = None


@dataclass
class Scored:
    """One job's share of a stage: outputs [whole target, tokens] of its unperturbed
    prompt (row 0) and of every mask (rows 1..), and the raw log-probs of row 0
    (``reference_scored`` False when they were reused from an earlier stage).

    Example:
        >>> stages = Stages(model, settings, Role.target)  # doctest: +SKIP
        >>> scored = stages.score(jobs, masks, rngs, "masks")  # doctest: +SKIP
        >>> scored[0].outputs[0, 0]  # doctest: +SKIP
    """

    outputs: np.ndarray
    reference: list[np.ndarray]
    reference_scored: bool = True  # False: row 0 reused from an earlier stage


class Stages:
    """The stages of one staged evaluation on one model (its ``role``), and their
    engine stats.

    Example:
        >>> stages = Stages(model, settings, Role.target)  # doctest: +SKIP
        >>> drops, _, _ = stages.ablate(jobs, groups, rngs, "sentences")  # doctest: +SKIP
        >>> stages.totals()["n_calls"]  # doctest: +SKIP
        1
    """

    def __init__(self, model: ScoringModel, settings: Settings, role: Role) -> None:
        self.model, self.settings, self.role = model, settings, role
        self.calls: list[dict[str, Any]] = []
        # On a model whose scores do not depend on the batch, a job's unperturbed
        # prompt scores the same in every stage: later stages reuse the first's.
        self._references: dict[int, list[np.ndarray]] = {}
        self._reuse = scores_are_exact(model)

    def score(
        self,
        jobs: Sequence[Job],
        masks: Sequence[np.ndarray],
        rngs: Sequence[np.random.Generator],
        what: str,
    ) -> list[Scored]:
        """Every job's unperturbed prompt and its masks' prompts, in one engine call."""
        known = [self._references.get(job.index) for job in jobs]
        prompts = []
        for job, job_masks, rng, reused in zip(jobs, masks, rngs, known, strict=True):
            mine = [] if reused is not None else [job.encoding.reference_ids]
            prompts.append(mine + job.encoding.sequences(job_masks, rng))
        with attribution_lock(self.model):  # the proxy's: the pipeline holds the target's
            per_job, stats = score_prompts(self.model, jobs, prompts, self.settings, what)
        n_prompts = sum(map(len, prompts))
        self.calls.append({"n_evaluations": n_prompts, "n_inputs": len(jobs), **stats})
        out = []
        for job, scored, reused in zip(jobs, per_job, known, strict=True):
            if reused is None:  # row 0 is the unperturbed prompt
                reference = [rows[0] for rows in scored]
            else:  # put the earlier stage's row 0 back in front
                reference = reused
                pairs = zip(reference, scored, strict=True)
                scored = [np.vstack([row, rows]) for row, rows in pairs]
            if self._reuse:
                self._references[job.index] = reference
            out.append(Scored(job.objective.outputs(scored), reference, reused is None))
        return out

    def ablate(
        self,
        jobs: Sequence[Job],
        groups: Sequence[list[np.ndarray]],
        rngs: Sequence[np.random.Generator],
        what: str,
        alone: bool = False,
    ) -> tuple[list[np.ndarray], list[Scored], list[np.ndarray | None]]:
        """Leave-one-out of every group of every job in one call: per job the drops
        f(prompt) - f(prompt without group g), (n_outputs, n_groups) with row 0 the whole
        target and then each token, and its :class:`Scored`. With ``alone``, in the same
        call, each group on its own (every other feature absent): per job f(only group g)
        for the whole target, one per group (None per job without ``alone``)."""
        masks = []
        for job, g in zip(jobs, groups, strict=True):
            removed = group_masks(job.encoding.n_features, g)
            masks.append(np.concatenate([removed, ~removed]) if alone else removed)
        scored = self.score(jobs, masks, rngs, what)
        drops, alone_values = [], []
        for s, g in zip(scored, groups, strict=True):
            drops.append((s.outputs[0] - s.outputs[1 : 1 + len(g)]).T)
            alone_values.append(s.outputs[1 + len(g) :, 0].copy() if alone else None)
        return drops, scored, alone_values

    def totals(self) -> dict[str, Any]:
        """The engine counts summed over this model's calls (of the whole batch)."""
        out = merge_stats(self.calls)
        out["n_calls"] = len(self.calls)
        out["n_score_calls"] = sum(c["n_score_calls"] for c in self.calls)
        out["n_inputs"] = max((c["n_inputs"] for c in self.calls), default=0)
        return out


def group_masks(n_features: int, groups: Sequence[np.ndarray]) -> np.ndarray:
    """One mask per group: every feature present but the group's."""
    masks = np.ones((len(groups), n_features), dtype=bool)
    for row, features in enumerate(groups):
        masks[row, features] = False
    return masks


def check_proxy(proxy: Any, model: Any) -> None:
    if not isinstance(proxy, ScoringModel):
        raise ValueError("proxy must be a model from pla.load_gguf or pla.load_torch")
    if proxy is model:
        raise ValueError("proxy is the target model itself; give a cheaper model, or no proxy")


def proxy_jobs(proxy: Any, model: Any, jobs: Sequence[Job], settings: Settings) -> list[Job]:
    """The same inputs, targets and objective on the proxy model, re-tokenized by it."""
    check_proxy(proxy, model)
    frame = None
    if settings.chat is not None:
        frame = chat_prompts.chat_frame(
            proxy, settings.chat.get("system"), settings.chat.get("template")
        )
    out = []
    for job in jobs:
        with naming_input(job.index, settings.batch):
            out.append(_proxy_job(proxy, model, job, frame, settings))
    return out


def _proxy_job(proxy: Any, model: Any, job: Job, frame: Any, settings: Settings) -> Job:
    encoding = chat_prompts.encode_in_frame(job.source, proxy, frame)
    if encoding.n_features != job.encoding.n_features:
        raise ValueError(
            f"the input has {encoding.n_features} features on the proxy but "
            f"{job.encoding.n_features} on the target model; use an input of text units "
            "(TextTemplateInput, ContextInput), not of one model's tokens"
        )
    target_ids = proxy.tokenize(_text(model, job.target_ids), add_special=False)
    if not target_ids:
        raise ValueError("the target is empty on the proxy model's tokenizer")
    contrast = None
    if isinstance(job.objective, Contrast):  # its text, re-tokenized by the proxy
        contrast = _text(model, job.objective.contrast_ids)
    objective = objective_for(settings.attr_target, contrast, proxy)
    out = Job(job.index, encoding, target_ids, objective, frame, job.source)
    check_context(proxy, out)
    return out


def _text(model: Any, ids: Sequence[int]) -> str:
    return model.detokenize(list(ids), render_special=False)


def evaluation(
    values: np.ndarray,
    reference: list[np.ndarray],
    counts: tuple[int, int],
    stages: tuple[Stages, Stages | None],
    record: dict[str, Any],
) -> Evaluation:
    """A job's Evaluation: ``values`` is (1 [+ T], n_features), row 0 the whole target.

    ``counts`` are this job's prompts on the target model and on the proxy; ``stats``
    the engine counts of the models' calls (of the whole batch), the proxy's under
    ``"proxy"``; ``record`` the StagedResult fields (levels, computed_by, refined, fit).
    """
    target, proxy = stages
    stats: dict[str, Any] = {"n_evaluations": counts[0], **target.totals()}
    if proxy is not None and proxy.calls:
        stats["proxy"] = {"n_evaluations": counts[1], **proxy.totals()}
    return Evaluation(
        values=values[None], reference=reference, stats=stats,
        result_type=StagedResult, extras=record,
    )  # fmt: skip


def rescored_evaluation(
    job: Job,
    coarse: np.ndarray,
    keep: np.ndarray,
    drops: np.ndarray,
    scored: Scored,
    counts: tuple[int, int],
    stages: tuple[Stages, Stages | None],
    extra: dict[str, Any] | None = None,
) -> Evaluation:
    """A job whose features carry the proxy's values ``coarse`` (whole target), except
    the ``keep`` features, rescored by leave-one-out on the target model (``drops``:
    (1 + T, len(keep)), ``scored`` that stage). ``extra`` adds StagedResult fields."""
    n = job.encoding.n_features
    values = np.zeros((1 + len(job.target_ids), n))
    values[0] = coarse
    values[:, keep] = drops
    computed_by, refined = [Role.proxy.value] * n, [False] * n
    for f in keep:
        computed_by[f], refined[f] = Role.target.value, True
    record = {
        "levels": [
            level_record("features", Role.proxy, range(n), coarse),
            level_record("features", Role.target, keep, drops[0]),
        ],
        "computed_by": computed_by,
        "refined": refined,
        **(extra or {}),
    }
    return evaluation(values, scored.reference, counts, stages, record)


def level_record(
    level: str, role: Role, units: Any, values: np.ndarray, labels: Any = None
) -> dict[str, Any]:
    """One entry of :attr:`StagedResult.levels`: what ``role``'s model scored at ``level``
    (``labels``: the units' texts, for views of a coarse level, whose units are no
    features of the result)."""
    record: dict[str, Any] = {
        "level": level,
        "model": role.value,
        "units": [int(u) for u in units],
        "seq_attr": [float(v) for v in values],
    }
    if labels is not None:
        record["labels"] = [str(label) for label in labels]
    return record
