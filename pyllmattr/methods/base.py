"""Perturbation methods' evaluate step: perturb every input, score all pairs together, solve."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pipeline import AttributionMethod, Evaluation, Job, Settings
from ..pipeline.jobs import naming_input
from ..pipeline.scoring import score_prompts
from .uncertainty import bootstrap_rng, mean_of_trials, uncertainty_fields

__all__ = ["PerturbationMethod"]


class PerturbationMethod(AttributionMethod):
    """Base of the perturbation methods: subclasses choose masks and solve for attributions.

    A subclass defines ``name``, ``defaults`` (its options), ``masks(n_features, rng,
    **options)`` returning a boolean (n_evaluations, n_features) array (True: the
    feature keeps its value), and ``solve(masks, outputs, **options)`` turning the
    model outputs (n_evaluations, n_outputs) into attributions (n_outputs, n_features).
    All perturbed prompts of all inputs and trials go to the engine together
    (:func:`pyllmattr.pipeline.scoring.score_prompts`).

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

    def replicates(
        self, masks: np.ndarray, outputs: np.ndarray, rng: np.random.Generator, **options: Any
    ) -> np.ndarray | None:
        """Bootstrap replicates (n, n_outputs, n_features) of ``solve`` for a method that
        samples coalitions (None: its values are not sampled). They give the result's
        standard errors and top-k order probabilities (:mod:`.uncertainty`)."""
        return None

    # ------------------------------------------------------------ pipeline step
    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        plans = [self._plan(job, settings) for job in jobs]
        scored, stats = score_prompts(
            self.model, jobs, [prompts for _, prompts in plans], settings, type(self).__name__
        )
        stats["n_inputs"] = len(jobs)
        return [
            self._solve_job(job, trial_masks, mine, stats, settings)
            for job, (trial_masks, _), mine in zip(jobs, plans, scored, strict=True)
        ]

    def _plan(self, job: Job, settings: Settings) -> tuple[list[np.ndarray], list[list[int]]]:
        """The job's masks per trial and its prompts (the unperturbed one first)."""
        rng = settings.rng()
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
        values = np.stack(attributions)
        return Evaluation(
            values=values,
            reference=[s[0] for s in scored],
            stats={"n_evaluations": len(outputs), **stats},
            baseline_logprob=baseline,
            extras=self._uncertainty(trial_masks, outputs, values, settings),
        )

    def _uncertainty(
        self,
        trial_masks: list[np.ndarray],
        outputs: np.ndarray,
        values: np.ndarray,
        settings: Settings,
    ) -> dict[str, Any]:
        """Standard errors and top-k order probabilities of a sampling method (a
        bootstrap over each trial's coalitions, seeded by ``seed``); none otherwise."""
        rng = bootstrap_rng(settings.seed)  # per input: as if it were alone
        replicates, row = [], 1
        for masks in trial_masks:
            trial = outputs[row : row + len(masks)]
            replicates.append(self.replicates(masks, trial, rng, **settings.options))
            row += len(masks)
        drawn = [r for r in replicates if r is not None]
        if not drawn:  # not a sampling method
            return {}
        return uncertainty_fields(mean_of_trials(drawn), values.mean(axis=0))
