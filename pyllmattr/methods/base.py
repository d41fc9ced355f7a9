"""Perturbation methods' evaluate step: perturb every input, score all pairs together, solve."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pipeline import AttributionMethod, Evaluation, Job, Settings
from ..pipeline.jobs import naming_input
from ..pipeline.scoring import score_all

__all__ = ["PerturbationMethod", "empty_context"]


class PerturbationMethod(AttributionMethod):
    """Base of the perturbation methods: subclasses choose masks and solve for attributions.

    A subclass defines ``name``, ``defaults`` (its options), ``masks(n_features, rng,
    **options)`` returning a boolean (n_evaluations, n_features) array (True: the
    feature keeps its value), and ``solve(masks, outputs, **options)`` turning the
    model outputs (n_evaluations, n_outputs) into attributions (n_outputs, n_features).
    All perturbed prompts of all inputs and trials go to the engine together
    (:func:`pyllmattr.pipeline.scoring.score_all`).

    Example:
        >>> class LeaveOneOut(PerturbationMethod):  # doctest: +SKIP
        ...     def masks(self, n, rng, **_): return ~np.eye(n, dtype=bool)
        ...     def solve(self, masks, outputs, **_): return -outputs.T
    """

    def masks(self, n_features: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def solve(self, masks: np.ndarray, outputs: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def check_design(self, n_features: int, **options: Any) -> None:
        """Warn about option choices that make the result meaningless (before scoring)."""

    # ------------------------------------------------------------ pipeline step
    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        plans = [self._plan(job, settings) for job in jobs]
        sequences, targets = [], []
        for job, (_, prompts) in zip(jobs, plans, strict=True):
            for prompt in prompts:  # a prompt's continuations side by side: one trie branch
                for continuation in job.scored_targets:
                    sequences.append(prompt)
                    targets.append(continuation)
        n_prompts = sum(len(prompts) for _, prompts in plans)
        desc = f"{type(self).__name__}: {n_prompts} prompts"
        if settings.batch:
            desc += f" of {len(jobs)} inputs"
        scores, stats = score_all(
            self.model, sequences, targets, settings.progress, settings.cancel, desc
        )
        stats["n_inputs"] = len(jobs)
        evaluations, row = [], 0
        for job, (trial_masks, prompts) in zip(jobs, plans, strict=True):
            k = len(job.scored_targets)
            mine = scores[row : row + k * len(prompts)]
            row += k * len(prompts)
            scored = [np.stack(mine[i::k]) for i in range(k)]  # per continuation
            evaluations.append(self._solve_job(job, trial_masks, scored, stats, settings))
        return evaluations

    def _plan(self, job: Job, settings: Settings) -> tuple[list[np.ndarray], list[list[int]]]:
        """The job's masks per trial and its prompts (the unperturbed one first)."""
        rng = np.random.default_rng(settings.seed)  # per input: as if it were alone
        encoding = job.encoding
        with naming_input(job.index, settings.batch):
            self.check_design(encoding.n_features, **settings.options)
            trial_masks = [
                self.masks(encoding.n_features, rng, **settings.options)
                for _ in range(settings.num_trials)
            ]
            prompts = [encoding.reference_ids]
            for masks in trial_masks:
                prompts += encoding.sequences(masks, rng)
            prompts = [prompt or empty_context(self.model) for prompt in prompts]
        return trial_masks, prompts

    def _solve_job(
        self,
        job: Job,
        trial_masks: list[np.ndarray],
        scored: list[np.ndarray],
        stats: dict[str, Any],
        settings: Settings,
    ) -> Evaluation:
        outputs = job.objective.outputs(scored)
        attributions, row = [], 1
        for masks in trial_masks:
            trial = outputs[row : row + len(masks)]
            attributions.append(self.solve(masks, trial, **settings.options))
            row += len(masks)
        empty = np.flatnonzero(~trial_masks[0].any(axis=1))
        # The method scored the all-baseline prompt: report the target's log-prob there.
        baseline = float(scored[0][1 + empty[0]].sum()) if empty.size else None
        return Evaluation(
            values=np.stack(attributions),
            reference=[s[0] for s in scored],
            stats={"n_evaluations": len(outputs), **stats},
            baseline_logprob=baseline,
        )


def empty_context(model: Any) -> list[int]:
    """The prompt of a perturbation that removed everything: the model's start token
    (BOS, or EOS for models that separate documents with it), so the model predicts
    the target from no context."""
    for token in (model.bos_token_id, model.eos_token_id):
        if token is not None:
            return [token]
    raise ValueError(
        "a perturbation removed the whole prompt and the model has no BOS/EOS "
        "token to stand for an empty context; keep part of the prompt fixed"
    )
